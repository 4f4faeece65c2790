"""Train a small MLP with DDP: full all-reduce, PowerSGD and PowerSGD+ (powersgd_plus_hook).

The data are synthetic and offline: inputs x ~ N(0, I₃₂) labelled by a fixed random
teacher network (10 classes), each node drawing its own batches; a held-out set of 4096
points measures accuracy. Every method starts from the same weights and sees the same
batches. Writes a PNG of the training loss and held-out accuracy per step.

    python -m simsgd.examples.train --world-size 4             # spawns 4 gloo processes
    torchrun --nproc-per-node 4 -m simsgd.examples.train       # or under torchrun
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from .. import cli
from ..distributed.hook import PowerSGDPlusState, powersgd_plus_hook
from ..distributed.launch import launch, under_torchrun
from ..output import atomic_savefig

__all__ = ["main", "train"]

DIM, CLASSES, HIDDEN = 32, 10, 128


def _teacher_labels(x):
    g = torch.Generator().manual_seed(12345)
    w1, w2 = torch.randn(DIM, 64, generator=g), torch.randn(64, CLASSES, generator=g)
    return (torch.tanh(x @ w1) @ w2).argmax(dim=1)


def _batch(node, step, size):
    g = torch.Generator().manual_seed(1_000_003 * (node + 1) + step)
    x = torch.randn(size, DIM, generator=g)
    return x, _teacher_labels(x)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES)
    )


def train(method, steps, batch, lr, rank, restart_period, start):
    """One run on this process; returns per-step (mean loss over nodes, held-out accuracy,
    floats this node sent).
    """
    model = DDP(_model())
    state = None
    if method != "all-reduce":
        state = PowerSGDPlusState(
            None,
            matrix_approximation_rank=rank,
            start_powerSGD_iter=start,
            restart_period=restart_period if method == "powersgd+" else None,
        )
        model.register_comm_hook(state, powersgd_plus_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    test_x, _ = _batch(-1, 0, 4096)
    test_y = _teacher_labels(test_x)
    losses, accuracies, floats = [], [], []
    full = sum(p.numel() for p in model.parameters())
    for t in range(steps):
        x, y = _batch(dist.get_rank(), t, batch)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        losses.append(float(mean_loss) / dist.get_world_size())
        floats.append(full if state is None else state.floats_sent_last_step)
        if t % 10 == 9 or t + 1 == steps:
            with torch.no_grad():
                accuracies.append((t + 1, float((model.module(test_x).argmax(1) == test_y).float().mean())))
    return losses, accuracies, floats


def _worker(args):
    torch.set_num_threads(1)
    out = {}
    for method in ("all-reduce", "powersgd", "powersgd+"):
        start = time.perf_counter()
        out[method] = train(
            method, args.steps, args.batch, args.lr, args.rank, args.restart_period, args.start
        )
        out[method] += (time.perf_counter() - start,)
    return out


def _plot(results, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    labels = {
        "all-reduce": "full all-reduce",
        "powersgd": f"PowerSGD (r = {args.rank})",
        "powersgd+": f"PowerSGD+ (r = {args.rank}, τ = {args.restart_period})",
    }
    for method, (losses, accuracies, _floats, _) in results.items():
        ax_loss.plot(range(1, len(losses) + 1), losses, lw=1, label=labels[method])
        ax_acc.plot(*zip(*accuracies), lw=1.5, label=labels[method])
    ax_loss.set(
        xlabel="step",
        ylabel="training loss (mean over nodes)",
        yscale="log",
        title=f"MLP on a synthetic 10-class task, N = {args.world_size}",
    )
    ax_acc.set(xlabel="step", ylabel="held-out accuracy", title="accuracy on 4096 held-out points")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def main(argv=None) -> int:
    parser = cli.Parser(prog="python -m simsgd.examples.train", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--world-size",
        type=cli.integer("--world-size", 1, 64),
        default=4,
        help="processes to spawn, 1..64 (ignored under torchrun)",
    )
    parser.add_argument("--steps", type=cli.integer("--steps", 1, 10**6), default=400)
    parser.add_argument("--batch", type=cli.integer("--batch", 1, 10**5), default=32, help="batch per node")
    parser.add_argument("--lr", type=cli.real("--lr", 0.0, 1e6, low_open=True), default=0.05)
    parser.add_argument("--rank", type=cli.integer("--rank", 1, 128), default=1, help="compression rank r")
    parser.add_argument(
        "--restart-period", type=cli.integer("--restart-period", 1), default=50, help="τ of PowerSGD+"
    )
    parser.add_argument("--start", type=cli.integer("--start", 0), default=10, help="start_powerSGD_iter")
    parser.add_argument(
        "--out",
        default="out/torch_train.png",
        help="the PNG to write (default out/torch_train.png; figures/torch_train.png is the committed one)",
    )
    args = parser.parse_args(argv)
    if not args.out.endswith(".png"):
        raise cli.UsageError(f"argument --out: must be a .png path, got {args.out!r}")
    cli.check_out_dir(os.path.dirname(args.out) or ".", names=(os.path.basename(args.out),))
    if under_torchrun():
        args.world_size = int(os.environ["WORLD_SIZE"])
    results = launch(_worker, None if under_torchrun() else args.world_size, args, timeout=120)[0]
    if under_torchrun() and int(os.environ["RANK"]) != 0:
        return 0
    print(f"{'method':12s} {'final loss':>10s} {'accuracy':>9s} {'floats/step':>12s} {'seconds':>8s}")
    for method, (losses, accuracies, floats, seconds) in results.items():
        tail = sum(losses[-20:]) / len(losses[-20:])
        print(
            f"{method:12s} {tail:10.4f} {accuracies[-1][1]:9.3f} "
            f"{sum(floats) / len(floats):12.0f} {seconds:8.1f}"
        )
    _plot(results, args, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="python -m simsgd.examples.train"))
