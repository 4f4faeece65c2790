"""``python -m bounds [--quick] [--seed S] [--jobs J] [--out DIR]``: run the studies, write the report."""

from __future__ import annotations

import json
import os
import sys

from simsgd.cli import (
    Parser,
    add_engine_arguments,
    check_out_dir,
    engine,
    engine_flags,
    integer,
    output_set,
    run,
    seed,
)
from simsgd.output import atomic_write_text

from .report import render, to_json_record
from .study import run_all


def main(argv=None) -> int:
    parser = Parser(prog="python -m bounds", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small T and R, fewer sweeps: under a minute")
    parser.add_argument("--seed", type=seed(), default=0, help="seed of every run, in [0, 2⁶⁴ − 1]")
    parser.add_argument(
        "--out", default=os.path.join("out", "bounds"), help="folder for REPORT.md and report.json"
    )
    parser.add_argument(
        "--jobs",
        type=integer("--jobs", 1, 16),
        default=1,
        help="worker processes (NumPy only; the numbers do not depend on it; default 1)",
    )
    add_engine_arguments(parser)
    args = parser.parse_args(argv)
    if args.jobs > 1 and args.backend != "numpy":
        parser.error("argument --jobs: more than 1 needs --backend numpy (the workers are forked)")
    context = engine(args)
    out = check_out_dir(args.out, names=("report.json", "REPORT.md"))
    mode = "quick" if args.quick else "full"
    flags = (" --quick" if args.quick else "") + (f" --jobs {args.jobs}" if args.jobs > 1 else "")
    flags += engine_flags(args)
    command = f"python -m bounds{flags} --seed {args.seed} --out {args.out}"
    with context:
        record = run_all(mode, args.seed, jobs=args.jobs)
    report = render(record, command)
    data = json.dumps(to_json_record(record, command), indent=1, ensure_ascii=False, default=float) + "\n"
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "report.json"), data)
        atomic_write_text(os.path.join(stage, "REPORT.md"), report)
    print(next(part for part in report.split("\n\n") if part.startswith("**Summary.**")))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m bounds"))
