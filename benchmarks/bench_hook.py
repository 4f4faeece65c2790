"""DDP step time and floats on the wire: powersgd_plus_hook against PyTorch's hooks.

An MLP of ``--layers`` square ``--width`` linear layers trains on N gloo processes (CPU).
Per step (forward, backward with the hook, SGD step) the median time of ``--repeats``
interleaved blocks of ``--block`` steps is reported for: plain all-reduce (no hook),
PyTorch's ``powerSGD_hook``, ours with ``restart_period=None`` (PowerSGD) and with τ
(PowerSGD+, with the SVD and the randomized restart), all at rank r. Floats sent per node
per step are our state's own count, beside Table 2's formula. Usage::

    python -m benchmarks.bench_hook [--world-size 2] [--width 256] [--layers 3] [--rank 4] [--tau 100]

Threads: every process runs with 1 OpenMP/MKL/OpenBLAS thread (set before torch and NumPy
load); mixing NumPy's and torch's pools on 2 cores was seen to slow small torch
linear-algebra calls by 100×.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import (  # noqa: E402
    PowerSGDState,
    batched_powerSGD_hook,
    powerSGD_hook,
)
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from simsgd.algorithm import mean_floats_per_step  # noqa: E402
from simsgd.cli import Parser, UsageError, integer, run  # noqa: E402
from simsgd.distributed import launch  # noqa: E402
from simsgd.distributed.hook import PowerSGDPlusState, powersgd_plus_hook  # noqa: E402
from simsgd.examples._quiet import launch_quietly  # noqa: E402

START = 2  # start_powerSGD_iter
MIN_COMPRESSION_RATE = 2  # PowerSGDState's default: compress m×n only if (m + n) r · 2 < m n
LIMITS = {  # option: (low, high), checked before any process starts
    "world_size": (1, 64), "width": (1, 8192), "layers": (1, 64), "batch": (1, 100_000),
    "rank": (1, 4096), "tau": (1, 10**6), "block": (1, 10_000), "repeats": (1, 1000),
}  # fmt: skip


def _model(width, layers):
    torch.manual_seed(0)
    mods = []
    for _ in range(layers):
        mods += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(width, 10))


def _setups(args):
    rank = args.rank
    return {
        "all-reduce": lambda: (None, None),
        "torch powerSGD_hook": lambda: (PowerSGDState(None, rank, START), powerSGD_hook),
        "ours, τ = None": lambda: (PowerSGDPlusState(None, rank, START), powersgd_plus_hook),
        f"ours, τ = {args.tau}": lambda: (
            PowerSGDPlusState(None, rank, START, restart_period=args.tau),
            powersgd_plus_hook,
        ),
        f"ours, τ = {args.tau}, randomized": lambda: (
            PowerSGDPlusState(None, rank, START, restart_period=args.tau, restart_method="randomized"),
            powersgd_plus_hook,
        ),
    }


def _step(model, optimizer, x, y):
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def _worker(args):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(dist.get_rank())
    x, y = torch.randn(args.batch, args.width, generator=g), torch.randint(0, 10, (args.batch,), generator=g)
    runs = {}
    for name, setup in _setups(args).items():
        model = DDP(_model(args.width, args.layers))
        state, hook = setup()
        if hook is not None:
            model.register_comm_hook(state, hook)
        runs[name] = (model, torch.optim.SGD(model.parameters(), lr=1e-3), state, [])
        for _ in range(START + 2):
            _step(*runs[name][:2], x, y)
    for _ in range(args.repeats):  # interleaved, so load changes hit all alike
        for model, optimizer, _state, times in runs.values():
            dist.barrier()
            start = time.perf_counter()
            for _ in range(args.block):
                _step(model, optimizer, x, y)
            times.append((time.perf_counter() - start) / args.block)
    floats = {}
    for name, (model, optimizer, state, _) in runs.items():
        if isinstance(state, PowerSGDPlusState):
            before, steps = state.floats_sent_total, args.tau if state.restart_period else 1
            for _ in range(steps):
                _step(model, optimizer, x, y)
            floats[name] = (state.floats_sent_total - before) / steps
    return (
        {name: statistics.median(run[3]) for name, run in runs.items()},
        floats,
        _batched_hook_outcome(args, x, y),
    )


def _batched_hook_outcome(args, x, y):
    """What torch's batched_powerSGD_hook does on its first compressed step."""
    model = DDP(_model(args.width, args.layers))
    model.register_comm_hook(PowerSGDState(None, args.rank, START), batched_powerSGD_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    try:
        for _ in range(START + 1):
            _step(model, optimizer, x, y)
    except Exception as exc:  # noqa: BLE001 - recorded, not handled
        inner = str(exc).split("\n")[0]
        return f"raises {type(exc).__name__} ({inner[:120]})"
    return "runs"


def _shapes(args):
    """The model's weight matrices (m, n)."""
    return [(args.width, args.width)] * args.layers + [(10, args.width)]


def compressed_shapes(args):
    """The matrices the hooks compress at rank ``args.rank``: (m + n) min(r, m, n) · 2 < m n."""
    return [(m, n) for m, n in _shapes(args) if (m + n) * min(args.rank, m, n) * MIN_COMPRESSION_RATE < m * n]


def _table2(args):
    """Floats per node per step from Table 2's formulas, for this model's matrices."""
    model = _model(args.width, args.layers)
    r, tau = args.rank, args.tau
    matrices = [
        p.shape
        for p in model.parameters()
        if p.dim() == 2 and (p.shape[0] + p.shape[1]) * min(r, *p.shape) * 2 < p.shape[0] * p.shape[1]
    ]
    rest = sum(p.numel() for p in model.parameters()) - sum(m * n for m, n in matrices)
    powersgd = (
        sum(mean_floats_per_step("powersgd", m, n, r, None, formula="table2") for m, n in matrices) + rest
    )
    plus = sum(mean_floats_per_step("powersgd+", m, n, r, tau, formula="table2") for m, n in matrices) + rest
    return {
        "all-reduce": sum(p.numel() for p in model.parameters()),
        "PowerSGD (m+n)r": powersgd,
        "PowerSGD+ nr + mr + mn/τ": plus,
    }


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.bench_hook", description=__doc__.split("\n")[0])
    defaults = dict(world_size=2, width=256, layers=3, batch=64, rank=4, tau=100, block=10, repeats=7)
    for name, (low, high) in LIMITS.items():
        option = f"--{name.replace('_', '-')}"
        parser.add_argument(
            option, type=integer(option, low, high), default=defaults[name], help=f"{low}..{high}"
        )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not compressed_shapes(args):
        largest = max((m * n - 1) // (MIN_COMPRESSION_RATE * (m + n)) for m, n in _shapes(args))
        raise UsageError(
            f"argument --rank: r = {args.rank} compresses none of the model's matrices "
            f"((m + n) r · {MIN_COMPRESSION_RATE} < m n fails for all); use --rank ≤ {largest}"
            if largest >= 1
            else f"argument --width: {args.width} is too small for any matrix to be compressed"
        )
    times, floats, batched = launch_quietly(launch, _worker, args.world_size, args, timeout=300)[0]
    table2 = _table2(args)
    if args.json:
        print(
            json.dumps(
                {
                    "seconds_per_step": times,
                    "floats_per_step": floats,
                    "table2": table2,
                    "batched_powerSGD_hook": batched,
                    "compressed_matrices": [list(shape) for shape in compressed_shapes(args)],
                    "torch": torch.__version__,
                },
                indent=1,
            )
        )
        return 0
    base, plain = times["torch powerSGD_hook"], times["all-reduce"]
    print(
        f"N = {args.world_size} gloo processes (CPU, 1 thread each), MLP {args.layers}×{args.width}², "
        f"batch {args.batch}, r = {args.rank}, torch {torch.__version__}; the hooks compress "
        f"{len(compressed_shapes(args))} of the {len(_shapes(args))} weight matrices"
    )
    print(f"{'hook':36s} {'ms/step':>8s} {'× torch hook':>12s} {'× all-reduce':>12s}")
    for name, seconds in times.items():
        print(f"{name:36s} {1e3 * seconds:8.2f} {seconds / base:12.2f} {seconds / plain:12.2f}")
    print("\nfloats per node per step (ours, measured) vs Table 2 (+ uncompressed biases):")
    for name, value in floats.items():
        print(f"  {name:34s} {value:12.1f}")
    for name, value in table2.items():
        print(f"  {name:22s} {value:12.1f}")
    print(f"\ntorch {torch.__version__} batched_powerSGD_hook: {batched}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m benchmarks.bench_hook"))
