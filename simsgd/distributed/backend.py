"""Algorithm 2 across real processes: one node per process, averages by ``all_reduce``.

:func:`simulate_distributed` is :func:`simsgd.simulate` for a process group: it takes the
same options (checked by the same :func:`simsgd.engine.prepare`), calls the same
:func:`simsgd.algorithm.step` with :class:`~simsgd.distributed.ops.TorchOps`, draws node
``i``'s stochastic gradients from the same counter-based stream as the simulator's node
``i``, and records the same :class:`simsgd.Trace` with the same
:class:`simsgd.engine.Recorder`. Every process returns the whole trace.
"""

from __future__ import annotations

import inspect

import torch
import torch.distributed as dist

from .. import algorithm
from ..engine import Recorder, checked_grads, prepare, resolve_lr, simulate
from .._progress import Progress
from ..random import NodeStreams
from .ops import TorchOps

__all__ = ["simulate_distributed"]

_SIMULATE = inspect.signature(simulate)


def simulate_distributed(problem, *, group=None, device="cpu", progress=False, **options):
    """Run Algorithm 2 with this process as node ``dist.get_rank(group)`` of N = world size.

    Call it on every process of the group (after ``dist.init_process_group``), with the
    same arguments.

    Parameters
    ----------
    problem : problem object
        A NumPy oracle (see :mod:`simsgd.problems`); node i calls
        ``problem.stochastic_grads(X, N, draws)`` with ``draws.node_ids == [i]`` and
        gets (R, 1, m, n).
    group : ProcessGroup, optional
        Default: the world.
    device : str or torch.device
        Where the tensors of Algorithm 2 live ("cpu", or "cuda:k" with NCCL).
    progress : bool
        Progress bar on rank 0's stderr.
    **options
        Any option of :func:`simsgd.simulate` except ``nodes`` (the world size) and
        ``progress``, with the same defaults and ranges.

    Returns
    -------
    Trace
        Identical on every process; the same fields as :func:`simsgd.simulate`'s.

    Raises
    ------
    ValueError
        An option outside its range (TypeError: an unknown option).
    FloatingPointError
        A non-finite gradient or iterate, naming the step and the replicas. A
        non-finite gradient is seen by its own node only; the others then wait in the
        next ``all_reduce`` until the launcher stops them or the group's timeout.
    """
    if not dist.is_initialized():
        raise RuntimeError("simulate_distributed needs torch.distributed.init_process_group first")
    if "nodes" in options:
        raise ValueError("nodes is the process group's world size; do not pass it")
    ops = TorchOps(group)
    node = dist.get_rank(group)
    bound = _SIMULATE.bind(problem, nodes=ops.world_size, **options)
    bound.apply_defaults()
    args = {k: v for k, v in bound.arguments.items() if k not in ("problem", "progress")}
    run = prepare(problem, **args)
    lr = args["lr"]

    streams = NodeStreams(run.seed, run.replica_ids, [node])
    recorder = Recorder(problem, run)
    bar = Progress(run.steps, progress and node == 0, label=f"simulate_distributed[{ops.world_size}]")
    x_np, state = run.x, None
    q = None if run.q is None else torch.from_numpy(run.q).to(device)
    for t in range(run.steps):
        grads = torch.from_numpy(checked_grads(problem, x_np, run, streams.at(t))).to(device)
        if state is None:
            state = algorithm.init(torch.from_numpy(run.x).to(device), q, grads, run.config)
        state, info = algorithm.step(state, grads, t, resolve_lr(lr, t), run.config, ops)
        x_np = ops.asnumpy(state.x)
        degenerate = None if info.degenerate is None else ops.asnumpy(info.degenerate)
        recorder.record(t, x_np, ops.asnumpy(ops.node_mean(state.error)), ops.asnumpy(info.momentum),
                        degenerate)
        bar.update(t + 1)
    return recorder.trace(x_np, None if state.q is None else ops.asnumpy(state.q), lr)
