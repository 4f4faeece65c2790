"""Engine speed: replica-steps per second of every engine, timed in one run, against the memory floor.

PowerSGD+ (τ = 10, MSGD) on Psi2x2 (σ = 5), N = 4, r = 1, float64, full trace recorded.
For each R (with its own T) it times, in this one process: the NumPy engine, the torch
engine on CPU (eager and ``compile=True``; the compile call is timed apart) and on CUDA when
present; optionally the NumPy engine at an older commit (``--baseline-commit``, in a
subprocess on an exported copy of that commit, beside this commit's NumPy engine in a
subprocess too: the NumPy engine runs ~10% slower in a process that has imported torch);
and a plain per-replica Python loop. Each engine's rate is the best of ``--repeat`` rounds
(every round times all engines back to back; all rounds are kept in the JSON), and ratios
are taken within the run. Usage::

    python -m benchmarks.bench_engine [--replicas 1000 100000] [--steps 10000 200] \\
        [--repeat 3] [--engines NAME ...] [--record all|none|FIELDS] \\
        [--baseline-commit REV] [--out DIR] [--quick]

The memory floor: Algorithm 2 must read and write X, m, Q and the N errors e^{(i)} once per
step, ``2·8·(2mn + nr + N·mn)`` bytes per replica-step (416 here), and a NumPy copy of a
256 MiB array (measured here, read + write) moves bytes at ``copy_GBps``; the floor is
``copy_GBps / bytes`` replica-steps per second and ``fraction_of_floor`` is how close an
engine gets.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import simsgd
from benchmarks.plain_loop import run_replica
from simsgd._checks import check_memory
from simsgd.cli import (
    Parser,
    UsageError,
    check_out_dir,
    given_options,
    integer,
    output_set,
    parse_with_quick,
    run,
    usage_errors,
)
from simsgd.engine import RECORD_FIELDS, memory_estimate
from simsgd.output import atomic_write_json, atomic_write_text

SETTINGS = dict(method="powersgd+", nodes=4, rank=1, restart_period=10, lr=0.005, momentum=0.9, seed=0)
SHAPE = (2, 2)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bytes_per_replica_step(nodes=SETTINGS["nodes"], rank=SETTINGS["rank"], shape=SHAPE) -> int:
    """Bytes Algorithm 2 (MSGD) must read and write per replica-step: X, m, Q, e^{(1..N)} in float64."""
    m, n = shape
    return 2 * 8 * (2 * m * n + n * rank + nodes * m * n)


def copy_bandwidth(nbytes=256 * 2**20, repeat=5) -> float:
    """Bytes per second a NumPy copy moves (read + write counted), best of ``repeat``."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def _rate(fn, replicas, steps):
    start = time.perf_counter()
    fn()
    return replicas * steps / (time.perf_counter() - start)


def _simulate(replicas, steps, record=None, **kw):
    problem = simsgd.problems.Psi2x2(5.0)
    return simsgd.simulate(
        problem,
        optimizer="msgd",
        steps=steps,
        replicas=replicas,
        progress=False,
        record=record,
        **SETTINGS,
        **kw,
    )


_BASELINE = """
import json, sys, time, simsgd
kw = json.loads(sys.argv[1]); R, T = kw.pop("replicas"), kw.pop("steps")
start = time.perf_counter()
simsgd.simulate(simsgd.problems.Psi2x2(5.0), optimizer="msgd", steps=T, replicas=R, **kw)
print(R * T / (time.perf_counter() - start))
"""


def _baseline_rate(tree, replicas, steps):
    """The NumPy engine of an exported older commit, timed in a subprocess."""
    env = dict(os.environ, PYTHONPATH=tree)
    kw = json.dumps(dict(SETTINGS, replicas=replicas, steps=steps))
    out = subprocess.run(
        [sys.executable, "-c", _BASELINE, kw], env=env, cwd=tree, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _export(commit, into):
    """``simsgd/`` of ``commit`` exported into ``into`` (git archive)."""
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", commit, "simsgd"], capture_output=True, check=False
    )
    if archive.returncode:
        raise UsageError(f"argument --baseline-commit: git cannot export {commit!r}")
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return into


def measure(replicas, steps, *, loop_replicas=20, baseline_tree=None, engines=None, record=None, repeat=3):
    """One row per (R, T): replica-steps/s of each engine, the best of ``repeat`` rounds.

    A round times every engine once, back to back, so a transient load on the shared machine
    slows one round of all engines rather than one engine; every round's rate is kept in
    ``row["rounds"]``. ``engines`` (default all of :data:`ENGINES` that can run here) selects
    rows; ``record`` is :func:`simsgd.simulate`'s (the baseline and the plain loop record all).
    """
    import torch

    wanted = set(ENGINES if engines is None else engines)
    cuda = torch.cuda.is_available()
    row = {"replicas": replicas, "steps": steps}

    def rate_of(**kw):
        return lambda: _rate(lambda: _simulate(replicas, steps, record, **kw), replicas, steps)

    def warm_up(**kw):  # compile for this R and wait for inductor's kernels: timed apart
        start = time.perf_counter()
        for _ in range(2):
            _simulate(replicas, 20 * SETTINGS["restart_period"] + 1, record, compile=True, **kw)
        return time.perf_counter() - start

    problem = simsgd.problems.Psi2x2(5.0)
    candidates = {
        "numpy": rate_of(),
        # both NumPy engines in a fresh process without torch: a like-for-like ratio
        "numpy_baseline": baseline_tree and (lambda: _baseline_rate(baseline_tree, replicas, steps)),
        "numpy_subprocess": baseline_tree and (lambda: _baseline_rate(ROOT, replicas, steps)),
        "torch_cpu_eager": rate_of(backend="torch"),
        "torch_cpu_compiled": rate_of(backend="torch", compile=True),
        "torch_cuda_eager": cuda and rate_of(backend="torch", device="cuda"),
        "torch_cuda_compiled": cuda and rate_of(backend="torch", device="cuda", compile=True),
        "plain_loop": lambda: _rate(
            lambda: [
                run_replica(problem, k, steps=min(steps, 200), **SETTINGS) for k in range(loop_replicas)
            ],
            loop_replicas,
            min(steps, 200),
        ),
    }
    engines = {name: rate for name, rate in candidates.items() if rate and name in wanted}
    if "torch_cpu_compiled" in engines:
        row["compile_seconds"] = warm_up(backend="torch")
    if "torch_cuda_compiled" in engines:
        row["cuda_compile_seconds"] = warm_up(backend="torch", device="cuda")
    if "torch_cuda_eager" in engines:
        _simulate(replicas, 2, record, backend="torch", device="cuda")
    rounds = {name: [] for name in engines}
    for _ in range(repeat):
        for name, rate in engines.items():
            rounds[name].append(rate())
    row.update({name: max(rates) for name, rates in rounds.items()}, rounds=rounds)
    return row


def _ms(fn, repeat=5):
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return round((time.perf_counter() - start) / repeat * 1e3, 2)


def breakdown(replicas):
    """Milliseconds per call of the pieces of one step, on ``replicas`` replicas."""
    import torch

    from simsgd.compressors import ssp_step, svd_step
    from simsgd.ops import NUMPY
    from simsgd.orthogonalize import orthogonalize
    from simsgd.streams import NodeStreams
    from simsgd.torch_ops import TORCH

    problem, nodes = simsgd.problems.Psi2x2(5.0), SETTINGS["nodes"]
    x = np.broadcast_to(problem.x0, (replicas, 2, 2)).copy()
    draws = NodeStreams(0, np.arange(replicas), np.arange(nodes))
    grads = problem.stochastic_grads(x, nodes, draws.at(1))  # replicas fastest, as the engine holds them
    c_grads = np.ascontiguousarray(grads)  # C order, as an oracle without node_layout returns them
    c_q = np.random.default_rng(0).standard_normal((replicas, 2, 1))
    q = np.asfortranarray(c_q)
    p = NUMPY.node_mean(NUMPY.matmul(grads, q[:, None]))
    mean = NUMPY.node_mean(grads)
    return {
        "oracle": _ms(lambda: problem.stochastic_grads(x, nodes, draws.at(1))),
        "C-order g to replicas fastest (node_layout's copy)": _ms(lambda: NUMPY.node_layout(c_grads)),
        "ssp_step": _ms(lambda: ssp_step(q, grads)),
        "svd_step": _ms(lambda: svd_step(grads, 1)),
        "P = Δ Q, np.matmul": _ms(lambda: c_grads @ c_q[:, None]),
        "P = Δ Q, NumpyOps.matmul, entry by entry, C order": _ms(lambda: NUMPY.matmul(c_grads, c_q[:, None])),
        "P = Δ Q, NumpyOps.matmul, entry by entry, replicas fastest (used)": _ms(
            lambda: NUMPY.matmul(grads, q[:, None])
        ),
        "QR(P), np.linalg.qr": _ms(lambda: orthogonalize(p, method="lapack")),
        "QR(P), closed-form rank 1 (used)": _ms(lambda: orthogonalize(p, method="householder")),
        "SVD 2×2, np.linalg.svd (NumPy engine)": _ms(lambda: NUMPY.top_left_singular_vectors(mean, 1)),
        "SVD 2×2, closed form (torch engine)": _ms(
            lambda: TORCH.top_left_singular_vectors(torch.from_numpy(mean), 1)
        ),
    }


ENGINES = (
    "numpy_baseline",
    "numpy_subprocess",
    "numpy",
    "torch_cpu_eager",
    "torch_cpu_compiled",
    "torch_cuda_eager",
    "torch_cuda_compiled",
    "plain_loop",
)


def table(result) -> str:
    """The markdown table of a result."""
    floor = result["floor_replica_steps_per_s"]
    lines = [
        "| R | T | engine | replica-steps/s | × NumPy | × NumPy at baseline | fraction of memory floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        for name in ENGINES:
            if name in row:
                refs = ("numpy", "numpy_baseline")
                ratios = [f"{row[name] / row[ref]:.2f}" if ref in row else "" for ref in refs]
                lines.append(
                    f"| {row['replicas']:.0e} | {row['steps']} | {name} | {row[name]:.3g} | "
                    f"{ratios[0]} | {ratios[1]} | {row[name] / floor:.2g} |"
                )
        for key, what in (
            ("compile_seconds", "compile + warm-up"),
            ("cuda_compile_seconds", "CUDA compile + warm-up"),
        ):
            if key in row:
                lines.append(f"| {row['replicas']:.0e} | | ({what}: {row[key]:.0f} s) | | | | |")
    return "\n".join(lines) + "\n"


QUICK = {"replicas": [1000, 10_000], "steps": [200, 20]}


def main(argv=None):
    parser = Parser(prog="python -m benchmarks.bench_engine", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replicas",
        type=integer("--replicas", 1),
        nargs="+",
        default=[1000, 100_000],
        help="R of each row (default 1000 100000; 1000 10000 with --quick)",
    )
    parser.add_argument(
        "--steps",
        type=integer("--steps", 1),
        nargs="+",
        default=[10_000, 200],
        help="T for each --replicas (default 10000 200; 200 20 with --quick; compiled runs take "
        "steps 0..τ−1 eagerly: keep T ≫ τ)",
    )
    parser.add_argument("--loop-replicas", type=integer("--loop-replicas", 1), default=20)
    parser.add_argument(
        "--repeat", type=integer("--repeat", 1), default=3, help="rounds; each engine's best is reported"
    )
    parser.add_argument("--baseline-commit", default=None, help="also time the NumPy engine of this commit")
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        default=list(ENGINES),
        help="the rows to time (default all that can run here; CUDA rows need a GPU)",
    )
    parser.add_argument(
        "--record",
        default="all",
        help="trace fields the engines record: all (default), none, or a comma list of "
        + ", ".join(RECORD_FIELDS),
    )
    parser.add_argument(
        "--quick", action="store_true", help="defaults R = 1000, 10⁴ with T = 200, 20; given options win"
    )
    parser.add_argument("--out", default=None, help="folder for bench_engine.json and bench_engine.md")
    args = parse_with_quick(parser, argv, QUICK)
    if len(args.replicas) != len(args.steps):
        given = given_options(parser, argv)
        source = "" if "steps" in given else (" (the --quick default)" if args.quick else " (the default)")
        raise UsageError(
            f"argument --steps: give one T per --replicas value: {len(args.replicas)} R, "
            f"{len(args.steps)} T{source}"
        )
    with usage_errors("--replicas"):  # each row's simulation, before the benchmark starts
        for r, t in zip(args.replicas, args.steps):
            check_memory(
                f"--replicas {r} --steps {t}",
                memory_estimate(r, t, SETTINGS["nodes"], SHAPE, SETTINGS["rank"]),
                "fewer --replicas or --steps",
            )
    record = {"all": None, "none": ()}.get(args.record, tuple(args.record.split(",")))
    for name in record or ():
        if name not in RECORD_FIELDS:
            choices = ", ".join(("all", "none", *RECORD_FIELDS))
            raise UsageError(f"argument --record: {name!r} is not one of {choices}")
    if record is not None and args.baseline_commit:
        raise UsageError(
            "argument --record: the baseline commit's engine records all fields; use --record all"
        )
    if args.out is not None:
        check_out_dir(args.out)
    try:
        import torch
    except ImportError:
        raise UsageError("the benchmark needs torch (pip install '.[torch]')") from None

    with tempfile.TemporaryDirectory() as tree:
        baseline = _export(args.baseline_commit, tree) if args.baseline_commit else None
        bandwidth = copy_bandwidth()
        rows = [
            measure(
                r,
                t,
                loop_replicas=args.loop_replicas,
                baseline_tree=baseline,
                engines=args.engines,
                record=record,
                repeat=args.repeat,
            )
            for r, t in zip(args.replicas, args.steps)
        ]
        pieces = breakdown(max(args.replicas)) if "numpy" in args.engines else {}
    nbytes = bytes_per_replica_step()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = dict(
        command="python -m benchmarks.bench_engine " + " ".join(sys.argv[1:] if argv is None else argv),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        commit=commit,
        baseline_commit=args.baseline_commit,
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        load_average=os.getloadavg(),
        threads=os.environ.get("OMP_NUM_THREADS", "unset"),
        torch=torch.__version__,
        cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        settings=dict(SETTINGS, problem="Psi2x2(5.0)", optimizer="msgd", dtype="float64", record=args.record),
        bytes_per_replica_step=nbytes,
        copy_GBps=bandwidth / 1e9,
        floor_replica_steps_per_s=bandwidth / nbytes,
        rows=rows,
        milliseconds_per_call={"replicas": max(args.replicas), **pieces},
    )
    print(json.dumps(result, indent=2))
    print(table(result))
    if args.out is not None:
        with output_set(args.out) as stage:
            atomic_write_json(os.path.join(stage, "bench_engine.json"), result)
            atomic_write_text(os.path.join(stage, "bench_engine.md"), table(result))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m benchmarks.bench_engine"))
