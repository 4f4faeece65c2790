"""Every figure of the README, regenerated deterministically from seeds.

``python -m figures`` (from the repository root) writes, into this folder:

- ``figure1.png`` / ``figure1.csv``: the paper's Figure 1 on the general counterexample;
- ``pareto.png``, ``heatmap_tau_rank.png``, ``sweep.csv``: the τ × r sweeps against GaLore,
  multi-step power iteration and full precision;
- ``floats_table.md``: measured floats per step against Table 2's formulas.

``--quick`` runs the same pipeline with few steps and replicas (for CI).
"""
