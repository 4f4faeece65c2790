"""Algorithm 2 across real processes: one node per process, node means by collectives.

:func:`simulate_distributed` is :func:`simsgd.simulate` for a process group: it takes the
same options (checked by the same :func:`simsgd.engine.prepare`), calls the same
:func:`simsgd.algorithm.step` with :class:`~simsgd.distributed.ops.TorchOps` (or
:class:`~simsgd.distributed.ops.ReferenceOps`), draws node ``i``'s stochastic gradients
from the same counter-based stream as the simulator's node ``i``, and records the same
:class:`simsgd.Trace` with the same :class:`simsgd.engine.Recorder`. Every process returns
the whole trace.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor

import torch.distributed as dist

from .._checks import check_int
from ..engine import Recorder, checked_grads, prepare, run_loop, simulate
from ..streams import NodeStreams
from .ops import ReferenceOps, TorchOps

__all__ = ["simulate_distributed", "prepare_distributed", "in_lanes"]

_SIMULATE = inspect.signature(simulate)


def prepare_distributed(problem, options, group=None):
    """:func:`simsgd.engine.prepare` for this group: N = world size, the rest from ``options``.

    Returns
    -------
    run : simsgd.engine.Run
    lr : float or callable
    """
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed.init_process_group must be called first")
    if "nodes" in options or "progress" in options:
        raise ValueError(
            "nodes is the process group's world size and progress a keyword of its own; "
            "do not pass them as options"
        )
    bound = _SIMULATE.bind(problem, nodes=dist.get_world_size(group), **options)
    bound.apply_defaults()
    args = {k: v for k, v in bound.arguments.items() if k not in ("problem", "progress")}
    return prepare(problem, **args), args["lr"]


def simulate_distributed(
    problem, *, group=None, device="cpu", reference=False, error_block=64, progress=False, **options
):
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
        Where the tensors live ("cpu", or "cuda:k" with NCCL). Ignored when ``reference``.
    reference : bool
        False: torch tensors and ``all_reduce`` (:class:`~simsgd.distributed.ops.TorchOps`).
        True: NumPy arrays and an all-gather summed in node order
        (:class:`~simsgd.distributed.ops.ReferenceOps`, gloo only): bit for bit
        :func:`simsgd.simulate`'s trajectory.
    error_block : int ≥ 1
        The trace's ||(1/N) Σ_i e^{(i)}||² needs a node mean that Algorithm 2 itself does
        not; it is reduced once per ``error_block`` steps, stacked, to save collectives.
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
        next collective until :func:`~simsgd.distributed.launch` stops them, or the
        group's timeout passes.
    """
    run, lr = prepare_distributed(problem, options, group)
    error_block = check_int("error_block", error_block, 1)
    ops = ReferenceOps(group) if reference else TorchOps(group, device)
    node = dist.get_rank(group)
    streams = NodeStreams(run.seed, run.replica_ids, [node])

    def oracle(x, t):  # the NumPy oracle on this node's draws
        return ops.from_numpy(checked_grads(problem, ops.asnumpy(x), run, streams.at(t)))

    recorder = Recorder(problem, run, ops, error_block=error_block, host_oracle=True)
    state = run_loop(
        run,
        lr,
        oracle,
        ops=ops,
        recorder=recorder,
        progress=progress and node == 0,
        label=f"simulate_distributed[{ops.world_size}]",
    )
    return recorder.trace(state.x, state.q, lr)


def in_lanes(fn, cases, lanes=4):
    """``[fn(problem, group=g, **options) for problem, options in cases]``, ``lanes`` at a time.

    Each lane is a thread with a process group of its own over the same ranks, and runs
    cases ``k, k + lanes, …`` in order, so every rank issues the same collectives on each
    group in the same order; the lanes' waits in their collectives overlap. Call it on
    every rank with the same arguments.

    Parameters
    ----------
    fn : callable
        E.g. :func:`simulate_distributed`; called with ``group=`` its lane's group.
    cases : list of (problem, dict)
    lanes : int ≥ 1

    Returns
    -------
    list
        ``fn``'s results, in the order of ``cases``.
    """
    lanes = min(check_int("lanes", lanes, 1), max(len(cases), 1))
    groups = [dist.new_group() for _ in range(lanes)]

    def lane(k):
        return [fn(problem, group=groups[k], **options) for problem, options in cases[k::lanes]]

    try:
        with ThreadPoolExecutor(lanes) as pool:
            done = list(pool.map(lane, range(lanes)))
    finally:
        for group in groups:
            dist.destroy_process_group(group)
    results = [None] * len(cases)
    for k, values in enumerate(done):
        results[k::lanes] = values
    return results
