"""Engine speed: replica-steps per second against a plain per-replica Python loop.

PowerSGD+ (τ = 10, MSGD) on Psi2x2 (σ = 5), N = 4, r = 1. Both are timed in this one
run; the ratio is what matters. Usage::

    python -m benchmarks.bench_engine [--replicas 100000] [--steps 50] [--loop-replicas 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import simsgd
from benchmarks.plain_loop import run_replica

SETTINGS = dict(method="powersgd+", nodes=4, rank=1, restart_period=10, lr=0.005, momentum=0.9, seed=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--loop-replicas", type=int, default=20)
    args = parser.parse_args(argv)
    problem = simsgd.problems.Psi2x2(5.0)

    start = time.perf_counter()
    trace = simsgd.simulate(problem, optimizer="msgd", steps=args.steps, replicas=args.replicas, **SETTINGS)
    engine_rate = args.replicas * args.steps / (time.perf_counter() - start)

    start = time.perf_counter()
    loop_x = [run_replica(problem, k, steps=args.steps, **SETTINGS) for k in range(args.loop_replicas)]
    loop_rate = args.loop_replicas * args.steps / (time.perf_counter() - start)

    agree = float(np.max(np.abs(np.array(loop_x) - trace.x[:args.loop_replicas])))
    result = dict(engine_replica_steps_per_s=round(engine_rate), loop_replica_steps_per_s=round(loop_rate),
                  speedup=round(engine_rate / loop_rate, 1), max_abs_diff_loop_vs_engine=agree,
                  replicas=args.replicas, steps=args.steps, threads=os.environ.get("OMP_NUM_THREADS", "unset"),
                  **SETTINGS)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
