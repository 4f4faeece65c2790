"""``python -m figures [--quick] [--out DIR]``: regenerate the figures of this folder from seeds.

Writes ``figure1.*``, ``sweep.csv``, ``pareto.png``, ``heatmap_tau_rank.png`` and
``floats_table.md``, then ``PROVENANCE.md``: for every file in ``figures/``, the command that
makes it, its seed and settings, and this run's commit and date. Writes under ``out/figures``
by default; regenerating the committed figures is the explicit ``python -m figures --out
figures``. The files are written as a set: all of them, or (on any failure) none, leaving the
folder's previous set as it was.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from simsgd import cli
from simsgd.output import atomic_write_text, provenance

from . import OTHER_FIGURES, figure1, sweeps

FILES = (
    "figure1.png",
    "figure1.csv",
    "figure1_claims.json",
    "figure1_table.md",
    "sweep.csv",
    "pareto.png",
    "heatmap_tau_rank.png",
    "floats_table.md",
    "PROVENANCE.md",
)


def _provenance_md(made, command, setting_of) -> str:
    """PROVENANCE.md: every file of the folder with the command that makes it."""
    run = provenance(command)
    lines = [
        "# Provenance of the files in this folder",
        "",
        f"Written by `{command}` at commit `{run['commit']}` on {run['date']} "
        f"(Python {run['python']}, NumPy {run['numpy']}).",
        "",
        "| file | made by | settings (seed included) |",
        "|---|---|---|",
    ]
    for name, make in made:
        settings = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(setting_of[make]).items())
        lines.append(f"| `{name}` | `{command}` | {settings} |")
    for name, (other, note) in OTHER_FIGURES.items():
        lines.append(f"| `{name}` | `{other}` | {note} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = cli.Parser(prog="python -m figures", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="few steps and replicas: checks the pipeline in seconds (for CI)"
    )
    parser.add_argument(
        "--out",
        default="out/figures",
        help="output folder (default out/figures; `--out figures` regenerates the committed figures)",
    )
    cli.add_engine_arguments(parser)
    args = parser.parse_args(argv)
    context = cli.engine(args)
    out = cli.check_out_dir(args.out, names=FILES)
    start = time.perf_counter()
    setting_of = {
        figure1.make: figure1.QUICK if args.quick else figure1.Figure1Setting(),
        sweeps.make: sweeps.QUICK if args.quick else sweeps.SweepSetting(),
    }
    command = (
        "python -m figures"
        + (" --quick" if args.quick else "")
        + cli.engine_flags(args)
        + f" --out {args.out}"
    )
    with context:
        with cli.output_set(out) as stage:
            made = [
                (Path(path).name, make)
                for make, setting in setting_of.items()
                for path in make(Path(stage), setting)
            ]
            atomic_write_text(Path(stage) / "PROVENANCE.md", _provenance_md(made, command, setting_of))
    for name in [name for name, _ in made] + ["PROVENANCE.md"]:
        print(f"wrote {Path(out) / name}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="python -m figures"))
