"""``python -m bounds [--quick] [--seed S] [--out DIR]``: run the studies, write REPORT.md and report.json."""

from __future__ import annotations

import argparse
import os
import sys

from .report import to_json, write_atomic
from .study import render, run_all, to_record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bounds", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small runs, under a minute (for CI)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (integer ≥ 0)")
    parser.add_argument(
        "--out",
        default=os.path.dirname(os.path.abspath(__file__)),
        help="folder for REPORT.md and report.json (default: bounds/)",
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be an integer ≥ 0, got {args.seed}")
    if not os.path.isdir(args.out):
        parser.error(f"--out must be an existing folder, got {args.out!r}")
    mode = "quick" if args.quick else "full"
    command = (
        "python -m bounds"
        + (" --quick" if args.quick else "")
        + (f" --seed {args.seed}" if args.seed else "")
    )
    record = run_all(mode, args.seed)
    report = render(record, command)
    write_atomic(os.path.join(args.out, "report.json"), to_json(to_record(record)))
    write_atomic(os.path.join(args.out, "REPORT.md"), report)
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
