"""``python -m figures [--quick] [--out DIR]``: regenerate the figures of this folder from seeds.

Writes ``figure1.*``, ``sweep.csv``, ``pareto.png``, ``heatmap_tau_rank.png`` and
``floats_table.md``, then ``PROVENANCE.md``: for every file in ``figures/``, the command that
makes it, its seed and settings, and this run's commit and date.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from simsgd.output import atomic_write_text, provenance

from . import OTHER_FIGURES, figure1, sweeps


def _provenance_md(run, made, setting_of) -> str:
    """PROVENANCE.md: every file of the folder with the command that makes it."""
    command = run["command"]
    lines = [
        "# Provenance of the files in this folder",
        "",
        f"Written by `{command}` at commit `{run['commit']}` on {run['date']} "
        f"(Python {run['python']}, NumPy {run['numpy']}).",
        "",
        "| file | made by | settings (seed included) |",
        "|---|---|---|",
    ]
    for path, make in made:
        settings = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(setting_of[make]).items())
        lines.append(f"| `{path.name}` | `{command}` | {settings} |")
    for name, (other, note) in OTHER_FIGURES.items():
        lines.append(f"| `{name}` | `{other}` | {note} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="few steps and replicas: checks the pipeline in seconds (for CI)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the figures/ package folder)",
    )
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out must be a folder, got the file {args.out}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    run = provenance("python -m figures" + (" --quick" if args.quick else ""))  # the code as it starts
    setting_of = {
        figure1.make: figure1.QUICK if args.quick else figure1.Figure1Setting(),
        sweeps.make: sweeps.QUICK if args.quick else sweeps.SweepSetting(),
    }
    made = []
    for make, setting in setting_of.items():
        for path in make(args.out, setting):
            made.append((path, make))
            print(f"wrote {path}")
    path = atomic_write_text(args.out / "PROVENANCE.md", _provenance_md(run, made, setting_of))
    print(f"wrote {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
