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

from .. import cli
from ..output import atomic_savefig

__all__ = ["main"]  # and train (simsgd.examples.mlp.train), loaded on first use


def launch(*args, **kwargs):
    """:func:`simsgd.distributed.launch.launch`, imported at the first call (torch loads then,
    after the CLI's Ctrl-C handling is in place).
    """
    from ..distributed.launch import launch as _launch

    return _launch(*args, **kwargs)


def __getattr__(name):
    if name == "train":  # the training loop, with torch, on first use
        from .mlp import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from ..distributed.launch import under_torchrun
    from ._quiet import launch_quietly
    from .mlp import worker

    torchrun = under_torchrun()
    if torchrun:
        args.world_size = int(os.environ["WORLD_SIZE"])
        results = launch(worker, None, args, timeout=120)[0]
    else:
        results = launch_quietly(launch, worker, args.world_size, args, timeout=120)[0]
    if torchrun and int(os.environ["RANK"]) != 0:
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
