"""``python -m bounds.rebuild --record FILE --out DIR``: a written report's claims rebuilt from its rows
with today's rules (:func:`bounds.claims.build`), nothing run again.

For the claims ledger's quick replay of a claim whose runs are too long to repeat (T4-excess: the
share reaches 10% only at T ≈ 1.6·10⁵), and for a report whose claim rules changed after its runs.
Writes DIR/report.json and DIR/REPORT.md; ``claims_commit`` is the commit that rebuilt the claims
(``commit`` stays the one that ran the rows).
"""

from __future__ import annotations

import json
import os
import sys

from simsgd.cli import Parser, check_out_dir, output_set, run
from simsgd.output import atomic_write_text, commit

from . import claims
from .report import render

__all__ = ["main"]


def main(argv=None) -> int:
    """``python -m bounds.rebuild --record FILE --out DIR``: see the module docstring."""
    parser = Parser(
        prog="python -m bounds.rebuild", description="rebuild a bounds report's claims from its rows"
    )
    parser.add_argument("--record", required=True, help="a report.json written by python -m bounds")
    parser.add_argument("--out", required=True, help="folder for the rebuilt report.json and REPORT.md")
    args = parser.parse_args(argv)
    out = check_out_dir(args.out, names=("report.json", "REPORT.md"))
    with open(args.record, encoding="utf-8") as f:
        record = json.load(f)
    record.pop("claims", None)
    record["claims"] = claims.build(record)
    record["claims_commit"] = commit()
    data = json.dumps(record, indent=1, ensure_ascii=False, default=float) + "\n"
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "report.json"), data)
        atomic_write_text(os.path.join(stage, "REPORT.md"), render(record, record["command"]))
    print(", ".join(f"{k}: {v['verdict']}" for k, v in record["claims"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m bounds.rebuild"))
