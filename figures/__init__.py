"""The figures of the project and their data, regenerated deterministically from seeds.

``python -m figures`` (from the repository root) writes, into this folder:

- ``figure1.png`` / ``figure1.csv``: the paper's Figure 1 on the general counterexample;
- ``pareto.png``, ``heatmap_tau_rank.png``, ``sweep.csv``: the τ × r sweeps against GaLore,
  multi-step power iteration and full precision;
- ``floats_table.md``: measured floats per step against Table 2's formulas;
- ``PROVENANCE.md``: every file of this folder with the command, seed and settings that make
  it, and the commit and date of the run.

``--quick`` runs the same pipeline with few steps and replicas (for CI). The other figures
of this folder are made by the commands in :data:`OTHER_FIGURES`.
"""

OTHER_FIGURES = {
    "torch_train.png": (
        "python -m simsgd.examples.train --world-size 4 --out figures/torch_train.png",
        "seeded; its options: python -m simsgd.examples.train --help",
    ),
}
"""Figures in this folder that ``python -m figures`` does not make: file -> (command, note)."""
