"""The MLP example's model, data and training loop (torch; imported by the worker processes).

Synthetic, offline data: inputs x ~ N(0, I₃₂) labelled by a fixed random teacher network
(10 classes), each node drawing its own batches; a held-out set of 4096 points measures
accuracy. Every method starts from the same weights and sees the same batches.
"""

import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..distributed.hook import PowerSGDPlusState, powersgd_plus_hook

__all__ = ["train", "worker"]

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


def worker(args):
    """Every method's run on this process: {method: (losses, accuracies, floats, seconds)}."""
    torch.set_num_threads(1)
    out = {}
    for method in ("all-reduce", "powersgd", "powersgd+"):
        start = time.perf_counter()
        out[method] = train(
            method, args.steps, args.batch, args.lr, args.rank, args.restart_period, args.start
        )
        out[method] += (time.perf_counter() - start,)
    return out
