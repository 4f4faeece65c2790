"""Compression compute per matrix shape: the DDP hook's own arithmetic, timed on this machine.

For each shape (m, n) a one-process group trains a single bias-free linear layer (weight
m × n, input one row) under DDP four times, interleaved: with a hook that returns the
bucket as it is (the baseline), and with ``powersgd_plus_hook`` with its collectives
skipped (:mod:`benchmarks._collectives`) as PowerSGD (a power step every step), as
PowerSGD+ with τ = 1 (an SVD restart every step) and as the GaLore-style fixed basis (a
fixed-basis step every step). Each method's time per step minus the baseline's is the
hook's compute for that shape. One more model, ``STACK`` = 4 layers of 64 × 64 in one
bucket, separates the per-bucket part of that compute from the per-matrix part: the scale
model (:mod:`benchmarks.scale_model`) adds one bucket overhead per bucket and one
per-matrix cost per matrix. Medians over ``--repeats`` blocks.

CPU: one thread (as every benchmark here). ``--device cuda`` runs the same on a GPU
(NCCL group of one) — the place for GPU measurements; it has not been run (no GPU was
available to this work).

    python -m benchmarks.compression_cost --out benchmarks/results/scale-model     # ≈ 3 min
    python -m benchmarks.compression_cost --quick --out out/scale-model            # ≈ 20 s
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from simsgd._checks import check_int  # noqa: E402
from simsgd.cli import Parser, UsageError, check_out_dir, output_set, run  # noqa: E402
from simsgd.output import atomic_write_json  # noqa: E402
from simsgd.output import provenance as make_provenance  # noqa: E402

__all__ = ["main", "measure", "SHAPES", "KINDS"]

KINDS = ("power", "restart", "fixed")  # what the hook does in a step, per matrix
# The byte-level LM's matrices (so the model's validation on the bandwidth runs uses measured
# shapes), then square and transformer-like shapes up to 2048 for the fit.
BYTELM_SHAPES = [(256, 64), (64, 64), (192, 64), (64, 256)]
SHAPES = BYTELM_SHAPES + [(256, 256), (512, 512), (768, 768), (1024, 1024), (768, 3072), (3072, 768),
                          (2304, 768), (2048, 2048)]  # fmt: skip
QUICK = dict(shapes=BYTELM_SHAPES + [(256, 256)], repeats=3)
STACK = (4, (64, 64))  # 4 layers of 64 × 64 in one bucket: the per-bucket overhead
MIN_BLOCK_SECONDS = 0.05


def _shape(text):
    try:
        m, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be MxN (e.g. 768x3072), got {text!r}") from None
    if not (2 <= m <= 65536 and 2 <= n <= 65536):
        raise argparse.ArgumentTypeError(f"each side must be in [2, 65536], got {text!r}")
    return (m, n)


def _worker(shapes, rank, repeats, device):
    """Runs in a one-process group: {"m×n": {kind: seconds per step, "baseline": seconds}}."""
    import torch
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    from simsgd.distributed.hook import PowerSGDPlusState

    from . import _collectives as coll

    torch.set_num_threads(1)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    options = {
        "power": dict(),
        "restart": dict(restart_period=1),
        "fixed": dict(restart_period=10**9, between_restarts="fixed", use_error_feedback=False),
    }
    out = {}
    for layers, (m, n) in [(1, shape) for shape in shapes] + [STACK]:
        torch.manual_seed(0)
        x = torch.randn(1, n, device=device)
        runs = {}
        for kind in ("baseline", *KINDS):
            # layers > 1: square matrices in a chain (m = n), all in one bucket.
            module = nn.Sequential(*[nn.Linear(n, m, bias=False) for _ in range(layers)])
            model = DDP(module.to(device), device_ids=None)
            recorder = coll.Recorder()
            if kind == "baseline":
                model.register_comm_hook(recorder, coll.allreduce_skipped_hook)
            else:
                state = PowerSGDPlusState(None, matrix_approximation_rank=rank, start_powerSGD_iter=0,
                                          **options[kind])  # fmt: skip
                model.register_comm_hook((state, recorder), coll.skipped_hook)
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)

            def step(model=model, optimizer=optimizer, x=x):
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()

            for _ in range(3):  # past the bucket rebuild and (fixed) the first restart
                step()
            sync()
            start = time.perf_counter()
            step()
            sync()
            once = time.perf_counter() - start
            runs[kind] = (step, max(1, int(MIN_BLOCK_SECONDS / max(once, 1e-6))), [])
        for _ in range(repeats):  # interleaved
            for step, block, times in runs.values():
                sync()
                start = time.perf_counter()
                for _ in range(block):
                    step()
                sync()
                times.append((time.perf_counter() - start) / block)
        medians = {kind: statistics.median(times) for kind, (_, _, times) in runs.items()}
        out[f"{m}x{n}" if layers == 1 else f"{layers}*{m}x{n}"] = {
            "m": m, "n": n, "layers": layers, "rank": rank, "baseline": medians["baseline"],
            **{kind: max(0.0, medians[kind] - medians["baseline"]) for kind in KINDS},
            "raw": {kind: times for kind, (_, _, times) in runs.items()},
        }  # fmt: skip
    return out


def measure(shapes, rank=4, repeats=5, device="cpu"):
    """Hook compute seconds per step for each shape (see the module docstring).

    Parameters
    ----------
    shapes : list of (m, n)
    rank : int
        r.
    repeats : int
        Interleaved blocks per method; the median is kept.
    device : {"cpu", "cuda"}

    Returns
    -------
    dict
        {"m×n": {"m", "n", "layers", "rank", "baseline", "power", "restart", "fixed", "raw"}} in
        seconds, and the same for ``STACK`` under "4*64x64".
    """
    from simsgd.distributed.launch import launch

    backend = "nccl" if device == "cuda" else "gloo"
    return launch(_worker, 1, shapes, rank, repeats, device, backend=backend, timeout=3600)[0]


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.compression_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", type=_shape, nargs="+", help="MxN shapes (default: the built-in grid)")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="the LM's shapes and 256×256, 3 repeats")
    parser.add_argument("--out", default="out/scale-model")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else dict(shapes=SHAPES, repeats=5)
    args.shapes = args.shapes or defaults["shapes"]
    if "--repeats" not in (argv if argv is not None else sys.argv[1:]):
        args.repeats = defaults["repeats"]
    try:
        check_int("--rank", args.rank, 1, 64)
        check_int("--repeats", args.repeats, 1, 100)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("argument --device: cuda is not available here")
    name = f"compute_{args.device}.json"
    out = check_out_dir(args.out, names=(name,))
    started = time.time()
    shapes = measure([tuple(s) for s in args.shapes], args.rank, args.repeats, args.device)
    import torch

    device = torch.cuda.get_device_name(0) if args.device == "cuda" else _cpu_name()
    command = "python -m benchmarks.compression_cost " + " ".join(sys.argv[1:] if argv is None else argv)
    record = make_provenance(command, rank=args.rank, repeats=args.repeats, device=args.device)
    record.update(
        device_name=device, torch=torch.__version__, threads=1, seconds=round(time.time() - started, 1),
        load_average=os.getloadavg(), shapes=shapes,
    )  # fmt: skip
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, name), record)
    print(f"{'shape':>11} {'baseline':>9} {'power':>9} {'restart':>9} {'fixed':>9}  (ms per step, {device})")
    for key, v in shapes.items():
        print(f"{key:>11} " + " ".join(f"{1e3 * v[k]:9.3f}" for k in ("baseline", *KINDS)))
    print(f"wrote {os.path.join(out, name)}")
    return 0


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m benchmarks.compression_cost"))
