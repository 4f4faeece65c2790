"""``python -m figures [--quick] [--out DIR]``: regenerate every figure from seeds.

Writes under ``out/figures`` by default; regenerating the committed figures is the
explicit ``python -m figures --out figures``. The six files are written as a set: all
of them, or (on any failure) none, leaving the folder's previous set as it was.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from simsgd import cli

from . import figure1, sweeps

FILES = ("figure1.png", "figure1.csv", "sweep.csv", "pareto.png", "heatmap_tau_rank.png", "floats_table.md")


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
    args = parser.parse_args(argv)
    out = cli.check_out_dir(args.out, names=FILES)
    start = time.perf_counter()
    jobs = (
        (figure1.make, figure1.QUICK if args.quick else figure1.Figure1Setting()),
        (sweeps.make, sweeps.QUICK if args.quick else sweeps.SweepSetting()),
    )
    with cli.output_set(out) as stage:
        written = [Path(path).name for make, setting in jobs for path in make(Path(stage), setting)]
    for name in written:
        print(f"wrote {Path(out) / name}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="python -m figures"))
