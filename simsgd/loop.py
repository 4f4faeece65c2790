"""Algorithm 2's driver loop, the one every engine runs: :func:`run_loop` and :func:`run_traced`.

It draws the oracle's g_t^{(i)} (:func:`checked_grads`), hands the compressor its random numbers
(:class:`StreamDraws`), calls :func:`simsgd.algorithm.step` and records the step
(:class:`simsgd.recorder.Recorder`); a compiled engine passes fused blocks of steps instead.
"""

from __future__ import annotations

import numpy as np

from . import algorithm
from ._progress import Progress
from .ops import NUMPY, array_ops
from .recorder import check_finite
from .run import Run, resolve_lr
from .streams import NodeStreams
from .trace import Trace

__all__ = [
    "run_loop",
    "run_traced",
    "checked_grads",
    "StreamDraws",
    "compressor_streams",
    "SHARED_STREAM",
    "LOCAL_STREAM",
]

SHARED_STREAM = 2**40
"""Node id of the compressors' shared draws (e.g. a lighter PowerSGD+ restart's sketch): one draw
per replica, the same on every node, apart from every oracle's stream (node ids < N)."""

LOCAL_STREAM = 2**41
"""Node i's own compressor draws use node id ``LOCAL_STREAM + i`` (e.g. QSGD's rounding)."""


class StreamDraws:
    """The random numbers of step t for a compressor (:class:`simsgd.compression.Draws`), from the
    counter-based streams at (seed, replica, t, node): node i of a distributed run draws what node
    i of the simulation draws. Nothing is drawn unless asked for.

    Parameters
    ----------
    shared, local : NodeStreams or TorchNodeStreams
        The run's streams at node ids [:data:`SHARED_STREAM`] and :data:`LOCAL_STREAM` + the
        held nodes' ids (:func:`compressor_streams`).
    t : int or 0-d tensor
    """

    def __init__(self, shared, local, t):
        self._streams, self._t, self._at = {"shared": shared, "local": local}, t, {}

    def _draws(self, which):
        if which not in self._at:  # one StepDraws per step: each call is a fresh draw
            self._at[which] = self._streams[which].at(self._t)
        return self._at[which]

    def shared(self, kind, shape, like):
        return array_ops(like).asarray(getattr(self._draws("shared"), kind)(shape)[:, 0], like=like)

    def local(self, kind, shape, like):
        return array_ops(like).asarray(getattr(self._draws("local"), kind)(shape), like=like)


def compressor_streams(run: Run, node_ids, streams=NodeStreams, **options):
    """The (shared, local) streams of :class:`StreamDraws` for ``run`` and the nodes held here."""
    ids = run.replica_ids
    return (
        streams(run.seed, ids, [SHARED_STREAM], **options),
        streams(run.seed, ids, LOCAL_STREAM + np.asarray(node_ids), **options),
    )


def checked_grads(problem, x, run: Run, draws, grad=None):
    """The oracle's g_t^{(i)} for the nodes ``draws.node_ids``, checked: (R, N_local, m, n),
    in ``x``'s array library. ``grad``: ∇f(x), passed on to an oracle that takes it.

    Raises
    ------
    ValueError
        Wrong shape, or a NumPy-only oracle given torch tensors.  FloatingPointError: a non-finite
        gradient, naming the replicas.
    """
    shape = (run.replica_ids.size, draws.node_ids.size) + run.shape
    try:
        if grad is None:
            grads = problem.stochastic_grads(x, run.nodes, draws)
        else:
            grads = problem.stochastic_grads(x, run.nodes, draws, grad=grad)
    except (AttributeError, TypeError) as err:
        if type(x).__module__.partition(".")[0] != "torch":
            raise
        raise ValueError(
            f"problem.stochastic_grads failed on torch tensors ({type(err).__name__}: {err}); "
            "write the oracle with simsgd.ops.array_ops(x) (see simsgd.problems), or run backend='numpy'"
        ) from None
    if not hasattr(grads, "shape") or grads.shape != shape:
        raise ValueError(
            f"problem.stochastic_grads must return shape (R, N, m, n) = "
            f"{shape}, got {getattr(grads, 'shape', type(grads))}"
        )
    ops = array_ops(x)
    grads = ops.node_layout(ops.asarray(grads, like=x))
    check_finite("stochastic gradient", draws.step, run.replica_ids, grads, ops)
    return grads


def run_traced(problem, run, lr, streams, recorder, *, ops=NUMPY, progress=None, blocks=None) -> Trace:
    """:func:`run_loop` with the checked oracle of ``streams`` (:func:`checked_grads`), returning
    ``recorder``'s :class:`Trace`: the run of every in-process engine (NumPy, torch eager and
    compiled; ``blocks`` as :func:`run_loop`'s).
    """
    state = run_loop(
        run,
        lr,
        lambda x, t: checked_grads(problem, x, run, streams.at(t), recorder.grad_at(x)),
        ops=ops,
        recorder=recorder,
        progress=progress,
        blocks=blocks,
        node_ids=streams.node_ids,
    )
    return recorder.trace(state.x, state.q, lr)


def run_loop(
    run,
    lr,
    oracle,
    *,
    ops=NUMPY,
    recorder=None,
    progress=None,
    label="simulate",
    on_step=None,
    blocks=None,
    node_ids=None,
):
    """Algorithm 2's driver loop: the one loop every engine runs.

    Parameters
    ----------
    run : Run
        From :func:`simsgd.run.prepare`.
    lr : float or callable
        η_t.
    oracle : callable (x, t) -> grads
        The checked g_t^{(i)} of the nodes held here, (R, N_local, m, n) in ``ops``' arrays.
    ops : ops object
        :data:`~simsgd.ops.NUMPY`, :class:`simsgd.torch_ops.TorchOps` or a distributed one.
    recorder : Recorder, optional
    progress : bool or None
        Progress bar on stderr, named ``label`` (None: only on a terminal).
    on_step : callable (t, state, grads, lr_t, new_state, info), optional
        Called after each single step, before recording (e.g. to compare with another engine).
    blocks : (K, callable), optional
        ``fn(state, t) -> (state, rows)`` runs steps t, …, t+K−1 at once (a fused, compiled
        block; ``rows`` for :meth:`Recorder.record_block`); used wherever 0 < t ≡ 0 (mod K)
        and t + K ≤ T, single steps elsewhere.
    node_ids : array of int, optional
        The nodes held here, for the compressor's own draws (default all N).

    Returns
    -------
    algorithm.State
        After T steps.
    """
    bar = Progress(run.steps, progress, label=label)
    shared, local = compressor_streams(run, np.arange(run.nodes) if node_ids is None else node_ids)
    x = ops.from_numpy(run.x)
    q = None if run.q is None else ops.from_numpy(run.q)
    state, t = None, 0
    while t < run.steps:
        if blocks is not None and state is not None and t % blocks[0] == 0 and t + blocks[0] <= run.steps:
            state, rows = blocks[1](state, t)
            if recorder is not None:
                recorder.record_block(t, rows, blocks[0])
            t += blocks[0]
        else:
            grads = oracle(x, t)
            if state is None:
                state = algorithm.init(x, q, grads, run.config)
            eta = resolve_lr(lr, t)
            draws = StreamDraws(shared, local, t)
            new_state, info = algorithm.step(state, grads, t, eta, run.config, ops, draws=draws)
            if on_step is not None:
                on_step(t, state, grads, eta, new_state, info)
            if recorder is not None:
                recorder.record_step(t, state, grads, new_state, info)
            state = new_state
            t += 1
        x = state.x
        bar.update(t)
    return state
