"""Long-horizon follow-up of the search's best instance: stall or slow-down?

Reads DIR_IN/search.json, and on its best instance runs PowerSGD, PowerSGD+ (τ = 10) and
uncompressed averaging for ``--horizon`` steps (default 3200 = 16 T): on fresh seeds (same
instance) and on ``--rotations`` random rotations of it (``--replicas`` runs each). Reports
the median ||∇f(X_t)||²/||∇f(X_0)||² at T, 4T, 16T and the failure rate at the horizon
(ratio ≥ 0.5 while uncompressed averaging is below 0.05; Wilson 95%).

Run: ``python -m counterexamples.search.followup --search counterexamples/search --out DIR``
(default ``out/search``); the committed result is ``--out counterexamples/search``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import simsgd
from simsgd._checks import check_memory
from simsgd.cli import (
    Parser,
    UsageError,
    add_engine_arguments,
    check_out_dir,
    engine,
    output_set,
    run,
    usage_errors,
)
from simsgd.engine import memory_estimate
from simsgd.output import atomic_write_json
from simsgd.stats import wilson_interval

from .._study import study_record
from .problem import SearchProblem
from .search import CONVERGED, STALLED


def _ratios(problem, options, method, steps, replicas, seed):
    trace = simsgd.simulate(
        problem, method=method, steps=steps, replicas=replicas, seed=seed, restart_period=10,
        progress=False, **options,
    )  # fmt: skip
    return trace.grad_norm_sq / np.maximum(trace.grad_norm_sq[:, :1], 1e-300)


def main(argv=None) -> int:
    p = Parser(prog="python -m counterexamples.search.followup", description=__doc__.split("\n\n")[0])
    p.add_argument("--search", default=os.path.join("out", "search"), help="folder holding search.json")
    p.add_argument("--out", default=os.path.join("out", "search"), help="output folder (default out/search)")
    p.add_argument("--horizon", type=int, default=3200, help="steps (default 3200)")
    p.add_argument("--replicas", type=int, default=32, help="runs per instance (default 32)")
    p.add_argument("--rotations", type=int, default=8, help="random rotations (default 8)")
    add_engine_arguments(p)
    args = p.parse_args(argv)
    context = engine(args)  # checked before anything is written or run
    if min(args.horizon, args.replicas, args.rotations) < 1:
        raise UsageError("argument --horizon/--replicas/--rotations: must be integers ≥ 1")
    path = os.path.join(args.search, "search.json")
    try:
        with open(path, encoding="utf-8") as fh:
            found = json.load(fh)
        problem_kw, options = found["best_instance"]["problem"], found["best_instance"]["run"]
        steps = int(found["steps"])
        size = memory_estimate(
            args.replicas, args.horizon, options["nodes"], (problem_kw["m"], problem_kw["n"]), options["rank"]
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"argument --search: cannot read a search result from {path!r} ({err})") from None
    with usage_errors():  # each run of the follow-up, before the first is started
        check_memory(f"--horizon {args.horizon} --replicas {args.replicas}", size, "a shorter --horizon")
    out = check_out_dir(args.out, names=("followup.json",))
    with context:
        start = time.monotonic()
        cases = {"fresh seeds": [(problem_kw, 2000)]}
        cases["random rotation"] = [
            ({**problem_kw, "basis_seed": 20_000 + i}, 0) for i in range(args.rotations)
        ]
        checkpoints = sorted({t for t in (steps, 4 * steps, args.horizon) if t <= args.horizon})
        result = {}
        for kind, instances in cases.items():
            ratios = {method: [] for method in ("powersgd", "powersgd+", "full")}
            for kw, seed in instances:
                problem = SearchProblem(**kw)
                for method in ratios:
                    ratios[method].append(
                        _ratios(problem, options, method, args.horizon, args.replicas, seed)
                    )
            ratios = {method: np.concatenate(r) for method, r in ratios.items()}
            converged_full = ratios["full"][:, -1] < CONVERGED
            row = {}
            for method in ("powersgd", "powersgd+", "full"):
                r = ratios[method]
                failed = int(((r[:, -1] >= STALLED) & converged_full).sum())
                row[method] = {
                    "median_ratio": {f"t={t}": float(np.median(r[:, t])) for t in checkpoints},
                    "failed_at_horizon": failed,
                    "runs": int(r.shape[0]),
                    "wilson95": list(wilson_interval(failed, r.shape[0])),
                }
                print(
                    f"{kind:16s} {method:10s} median ratio "
                    + ", ".join(f"t={t}: {np.median(r[:, t]):.3g}" for t in checkpoints)
                    + f"; fails at t={args.horizon}: {failed}/{r.shape[0]} "
                    + str(np.round(wilson_interval(failed, r.shape[0]), 3).tolist())
                )
            result[kind] = row
    summary = {
        **study_record("counterexamples.search.followup", argv, start),
        "instance": found["best_instance"],
        "horizon": args.horizon,
        "replicas": args.replicas,
        "rotations": args.rotations,
        "failure_rule": found["failure_rule"],
        "result": result,
    }
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "followup.json"), summary)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m counterexamples.search.followup"))
