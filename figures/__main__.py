"""``python -m figures [--quick] [--out DIR]``: regenerate every figure from seeds."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import figure1, sweeps


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
    jobs = (
        (figure1.make, figure1.QUICK if args.quick else figure1.Figure1Setting()),
        (sweeps.make, sweeps.QUICK if args.quick else sweeps.SweepSetting()),
    )
    for make, setting in jobs:
        for path in make(args.out, setting):
            print(f"wrote {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
