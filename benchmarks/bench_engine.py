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
from simsgd.compressors import ssp_step, svd_step
from simsgd.ops import NUMPY
from simsgd.orthogonalize import orthogonalize
from simsgd.streams import NodeStreams

SETTINGS = dict(method="powersgd+", nodes=4, rank=1, restart_period=10, lr=0.005, momentum=0.9, seed=0)


def _ms(fn, repeat=5):
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return round((time.perf_counter() - start) / repeat * 1e3, 2)


def breakdown(problem, replicas):
    """Milliseconds per call of the pieces of one step, on ``replicas`` replicas."""
    nodes = SETTINGS["nodes"]
    x = np.broadcast_to(problem.x0, (replicas, 2, 2)).copy()
    draws = NodeStreams(0, np.arange(replicas), np.arange(nodes))
    grads = problem.stochastic_grads(x, nodes, draws.at(1))
    q = np.random.default_rng(0).standard_normal((replicas, 2, 1))
    p = NUMPY.node_mean(NUMPY.matmul(grads, q[:, None]))
    return {
        "oracle": _ms(lambda: problem.stochastic_grads(x, nodes, draws.at(1))),
        "ssp_step": _ms(lambda: ssp_step(q, grads)),
        "svd_step": _ms(lambda: svd_step(grads, 1)),
        "P = Δ Q, np.matmul": _ms(lambda: grads @ q[:, None]),
        "P = Δ Q, broadcast sums (used)": _ms(lambda: NUMPY.matmul(grads, q[:, None])),
        "QR(P), np.linalg.qr": _ms(lambda: orthogonalize(p, method="lapack")),
        "QR(P), closed-form rank 1 (used)": _ms(lambda: orthogonalize(p, method="householder")),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--loop-replicas", type=int, default=20)
    args = parser.parse_args(argv)
    problem = simsgd.problems.Psi2x2(5.0)

    start = time.perf_counter()
    simsgd.simulate(problem, optimizer="msgd", steps=args.steps, replicas=args.replicas, **SETTINGS)
    engine_rate = args.replicas * args.steps / (time.perf_counter() - start)

    # Correctness of the engine against this loop is tested in tests/test_core_reference.py.
    start = time.perf_counter()
    for k in range(args.loop_replicas):
        run_replica(problem, k, steps=args.steps, **SETTINGS)
    loop_rate = args.loop_replicas * args.steps / (time.perf_counter() - start)

    result = dict(
        engine_replica_steps_per_s=round(engine_rate),
        loop_replica_steps_per_s=round(loop_rate),
        speedup=round(engine_rate / loop_rate, 1),
        replicas=args.replicas,
        steps=args.steps,
        threads=os.environ.get("OMP_NUM_THREADS", "unset"),
        **SETTINGS,
    )
    result["milliseconds_per_call"] = breakdown(problem, args.replicas)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
