"""One process's share of the LM comparison: every (method, rank, τ, seed) run, in order.

Runs under :func:`simsgd.distributed.launch.launch` (one call per process of the group).
Each run builds :class:`~simsgd.examples.bytelm.ByteLM` from its seed, registers the
method's hook, and trains with AdamW under the learning-rate schedule; every
``eval_every`` steps it records the validation loss (nats per byte, all-reduced over the
nodes' shares of a fixed set of held-out windows), the floats this node has sent, and the
training seconds so far (evaluations excluded).
"""

import math
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..distributed.hook import PowerSGDPlusState, powersgd_plus_hook
from .bytelm import VALIDATION_SEED, ByteLM, read_corpus, windows

__all__ = ["worker", "runs", "learning_rate", "METHODS", "SCHEDULES"]

METHODS = ("all-reduce", "PowerSGD", "PowerSGD+", "GaLore-style")
SCHEDULES = ("constant", "cosine")
FINAL_LR_FRACTION = 0.1  # the cosine schedule ends at this fraction of --lr


def learning_rate(step, steps, lr, schedule):
    """The learning rate of step ``step`` (0-based) of ``steps``.

    Parameters
    ----------
    step, steps : int
    lr : float
        The peak (and, for ``"constant"``, the only) rate.
    schedule : {"constant", "cosine"}
        ``"cosine"``: lr · (f + (1 − f)(1 + cos(π step/steps))/2), f = ``FINAL_LR_FRACTION``.

    Returns
    -------
    float
    """
    if schedule == "constant":
        return lr
    f = FINAL_LR_FRACTION
    return lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * step / steps)))


def runs(args):
    """Every run's key (method, rank, τ, seed), seed-major so that an early stop leaves pairs."""
    methods = [("all-reduce", 0, 0)]
    for rank in args.ranks:
        methods.append(("PowerSGD", rank, 0))
        methods += [("PowerSGD+", rank, tau) for tau in args.taus]
        if args.galore_period:
            methods.append(("GaLore-style", rank, args.galore_period))
    return [(m, r, tau, seed) for seed in args.seeds for m, r, tau in methods]


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
    """One run: [(step, validation loss, floats sent, training seconds)], its CPU seconds, numel."""
    train, (val_inputs, val_targets) = data
    torch.manual_seed(seed)
    # The causal mask is a constant buffer: no need to broadcast it every step.
    model = DDP(ByteLM(args.width, args.layers, args.heads, args.context), broadcast_buffers=False)
    numel = sum(p.numel() for p in model.parameters())
    state = _state(method, rank, tau, args)
    if state is not None:
        model.register_comm_hook(state, powersgd_plus_hook)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(1_000_003 * seed + dist.get_rank())
    curve = [(0, _validation_loss(model, val_inputs, val_targets), 0, 0.0)]
    seconds, cpu = 0.0, time.process_time()
    for step in range(1, args.steps + 1):
        dist.barrier()  # every node starts the step together: the time is the slowest node's
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step - 1, args.steps, args.lr, args.schedule)
        x, y = windows(train, args.batch, args.context, generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        if step % args.eval_every == 0 or step == args.steps:
            floats = step * numel if state is None else state.floats_sent_total
            curve.append((step, _validation_loss(model, val_inputs, val_targets), floats, seconds))
    return curve, time.process_time() - cpu, numel


def worker(args):
    """Run every run of ``args`` on this process (call through ``launch``).

    Parameters
    ----------
    args : argparse.Namespace
        The LM comparison's options.

    Returns
    -------
    list of (key, curve, cpu_seconds, numel)
        key = (method, rank, τ, seed); curve = [(step, validation loss, floats sent by this
        node, training seconds)]; cpu_seconds: this process's CPU time for the run.
    """
    torch.set_num_threads(1)
    train, validation, _ = read_corpus(args.cap)
    val = windows(validation, args.val_windows, args.context, torch.Generator().manual_seed(VALIDATION_SEED))
    keys, out, start = runs(args), [], time.perf_counter()
    for k, key in enumerate(keys, 1):
        out.append((key, *_train(*key, (train, val), args)))
        if dist.get_rank() == 0 and not args.quick:  # progress on stdout, with an estimate of the rest
            spent = time.perf_counter() - start
            left = spent / k * (len(keys) - k) / 60
            print(f"[lm] run {k}/{len(keys)} ({key[0]} r={key[1]} τ={key[2]} seed {key[3]}) done at "
                  f"{spent / 60:.1f} min; about {left:.0f} min left", flush=True)  # fmt: skip
    return out
