"""A byte-level causal transformer trained with DDP on the Python standard library's sources.

Real text that every machine has: the ``.py`` files of the running interpreter's standard
library (``sysconfig.get_paths()["stdlib"]``, ``site-packages`` excluded), split into
training and held-out files with a fixed seed (10% of the files held out), each side read up
to a size cap. A tiny model (``--layers`` pre-norm transformer layers of width ``--width``,
context ``--context`` bytes, vocabulary 256) is trained with AdamW on N gloo processes for
each method: uncompressed all-reduce, PowerSGD, PowerSGD+ (τ ∈ ``--taus``) and the
GaLore-style baseline (P̃ from an SVD every ``--galore-period`` steps, fixed in between, no
error feedback), at each rank of ``--ranks``, for each seed of ``--seeds`` (the seed sets the
initial weights and the batches; the split is fixed). Every ``--eval-every`` steps the
validation loss (nats per byte on a fixed set of held-out windows) and the floats one node
has sent are recorded.

Writes into ``--out`` (default ``out/lm``): ``lm.csv`` (every evaluation), ``lm_table.md``
(final validation loss per method and rank: mean, Student-t 95% interval and range over
seeds; floats per node per step), ``lm_paired.md`` (differences to PowerSGD and to the
all-reduce, paired by seed), ``lm.png`` (validation loss against steps and against floats
sent) and ``provenance.json`` (command, seeds, corpus, torch, commit, date). ``--analyse``
redraws the figure and the paired table from an existing ``lm.csv``.

    python -m simsgd.examples.lm --quick --out out/lm-quick     # ≤ 60 s, what the test runs
    nice python -m simsgd.examples.lm --out results/lm           # the committed comparison
"""

import csv
import hashlib
import math
import os
import platform
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from .._checks import check_int, check_real
from ..cli import Parser, UsageError, check_out_dir, output_set, run
from ..distributed.hook import PowerSGDPlusState, powersgd_plus_hook
from ..distributed.launch import launch
from ..output import atomic_savefig, atomic_write_csv, atomic_write_json, atomic_write_text

__all__ = ["main", "ByteLM", "read_corpus", "windows", "label", "METHODS"]

METHODS = ("all-reduce", "PowerSGD", "PowerSGD+", "GaLore-style")
SPLIT_SEED = 0
VALIDATION_SEED = 12345


class ByteLM(nn.Module):
    """Embedding (256 → d) + learned positions, pre-norm transformer layers with a causal
    mask, final norm, linear head (d → 256). Input (batch, T ≤ context) bytes; output logits.
    """

    def __init__(self, width=64, layers=2, heads=4, context=64):
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.position = nn.Embedding(context, width)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 256, bias=False)
        self.register_buffer(
            "mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False
        )

    def forward(self, x):
        t = x.shape[1]
        h = self.embed(x) + self.position(torch.arange(t, device=x.device))
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


def read_corpus(cap_bytes):
    """(train bytes, validation bytes, description): the standard library split by file."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    if len(files) < 20:
        raise RuntimeError(f"found only {len(files)} .py files under {root}; need the standard library's")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    held_out = max(1, len(files) // 10)
    parts = {"validation": order[:held_out], "train": order[held_out:]}
    caps = {"train": cap_bytes, "validation": max(cap_bytes // 8, 4096)}
    data, info = {}, {"stdlib": str(root), "python": platform.python_version(), "files": len(files)}
    for name, indices in parts.items():
        chunks, size, used = [], 0, 0
        for i in indices:
            if size >= caps[name]:
                break
            text = files[i].read_bytes()[: caps[name] - size]
            chunks.append(text)
            size, used = size + len(text), used + 1
        blob = b"\n".join(chunks)
        data[name] = torch.frombuffer(bytearray(blob), dtype=torch.uint8).long()
        info[name] = {"files": used, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    return data["train"], data["validation"], info


def windows(data, count, context, generator):
    """``count`` random windows of ``context`` + 1 bytes: inputs and next-byte targets."""
    starts = torch.randint(0, len(data) - context - 1, (count,), generator=generator)
    rows = torch.stack([data[s : s + context + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]


def _state(method, rank, tau, args):
    if method == "all-reduce":
        return None
    options = dict(matrix_approximation_rank=rank, start_powerSGD_iter=args.start, random_seed=0)
    if method == "PowerSGD+":
        options["restart_period"] = tau
    elif method == "GaLore-style":
        options.update(restart_period=tau, between_restarts="fixed", use_error_feedback=False)
    return PowerSGDPlusState(None, **options)


def _validation_loss(model, inputs, targets):
    """Mean loss over the held-out windows, each node taking its share (all-reduced)."""
    world, me = dist.get_world_size(), dist.get_rank()
    total = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for i in range(me, len(inputs), world):
            logits = model.module(inputs[i : i + 1])
            total[0] += float(nn.functional.cross_entropy(logits[0], targets[i]))
            total[1] += 1
    dist.all_reduce(total)
    return float(total[0] / total[1])


def _train(method, rank, tau, seed, data, args):
    """One run on this process: [(step, validation loss, floats this node sent so far)], seconds."""
    train, (val_inputs, val_targets) = data
    torch.manual_seed(seed)
    model = DDP(ByteLM(args.width, args.layers, args.heads, args.context))
    numel = sum(p.numel() for p in model.parameters())
    state = _state(method, rank, tau, args)
    if state is not None:
        model.register_comm_hook(state, powersgd_plus_hook)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(1_000_003 * seed + dist.get_rank())
    curve, start = [(0, _validation_loss(model, val_inputs, val_targets), 0)], time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = windows(train, args.batch, args.context, generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).backward()
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            floats = step * numel if state is None else state.floats_sent_total
            curve.append((step, _validation_loss(model, val_inputs, val_targets), floats))
    return curve, time.perf_counter() - start, numel


def _runs(args):
    runs = [("all-reduce", 0, 0)]
    for rank in args.ranks:
        runs.append(("PowerSGD", rank, 0))
        runs += [("PowerSGD+", rank, tau) for tau in args.taus]
        runs.append(("GaLore-style", rank, args.galore_period))
    return [(m, r, tau, seed) for seed in args.seeds for m, r, tau in runs]


def _worker(args):
    torch.set_num_threads(1)
    train, validation, _ = read_corpus(args.cap)
    val = windows(validation, args.val_windows, args.context, torch.Generator().manual_seed(VALIDATION_SEED))
    return [(key, *_train(*key, (train, val), args)) for key in _runs(args)]


def label(method, rank, tau):
    """The run's name in tables and legends, e.g. ``PowerSGD+ r=4 τ=10``."""
    if method == "all-reduce":
        return method
    return f"{method} r={rank}" + (f" τ={tau}" if method in ("PowerSGD+", "GaLore-style") else "")


# Student-t 0.975 quantiles for 1–9 degrees of freedom (scipy is not a dependency).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)


def _t_interval(values):
    """Mean and the half-width of the Student-t 95% interval (0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    df = len(values) - 1
    if df < 1:
        return float(values.mean()), 0.0
    z = 1.959964
    # Beyond the table: Cornish–Fisher's two terms, within 0.003 of the quantile for df ≥ 10.
    t = (
        _T975[df - 1]
        if df <= 9
        else z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    )
    return float(values.mean()), float(t * values.std(ddof=1) / math.sqrt(len(values)))


def _group(results):
    """{(method, rank, tau): [(curve, seconds), ...] over seeds}."""
    groups = {}
    for (method, rank, tau, _seed), curve, seconds, _numel in results:
        groups.setdefault((method, rank, tau), []).append((curve, seconds))
    return groups


def _table(groups, args, numel):
    lines = [
        f"Byte-level LM on the Python {platform.python_version()} standard library, N = {args.world_size} "
        f"gloo processes, {args.steps} steps, AdamW lr {args.lr}, batch {args.batch}×{args.context} bytes "
        f"per node, {numel} parameters; validation loss in nats/byte after the last step over "
        f"{len(args.seeds)} seed(s): mean ± Student-t 95% half-width [min, max].",
        "",
        "| method | final validation loss | [min, max] | floats/node/step | × all-reduce | s/run |",
        "|---|---|---|---|---|---|",
    ]
    for (method, rank, tau), runs in groups.items():
        finals = [curve[-1][1] for curve, _ in runs]
        mean, half = _t_interval(finals)
        floats = np.mean([curve[-1][2] / curve[-1][0] for curve, _ in runs])
        seconds = np.mean([s for _, s in runs])
        spread = f"[{min(finals):.4f}, {max(finals):.4f}]"
        lines.append(
            f"| {label(method, rank, tau)} | {mean:.4f} ± {half:.4f} | {spread} "
            f"| {floats:,.0f} | {floats / numel:.3f} | {seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _curves(rows):
    """{(method, rank, tau): {seed: [(step, loss, floats), ...]}} from ``lm.csv``'s rows."""
    curves = {}
    for method, rank, tau, seed, step, loss, floats in rows:
        key = (method, int(rank), int(tau))
        curves.setdefault(key, {}).setdefault(int(seed), []).append((int(step), float(loss), int(floats)))
    return curves


def _paired(curves):
    """Final validation loss of each compressed run minus PowerSGD's (same rank) and minus the
    all-reduce's, seed by seed (same initial weights and batches): mean ± Student-t 95%.
    """
    final = {key: {seed: curve[-1][1] for seed, curve in runs.items()} for key, runs in curves.items()}
    lines = [
        "Final validation loss differences, paired by seed (same initial weights and batches), "
        "mean ± Student-t 95% half-width over seeds; negative = lower loss than the reference.",
        "",
        "| method | − PowerSGD (same r) | − all-reduce |",
        "|---|---|---|",
    ]
    reference = final.get(("all-reduce", 0, 0), {})
    for (method, rank, tau), losses in final.items():
        if method == "all-reduce":
            continue
        cells = []
        for ref in (final.get(("PowerSGD", rank, 0), {}), reference):
            seeds = sorted(set(losses) & set(ref))
            if method == "PowerSGD" and ref is not reference or not seeds:
                cells.append("–")
                continue
            mean, half = _t_interval([losses[s] - ref[s] for s in seeds])
            cells.append(f"{mean:+.4f} ± {half:.4f}")
        lines.append(f"| {label(method, rank, tau)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    colors = {
        "all-reduce": "black",
        "PowerSGD": "tab:blue",
        "PowerSGD+": "tab:red",
        "GaLore-style": "tab:orange",
    }
    ranks = sorted({rank for _, rank, _ in curves if rank})
    taus = sorted({tau for method, _, tau in curves if method == "PowerSGD+"})
    styles = ["-", "--", ":", "-."]
    fig, (by_step, by_floats) = plt.subplots(1, 2, figsize=(12, 4.8))
    low, high = math.inf, -math.inf
    for (method, rank, tau), runs in curves.items():
        runs = list(runs.values())
        steps = np.array([s for s, _, _ in runs[0]])
        losses = np.array([[v for _, v, _ in curve] for curve in runs])
        floats = np.mean([[f for _, _, f in curve] for curve in runs], axis=0)
        mean = losses.mean(axis=0)
        later = steps >= steps[1] if len(steps) > 1 else steps >= 0  # the y range leaves out step 0
        low, high = min(low, losses[:, later].min()), max(high, losses[:, later].max())
        style = styles[ranks.index(rank) % len(styles)] if rank else "-"
        color = colors[method]
        if method == "PowerSGD+" and len(taus) > 1:  # a lighter red for the longer period
            color = plt.get_cmap("Reds")(0.9 - 0.4 * taus.index(tau) / (len(taus) - 1))
        for ax, x in ((by_step, steps), (by_floats, floats)):
            keep = x > 0 if ax is by_floats else np.ones(len(x), bool)  # log axis: no 0
            ax.plot(x[keep], mean[keep], style, color=color, lw=1.4, label=label(method, rank, tau))
            if len(runs) > 1:
                band = (losses.min(axis=0)[keep], losses.max(axis=0)[keep])
                ax.fill_between(x[keep], *band, color=color, alpha=0.12, lw=0)
    margin = 0.05 * (high - low)
    by_step.set(xlabel="step", ylabel="validation loss (nats/byte)", title="held-out loss against steps")
    by_floats.set(
        xlabel="floats sent per node (cumulative, log scale)",
        xscale="log",
        ylabel="validation loss (nats/byte)",
        title="held-out loss against communication",
    )
    by_floats.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    by_floats.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    by_floats.xaxis.set_minor_formatter(NullFormatter())
    for ax in (by_step, by_floats):
        ax.set_ylim(low - margin, high + margin)
        ax.grid(alpha=0.3)
    by_floats.legend(fontsize=7, ncol=2)
    fig.suptitle(
        "mean over seeds; bands: min–max over seeds; y axis from the second evaluation on", fontsize=9
    )
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def _commit():
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def _parse(argv):
    parser = Parser(prog="python -m simsgd.examples.lm", description=__doc__.split("\n")[0])
    parser.add_argument("--world-size", type=int, default=4, help="gloo processes N")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8, help="windows per node per step")
    parser.add_argument("--context", type=int, default=64, help="bytes per window")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--taus", type=int, nargs="+", default=[10, 100], help="PowerSGD+ restart periods")
    parser.add_argument("--galore-period", type=int, default=100, help="GaLore-style refresh period")
    parser.add_argument("--start", type=int, default=10, help="start_powerSGD_iter")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cap", type=int, default=2_000_000, help="training bytes read (held out: cap/8)")
    parser.add_argument("--val-windows", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="N = 2, 20 steps, r = 4, one seed (≤ 60 s)")
    parser.add_argument("--out", default="out/lm")
    parser.add_argument(
        "--analyse", action="store_true", help="only redraw lm.png and lm_paired.md from --out's lm.csv"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.world_size, args.steps, args.eval_every, args.ranks = 2, 20, 10, [4]
        args.seeds, args.cap, args.val_windows, args.taus, args.galore_period = [0], 200_000, 16, [10], 10
    try:
        lows = dict(world_size=1, steps=1, eval_every=1, batch=1, context=2, width=1, layers=1, heads=1)
        lows.update(galore_period=1, start=0, cap=10_000, val_windows=1)
        for name, low in lows.items():
            check_int(f"--{name.replace('_', '-')}", getattr(args, name), low)
        for name in ("ranks", "taus", "seeds"):
            for value in getattr(args, name):
                check_int(f"--{name}", value, 0 if name == "seeds" else 1)
        check_real("--lr", args.lr, 0.0, low_open=True)
        if args.width % args.heads:
            raise ValueError(f"--width must be a multiple of --heads, got {args.width} and {args.heads}")
    except ValueError as err:
        raise UsageError(str(err)) from None
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    out = check_out_dir(
        args.out, names=("lm.csv", "lm_table.md", "lm_paired.md", "provenance.json", "lm.png")
    )
    start = time.perf_counter()
    if args.analyse:
        return _analyse(out)
    results = launch(_worker, args.world_size, args, timeout=300)[0]
    numel = results[0][3]
    groups = _group(results)
    rows = [
        (method, rank, tau, seed, step, f"{loss:.6f}", floats)
        for (method, rank, tau, seed), curve, _, _ in results
        for step, loss, floats in curve
    ]
    curves = _curves(rows)
    if not all(math.isfinite(float(r[5])) for r in rows):
        raise FloatingPointError("a validation loss is not finite; nothing was written")
    _, _, corpus = read_corpus(args.cap)
    provenance = {
        "command": "python -m simsgd.examples.lm " + " ".join(sys.argv[1:] if argv is None else argv),
        "options": {k: v for k, v in vars(args).items() if k != "out"},
        "corpus": corpus,
        "torch": torch.__version__,
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    table = _table(groups, args, numel)
    with output_set(out) as stage:
        atomic_write_csv(
            os.path.join(stage, "lm.csv"),
            ["method", "rank", "tau", "seed", "step", "validation_loss", "floats_per_node"],
            rows,
        )
        atomic_write_text(os.path.join(stage, "lm_table.md"), table)
        atomic_write_text(os.path.join(stage, "lm_paired.md"), _paired(curves))
        atomic_write_json(os.path.join(stage, "provenance.json"), provenance)
        _plot(curves, os.path.join(stage, "lm.png"))
    print(table, end="")
    names = "lm.csv, lm_table.md, lm_paired.md, lm.png, provenance.json"
    print(f"wrote {names} into {out} ({provenance['seconds']} s)")
    return 0


def _analyse(out):
    """Redraw ``lm.png`` and rewrite ``lm_paired.md`` from ``out``/lm.csv (no training)."""
    path = os.path.join(out, "lm.csv")
    if not os.path.isfile(path):
        raise UsageError(f"argument --analyse: no lm.csv in {out!r}")
    with open(path, newline="") as f:
        rows = [tuple(r.values()) for r in csv.DictReader(f)]
    curves = _curves(rows)
    paired = _paired(curves)
    with output_set(out) as stage:
        atomic_write_text(os.path.join(stage, "lm_paired.md"), paired)
        _plot(curves, os.path.join(stage, "lm.png"))
    print(paired, end="")
    print(f"wrote lm_paired.md and lm.png into {out} from its lm.csv")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m simsgd.examples.lm"))
