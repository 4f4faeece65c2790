"""Engine speed: replica-steps per second of every engine, timed in one run, against the memory floor
and a fused per-replica anchor.

PowerSGD+ (τ = 10, MSGD) on Psi2x2 (σ = 5), N = 4, r = 1, float64, full trace recorded.
For each R (with its own T) it times, in this one process: the NumPy engine, the torch
engine on CPU (eager and ``compile=True``), the replicas-innermost engine (``backend="lanes",
compile=True``: one fused loop over R per step), the same on CUDA when present; optionally the
NumPy engine at an older commit (``--baseline-commit``, in a subprocess on an exported copy of
that commit, beside this commit's NumPy engine in a subprocess too: the NumPy engine runs ~10%
slower in a process that has imported torch); a plain per-replica Python loop; and the anchor,
one fused numba loop per replica with all state in registers (:mod:`benchmarks.fused_anchor`,
not bit-compatible; needs the ``bench`` extra). Each engine's rate is the best of ``--repeat``
rounds (every round times all engines back to back; all rounds are kept in the JSON), and
ratios are taken within the run. Round k runs T + k steps, so the compiled engines (compiled
beforehand on a run of another length, the first call timed apart) never see a run length
twice: any recompilation a new T causes is in the rate. Usage::

    python -m benchmarks.bench_engine [--replicas 1000 100000] [--steps 10000 200] \\
        [--repeat 3] [--engines NAME ...] [--record all|none|FIELDS] \\
        [--baseline-commit REV] [--compile-times] [--out DIR] [--quick]

The memory floor: Algorithm 2 must read and write X, m, Q and the N errors e^{(i)} once per
step, ``2·8·(2mn + nr + N·mn)`` bytes per replica-step (416 here), and a NumPy copy of a
256 MiB array (measured here, read + write) moves bytes at ``copy_GBps``; the floor is
``copy_GBps / bytes`` replica-steps per second and ``fraction_of_floor`` is how close an
engine gets. The bytes the fused engine's compiled steps actually move per replica-step (their
inputs and outputs of length R), and the anchor's, are in ``bytes_per_replica_step_moved``;
``checks`` holds the fused engine's agreement with the NumPy engine on aligned ψ and, with
``--compile-times``, its first call in fresh processes with inductor's cache cold and warm.
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


WARM_UP_STEPS = 2 * SETTINGS["restart_period"] + 3
"""T of the compiled engines' warm-up run: no timed round has this run length."""


def _anchor():
    """The fused per-replica loop (:mod:`benchmarks.fused_anchor`, numba), or None without numba."""
    try:
        from benchmarks import fused_anchor
    except ImportError:
        return None
    fused_anchor.run(10, 10, 4, 5.0, 5e-3, 0.9, 10, 0)  # numba compiles now, not in a timed round
    return fused_anchor


def measure(replicas, steps, *, loop_replicas=20, baseline_tree=None, engines=None, record=None, repeat=3):
    """One row per (R, T): replica-steps/s of each engine, the best of ``repeat`` rounds.

    A round times every engine once, back to back, so a transient load on the shared machine
    slows one round of all engines rather than one engine; every round's rate is kept in
    ``row["rounds"]``. Round k runs T + k steps: the compiled engines, warmed up (compiled) on a
    run of :data:`WARM_UP_STEPS`, never see a run length twice, so any recompilation a new T
    causes is in the timed rate. ``engines`` (default all of :data:`ENGINES` that can run here)
    selects rows; ``record`` is :func:`simsgd.simulate`'s (the baseline and the plain loop
    record all, the anchor nothing).
    """
    import torch

    wanted = set(ENGINES if engines is None else engines)
    cuda = torch.cuda.is_available()
    row = {"replicas": replicas, "steps": [steps + k for k in range(repeat)]}

    def rate_of(**kw):
        return lambda t: _rate(lambda: _simulate(replicas, t, record, **kw), replicas, t)

    def warm_up(**kw):  # the first call (compiles) and a second one: timed apart, at another T
        start = time.perf_counter()
        _simulate(replicas, WARM_UP_STEPS, record, compile=True, **kw)
        first = time.perf_counter() - start
        _simulate(replicas, WARM_UP_STEPS, record, compile=True, **kw)
        return first

    problem = simsgd.problems.Psi2x2(5.0)
    anchor = "fused_anchor" in wanted and _anchor()
    candidates = {
        "numpy": rate_of(),
        # both NumPy engines in a fresh process without torch: a like-for-like ratio
        "numpy_baseline": baseline_tree and (lambda t: _baseline_rate(baseline_tree, replicas, t)),
        "numpy_subprocess": baseline_tree and (lambda t: _baseline_rate(ROOT, replicas, t)),
        "torch_cpu_eager": rate_of(backend="torch"),
        "torch_cpu_compiled": rate_of(backend="torch", compile=True),
        "lanes_cpu_compiled": rate_of(backend="lanes", compile=True),
        "torch_cuda_eager": cuda and rate_of(backend="torch", device="cuda"),
        "torch_cuda_compiled": cuda and rate_of(backend="torch", device="cuda", compile=True),
        "lanes_cuda_compiled": cuda and rate_of(backend="lanes", device="cuda", compile=True),
        "fused_anchor": anchor
        and (lambda t: _rate(lambda: anchor.run(replicas, t, *_ANCHOR_ARGS), replicas, t)),
        "plain_loop": lambda t: _rate(
            lambda: [run_replica(problem, k, steps=min(t, 200), **SETTINGS) for k in range(loop_replicas)],
            loop_replicas,
            min(t, 200),
        ),
    }
    engines = {name: rate for name, rate in candidates.items() if rate and name in wanted}
    for name, kw in COMPILED.items():
        if name in engines:
            row[f"{name}_first_call_seconds"] = warm_up(**kw)
    if "torch_cuda_eager" in engines:
        _simulate(replicas, 2, record, backend="torch", device="cuda")
    rounds = {name: [] for name in engines}
    for k in range(repeat):
        for name, rate in engines.items():
            rounds[name].append(rate(steps + k))
    row.update({name: max(rates) for name, rates in rounds.items()}, rounds=rounds)
    return row


_ANCHOR_ARGS = (
    SETTINGS["nodes"],
    5.0,
    SETTINGS["lr"],
    SETTINGS["momentum"],
    SETTINGS["restart_period"],
    SETTINGS["seed"],
)
COMPILED = {
    "torch_cpu_compiled": dict(backend="torch"),
    "lanes_cpu_compiled": dict(backend="lanes"),
    "torch_cuda_compiled": dict(backend="torch", device="cuda"),
    "lanes_cuda_compiled": dict(backend="lanes", device="cuda"),
}


_FIRST_CALL = """
import json, sys, time, simsgd
kw = json.loads(sys.argv[1])
start = time.perf_counter()
simsgd.simulate(simsgd.problems.Psi2x2(5.0), optimizer="msgd", steps=23, replicas=1000, compile=True, **kw)
print(time.perf_counter() - start)
"""


def bytes_of_fused_steps(problem):
    """Bytes per replica-step the fused engine's compiled steps read and write, by restart."""
    from simsgd.fused import bytes_per_replica_step as fused_bytes

    return fused_bytes(problem)


def anchor_bytes(steps):
    try:
        from benchmarks.fused_anchor import bytes_per_replica_step as anchor
    except ImportError:
        return None
    return anchor(steps)


def first_call_seconds(engine, device="cpu"):
    """Seconds of a fresh process's first compiled ``simulate`` call (R = 10³, T = 23), with
    inductor's on-disk cache empty (``cold``: tracing, inductor and the C++ compiler) and then
    filled by that call (``warm``: tracing and a cache hit). Imports are not counted.
    """
    kw = json.dumps(dict(SETTINGS, backend=engine, device=device))
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, PYTHONPATH=ROOT)
        for kind in ("cold", "warm"):
            run_ = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL, kw], env=env, cwd=ROOT, capture_output=True, text=True
            )
            if run_.returncode:
                raise RuntimeError(f"the first-call run failed: {run_.stderr.strip()[-500:]}")
            out[kind] = float(run_.stdout.strip().splitlines()[-1])
    return out


def aligned_agreement(replicas=1000, steps=50):
    """Max relative difference of every trace field between the fused engine (compiled) and the
    NumPy engine on ψ in the aligned basis (0.0: bit for bit).
    """
    from simsgd.distributed.matching import trace_diff

    problem = simsgd.problems.Psi2x2(5.0, basis="aligned")
    kw = dict(SETTINGS, optimizer="msgd", steps=steps, replicas=replicas, progress=False)
    numpy = simsgd.simulate(problem, **kw)
    lanes = simsgd.simulate(problem, backend="lanes", compile=True, **kw)
    return max(trace_diff(lanes, numpy).values())


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
        "SVD 2×2, np.linalg.svd (LAPACK)": _ms(lambda: np.linalg.svd(mean)),
        "SVD 2×2, closed form (NumPy engine)": _ms(lambda: NUMPY.top_left_singular_vectors(mean, 1)),
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
    "lanes_cpu_compiled",
    "torch_cuda_eager",
    "torch_cuda_compiled",
    "lanes_cuda_compiled",
    "fused_anchor",
    "plain_loop",
)


def table(result) -> str:
    """The markdown table of a result."""
    floor = result["floor_replica_steps_per_s"]
    lines = [
        "| R | T | engine | replica-steps/s | × NumPy | × NumPy at baseline | × anchor "
        "| fraction of memory floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        steps = row["steps"]
        span = f"{steps[0]}–{steps[-1]}" if len(steps) > 1 else f"{steps[0]}"
        for name in ENGINES:
            if name in row:
                refs = ("numpy", "numpy_baseline", "fused_anchor")
                ratios = [f"{row[name] / row[ref]:.2f}" if ref in row else "" for ref in refs]
                lines.append(
                    f"| {row['replicas']:.0e} | {span} | {name} | {row[name]:.3g} | "
                    + " | ".join(ratios)
                    + f" | {row[name] / floor:.2g} |"
                )
        for name in COMPILED:
            key = f"{name}_first_call_seconds"
            if key in row:
                lines.append(
                    f"| {row['replicas']:.0e} | {WARM_UP_STEPS} | ({name}: first call {row[key]:.0f} s) "
                    "| | | | | |"
                )
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
    parser.add_argument(
        "--compile-times",
        action="store_true",
        help="also time the fused engine's first call in fresh processes, inductor's cache cold and warm "
        "(minutes on a busy machine)",
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
    lanes = [name for name in ("lanes_cpu_compiled", "lanes_cuda_compiled") if name in args.engines]
    fused_bytes = {
        "restart step" if restart else "SSP step": nbytes
        for restart, nbytes in bytes_of_fused_steps(simsgd.problems.Psi2x2(5.0)).items()
    }
    checks = {}
    if lanes:
        checks["lanes_vs_numpy_aligned_max_rel_diff"] = aligned_agreement()
    if args.compile_times and lanes:
        checks["first_call_seconds"] = {
            name: first_call_seconds("lanes", "cuda" if "cuda" in name else "cpu") for name in lanes
        }
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
        bytes_per_replica_step_moved={
            "lanes (state, keys and rows in and out of each compiled step)": fused_bytes,
            "fused_anchor (one float per replica per run)": anchor_bytes(min(args.steps)),
        },
        copy_GBps=bandwidth / 1e9,
        floor_replica_steps_per_s=bandwidth / nbytes,
        rows=rows,
        checks=checks,
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
