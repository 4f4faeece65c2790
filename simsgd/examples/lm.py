"""A byte-level LM trained with DDP on the Python standard library: the methods compared, powered.

Every method trains the same small causal transformer (:mod:`simsgd.examples.bytelm`) on
N gloo processes, from the same initial weights and batches for each seed: uncompressed
all-reduce, PowerSGD, PowerSGD+ (τ ∈ ``--taus``) and the GaLore-style baseline (P̃ from an
SVD every ``--galore-period`` steps, fixed in between, no error feedback), at each rank of
``--ranks``, for each seed of ``--seeds``. AdamW, cosine learning-rate decay to a tenth of
``--lr`` (``--schedule``). Every ``--eval-every`` steps: the validation loss (nats per
byte on fixed held-out windows), the floats one node has sent, the training seconds.

The question and its test are fixed here, before any run: is each method's final
validation loss within ``MARGIN`` = ±0.01 nats/byte of PowerSGD's (and of the
all-reduce's)? Two one-sided t tests on the seed-paired differences
(:func:`simsgd.stats.tost`, Bonferroni over the comparisons) answer "equivalent",
"different" or "undecided" (with the number of seeds that would decide). Why ±0.01: it is
a 1% change of per-byte perplexity (e^0.01), a quarter of what compression cost at 200
steps in the earlier run (0.024–0.039), and 10 seeds resolve it when the paired
differences' spread is as measured there (s ≈ 0.001–0.007).
Training has flattened when every method's mean loss fell by less than MARGIN/2 over the
last 20% of the steps (:func:`~simsgd.examples.lm_analysis.flattening`; the table says
whether it held).

Writes into ``--out`` (default ``out/lm``): ``lm.csv`` (every evaluation), ``lm_table.md``
(final loss, flattening, floats), ``lm_tost.md`` (the verdicts), ``lm_target.md`` (steps,
seconds and floats to a target loss), ``lm.png`` and ``provenance.json`` (command, commit,
corpus, load average during the run, CPU seconds). ``--analyse`` rewrites the tables and
the figure from an existing ``lm.csv``.

    python -m simsgd.examples.lm --quick --out out/lm-quick     # ≤ 1 min, what the test runs
    nice python -m simsgd.examples.lm --out results/lm           # the committed comparison
"""

import argparse
import csv
import math
import os
import sys
import time

from .._checks import check_int, check_real
from ..cli import Parser, UsageError, check_out_dir, output_set, run

__all__ = ["main", "MARGIN", "QUICK", "MAX_WORLD_SIZE"]

MARGIN = 0.01  # nats/byte: the equivalence margin, fixed before the run (module docstring)
MAX_WORLD_SIZE = 64  # processes; each holds torch (≈ 0.3 GB)
GB_PER_PROCESS = 0.35
QUICK = dict(
    world_size=2, steps=20, ranks=[4], seeds=[0, 1, 2], cap=200_000, val_windows=16,
    taus=[10], galore_period=10,
)  # fmt: skip
NAMES = ("lm.csv", "lm_table.md", "lm_tost.md", "lm_target.md", "lm_claims.json", "provenance.json", "lm.png")
HEADER = ["method", "rank", "tau", "seed", "step", "validation_loss", "floats_per_node", "seconds"]
# (option, low, high): every size is bounded before anything is launched.
LIMITS = [
    ("world_size", 1, MAX_WORLD_SIZE), ("steps", 1, 10**6), ("batch", 1, 4096), ("context", 2, 4096),
    ("width", 1, 4096), ("layers", 1, 64), ("heads", 1, 256), ("galore_period", 0, 10**6),
    ("start", 0, 10**6), ("cap", 10_000, 10**9), ("val_windows", 1, 10**5),
]  # fmt: skip


def launch(*args, **kwargs):
    """:func:`simsgd.distributed.launch.launch`, imported at the first call (torch loads then,
    after the CLI's Ctrl-C handling is in place).
    """
    from ..distributed.launch import launch as _launch

    return _launch(*args, **kwargs)


def _parser():
    parser = Parser(prog="python -m simsgd.examples.lm", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--world-size", type=int, default=4, help=f"gloo processes N, 1..{MAX_WORLD_SIZE}")
    add("--steps", type=int, default=1000)
    add("--eval-every", type=int, help="steps between evaluations (default: 50, 10 with --quick, ≤ --steps)")
    add("--batch", type=int, default=8, help="windows per node per step")
    add("--context", type=int, default=64, help="bytes per window")
    add("--width", type=int, default=64)
    add("--layers", type=int, default=2)
    add("--heads", type=int, default=4)
    add("--lr", type=float, default=3e-3, help="peak AdamW learning rate")
    add("--schedule", choices=("constant", "cosine"), default="cosine")
    add("--ranks", type=int, nargs="+", default=[4])
    add("--taus", type=int, nargs="+", default=[10, 100], help="PowerSGD+ restart periods")
    add("--galore-period", type=int, default=100, help="GaLore-style refresh period (0: no such row)")
    add("--start", type=int, default=10, help="start_powerSGD_iter")
    add("--seeds", type=int, nargs="+", default=list(range(10)))
    add("--cap", type=int, default=2_000_000, help="training bytes read (held out: cap/8)")
    add("--val-windows", type=int, default=64)
    add("--quick", action="store_true", help="other defaults: N = 2, 20 steps, r = 4, 3 seeds (≈ 20 s)")
    add("--out", default="out/lm")
    add("--analyse", action="store_true", help="only rewrite the tables and lm.png from --out's lm.csv")
    return parser


def _parse(argv):
    """Parse and check every option before anything runs; ``--quick`` changes defaults only."""
    parser = _parser()
    quick = argparse.ArgumentParser(add_help=False)
    quick.add_argument("--quick", action="store_true")
    is_quick = quick.parse_known_args(argv)[0].quick
    if is_quick:
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    if args.eval_every is None and isinstance(args.steps, int):
        args.eval_every = max(1, min(10 if is_quick else 50, args.steps))
    try:
        for name, low, high in LIMITS:
            check_int(f"--{name.replace('_', '-')}", getattr(args, name), low, high)
        check_int("--eval-every", args.eval_every, 1, args.steps)
        for name, low, high in (("ranks", 1, 4096), ("taus", 1, 10**6), ("seeds", 0, 2**31 - 1)):
            for value in getattr(args, name):
                check_int(f"--{name}", value, low, high)
        if len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f"--seeds must be distinct, got {args.seeds}")
        check_real("--lr", args.lr, 0.0, 10.0, low_open=True)
        if args.width % args.heads:
            raise ValueError(f"--width must be a multiple of --heads, got {args.width} and {args.heads}")
        _check_memory(args.world_size)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return args


def _check_memory(world_size):
    """Refuse a world size whose processes would not fit in the available memory."""
    try:
        with open("/proc/meminfo") as f:
            available = {k: v for k, v in (line.split(":", 1) for line in f)}["MemAvailable"]
        gib = int(available.split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return
    need = world_size * GB_PER_PROCESS
    if need > gib:
        raise ValueError(
            f"--world-size {world_size} needs about {need:.0f} GB ({GB_PER_PROCESS} per process); "
            f"{gib:.1f} GB are available"
        )


def _rows(results):
    return [
        (method, rank, tau, seed, step, f"{loss:.6f}", floats, f"{seconds:.4f}")
        for (method, rank, tau, seed), curve, _, _ in results
        for step, loss, floats, seconds in curve
    ]


def _header(args, numel):
    return (
        f"Byte-level LM on the Python standard library, N = {args.world_size} gloo processes, "
        f"{args.steps} steps, AdamW lr {args.lr} ({args.schedule}), batch {args.batch}×{args.context} "
        f"bytes per node, {numel:,} parameters; final validation loss in nats/byte: mean ± Student-t 95% "
        "half-width over seeds [min, max]; s/run: training seconds on this machine (the provenance "
        "has its load)."
    )


def _write(out, rows, args, numel, provenance):
    from ..output import atomic_write_csv, atomic_write_json, atomic_write_text
    from .lm_analysis import claims, curves_from_rows, final_table, target_table, tost_table
    from .lm_figure import plot

    curves = curves_from_rows(rows)
    tables = {
        "lm_table.md": final_table(curves, _header(args, numel), MARGIN / 2),
        "lm_tost.md": tost_table(curves, MARGIN),
        "lm_target.md": target_table(curves, MARGIN),
    }
    with output_set(out) as stage:
        if provenance is not None:
            atomic_write_csv(os.path.join(stage, "lm.csv"), HEADER, rows)
            atomic_write_json(os.path.join(stage, "provenance.json"), provenance)
        for name, text in tables.items():
            atomic_write_text(os.path.join(stage, name), text)
        atomic_write_json(
            os.path.join(stage, "lm_claims.json"), {"claims": claims(curves, MARGIN, MARGIN / 2)}
        )
        plot(curves, MARGIN, os.path.join(stage, "lm.png"))
    return tables


def main(argv=None) -> int:
    args = _parse(argv)
    out = check_out_dir(args.out, names=NAMES)
    if args.analyse:
        return _analyse(out, args)
    import torch

    from ..output import provenance as make_provenance
    from ._load import LoadSampler
    from ._quiet import launch_quietly
    from .bytelm import read_corpus
    from .lm_train import worker

    load, start = LoadSampler(period=10.0), time.perf_counter()
    results = launch_quietly(launch, worker, args.world_size, args, timeout=600, every=load)
    rank0 = results[0]
    numel = rank0[0][3]
    rows = _rows(rank0)
    if not all(math.isfinite(float(r[5])) for r in rows):
        raise FloatingPointError("a validation loss is not finite; nothing was written")
    command = "python -m simsgd.examples.lm " + " ".join(sys.argv[1:] if argv is None else argv)
    provenance = make_provenance(command, **{k: v for k, v in vars(args).items() if k != "out"})
    cpu = [sum(run[2] for run in rank) for rank in results]
    steps = len(rank0) * args.steps
    provenance.update(
        margin=MARGIN,
        corpus=read_corpus(args.cap)[2],
        torch=torch.__version__,
        seconds=round(time.perf_counter() - start, 1),
        training_seconds=round(sum(run[1][-1][3] for run in rank0), 1),
        cpu_seconds_per_rank=[round(c, 1) for c in cpu],
        cpu_seconds_per_step_all_ranks=round(sum(cpu) / steps, 5),
        load_average_1min=load.summary(),
    )
    tables = _write(out, rows, args, numel, provenance)
    print("\n".join(tables.values()), end="")
    print(f"wrote {', '.join(NAMES)} into {out} ({provenance['seconds']} s)")
    return 0


def _analyse(out, args):
    """Rewrite the tables and ``lm.png`` from ``out``/lm.csv (no training).

    The table's header describes the run recorded in ``out``/provenance.json when there is one.
    A ``lm.csv`` written before the seconds column existed is read with the seconds unknown.
    """
    path = os.path.join(out, "lm.csv")
    if not os.path.isfile(path):
        raise UsageError(f"argument --analyse: no lm.csv in {out!r}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames not in (HEADER, HEADER[:-1]):
            raise UsageError(f"argument --analyse: {path!r} has columns {reader.fieldnames}, not {HEADER}")
        rows = [tuple(r.get(h, "nan") for h in HEADER) for r in reader]
    recorded = _recorded_options(out)
    if recorded:
        args = argparse.Namespace(**{**vars(args), "schedule": "constant", **recorded})
    later = [r for r in rows if int(r[4]) > 0]
    numel = int(later[0][6]) // int(later[0][4]) if later and later[0][0] == "all-reduce" else 0
    tables = _write(out, rows, args, numel, None)
    print("\n".join(tables.values()), end="")
    print(f"wrote the tables and lm.png into {out} from its lm.csv")
    return 0


def _recorded_options(out):
    """The options of the run recorded in ``out``/provenance.json ({} if none can be read)."""
    import json

    try:
        with open(os.path.join(out, "provenance.json")) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    options = record.get("settings") or record.get("options") or {}
    return {
        k: v for k, v in options.items() if k in ("world_size", "steps", "lr", "schedule", "batch", "context")
    }


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m simsgd.examples.lm"))
