"""``python -m claims``: replay the claims ledger, or render docs/claims.md and the README from it.

python -m claims --quick --out DIR    every claim at small scale (≤ 4 min on 2 cores): one verdict
                                      per claim against the ledger's, in DIR/claims.json and .md
python -m claims --out DIR            the full commands: regenerates the committed evidence (hours)
python -m claims --render             docs/claims.md and README.md's findings from the ledger
"""

from __future__ import annotations

import os
import time

from simsgd.cli import Parser, check_out_dir, integer, run
from simsgd.output import atomic_write_json, atomic_write_text, provenance

from . import ledger, render
from .replay import replay


def build_parser() -> Parser:
    parser = Parser(prog="python -m claims", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each claim's quick command (small scale)")
    parser.add_argument(
        "--out", default="out/claims", help="folder for claims.json and claims.md (default out/claims)"
    )
    parser.add_argument("--only", default=None, help="comma-separated claim ids to replay (default: all)")
    parser.add_argument(
        "--jobs", type=integer("--jobs", 1, 16), default=2, help="commands run at a time (default 2)"
    )
    parser.add_argument(
        "--render", action="store_true", help="rewrite docs/claims.md and README.md's findings"
    )
    return parser


def _table(outcomes) -> str:
    lines = ["| claim | ledger | replayed | agrees | seconds |", "|---|---|---|---|---|"]
    for o in outcomes:
        got = o["replayed"] or f"– ({(o['error'] or '').splitlines()[0][:80] if o['error'] else ''})"
        lines.append(
            f"| {o['id']} | {o['ledger']} | {got} | {'yes' if o['agrees'] else '**no**'} | {o['seconds']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    entries = ledger.load()
    if args.render:
        for path in render.write(entries):
            print(f"wrote {path}")
        return 0
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {e.id for e in entries}
        if unknown:
            build_parser().error(f"argument --only: unknown claim ids {sorted(unknown)}")
        entries = [e for e in entries if e.id in wanted]
    out = check_out_dir(args.out)
    start = time.perf_counter()
    outcomes = replay(entries, os.path.join(out, "runs"), quick=args.quick, jobs=args.jobs)
    agree = sum(o["agrees"] for o in outcomes)
    seconds = time.perf_counter() - start
    summary = f"{agree}/{len(outcomes)} claims replayed to the ledger's verdict in {seconds:.0f} s"
    atomic_write_json(
        os.path.join(out, "claims.json"),
        dict(provenance(quick=args.quick), outcomes=outcomes, summary=summary),
    )
    atomic_write_text(os.path.join(out, "claims.md"), f"# Claims replay\n\n{summary}\n\n{_table(outcomes)}")
    print(_table(outcomes) + summary)
    return 0 if agree == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(run(main, prog="python -m claims"))
