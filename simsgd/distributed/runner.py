"""Algorithm 2 across real processes: one node per process, node means by collectives.

:func:`simulate_distributed` is :func:`simsgd.simulate` for a process group: it takes the
same options (checked by the same :func:`simsgd.run.prepare`), calls the same
:func:`simsgd.algorithm.step` with :class:`~simsgd.distributed.ops.TorchOps` (or
:class:`~simsgd.distributed.ops.ReferenceOps`), draws node ``i``'s stochastic gradients
from the same counter-based stream as the simulator's node ``i``, and records the same
:class:`simsgd.Trace` with the same :class:`simsgd.recorder.Recorder`. Every process returns
the whole trace.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch.distributed as dist

from .._checks import check_int
from ..algorithm import Config
from ..engine import simulate
from ..loop import checked_grads, run_loop
from ..recorder import Recorder
from ..run import prepare
from ..streams import NodeStreams
from ..trace import Trace
from .ops import ReferenceOps, TorchOps

__all__ = ["simulate_distributed", "simulate_sharded", "concat_traces", "prepare_distributed", "in_lanes"]

_RUN_OPTIONS = ("steps", "replicas", "seed", "q_init", "dtype", "x0", "replica_ids", "lr")  # prepare's own
_DEFAULTS = {name: p.default for name, p in inspect.signature(simulate).parameters.items()}


def prepare_distributed(problem, options, group=None):
    """:func:`simsgd.run.prepare` for this group: N = world size, the rest from ``options``
    (with :func:`simsgd.simulate`'s defaults).

    Returns
    -------
    run : simsgd.run.Run
    lr : float or callable
    """
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed.init_process_group must be called first")
    if "nodes" in options or "progress" in options:
        raise ValueError(
            "nodes is the process group's world size and progress a keyword of its own; "
            "do not pass them as options"
        )
    engine_only = {"backend", "compile", "record"} & set(options)
    if engine_only:
        raise ValueError(f"{sorted(engine_only)} are options of simsgd.simulate, not of a distributed run")
    config_fields = set(Config.__dataclass_fields__)
    unknown = set(options) - config_fields - set(_RUN_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)} (see simsgd.simulate)")
    run_options = {name: options.get(name, _DEFAULTS[name]) for name in _RUN_OPTIONS}
    config = Config.from_options(options)
    return prepare(problem, config, nodes=dist.get_world_size(group), **run_options), run_options["lr"]


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
        node_ids=[node],
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


def simulate_sharded(problem, *, group=None, replicas=1000, replica_ids=None, dst=0, **options):
    """A Monte Carlo run of :func:`simsgd.simulate` with its replicas sharded over the group.

    Rank k of W runs the k-th of W contiguous blocks of the replica ids with the ordinary
    engine (any ``backend``/``device``), then the traces are gathered on rank ``dst`` and
    joined in replica order. Replica j's numbers depend only on (seed, j) (counter-based
    streams), so the result is the single-process trace bit for bit. Call it on every rank.

    Parameters
    ----------
    problem : problem object
    group : ProcessGroup, optional
    replicas : int ≥ 1, or replica_ids : 1-D int array
        The replicas of the whole run (as :func:`simsgd.simulate`); there must be at
        least one per rank.
    dst : int
        The rank that receives the trace.
    **options
        Any other option of :func:`simsgd.simulate` (``progress`` shows rank ``dst``'s bar).

    Returns
    -------
    Trace or None
        The whole run's trace on rank ``dst``; None on the others.
    """
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed.init_process_group must be called first")
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    ids = np.arange(check_int("replicas", replicas, 1)) if replica_ids is None else np.asarray(replica_ids)
    if ids.ndim != 1 or ids.size < world:
        raise ValueError(f"replica_ids must be 1-D with at least one replica per rank (world size {world})")
    dst = check_int("dst", dst, 0, world - 1)
    options["progress"] = bool(options.get("progress", False)) and rank == dst
    trace = simulate(problem, replica_ids=np.array_split(ids, world)[rank], **options)
    gathered = [None] * world if rank == dst else None
    dist.gather_object(trace, gathered, dst=dist.get_global_rank(group, dst) if group else dst, group=group)
    return concat_traces(gathered) if rank == dst else None


def concat_traces(traces) -> Trace:
    """One :class:`Trace` from the traces of consecutive blocks of replicas of one run.

    Raises
    ------
    ValueError
        The traces are not of the same run (options or step count differ).
    """
    first = traces[0]
    for t in traces[1:]:
        if t.config != first.config or not np.array_equal(t.floats_sent, first.floats_sent):
            raise ValueError("concat_traces needs traces of the same run (same options and steps)")

    def join(name):
        parts = [getattr(t, name) for t in traces]
        return None if parts[0] is None else np.concatenate(parts)

    return Trace(
        join("grad_norm_sq"),
        join("loss"),
        join("error_norm_sq"),
        join("momentum_norm_sq"),
        first.floats_sent,
        first.restart_steps,
        join("degenerate_count"),
        np.sum([t.degenerate_per_step for t in traces], axis=0),
        join("x"),
        join("q"),
        first.config,
        join("degenerate_own_scale"),
        join("restart_residual"),
    )
