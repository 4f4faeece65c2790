"""Any :class:`simsgd.compression.Compressor` as a ``DistributedDataParallel`` communication hook.

``state, hook = hook_for(TopK(k=64)); ddp.register_comm_hook(state, hook)``

The hook runs Algorithm 2's steps (7a)–(7b) on each DDP gradient bucket with the compressor's own
``compress`` — the same code the simulator runs — over :class:`simsgd.distributed.ops.TorchOps`,
whose node mean is an ``all_reduce`` over the process group: each matrix-shaped gradient (a
tensor viewed as shape[0] × rest) is one "replica" of a batch of same-shaped matrices with a node
axis of length 1. Error feedback (``"local"``: e ← Δ^{(i)} − Δ̂^{(i)}, the paper's; ``"global"``:
e ← Δ^{(i)} − Δ̂, PyTorch's) is kept per parameter, so DDP's bucket rebuild after the first
iteration does not disturb it. Tensors the compressor would not shrink (biases, small matrices:
floats · ``min_compression_rate`` ≥ m n) are all-reduced as they are.

Randomness (a lighter restart's sketch, random-k's coordinates, QSGD's rounding) comes from the
counter-based streams at (``seed``, matrix index, t, node), so node i draws what node i of the
simulator draws, and Q_{−1} is the simulator's for the same seed: a run whose per-node gradients
equal a simulation's gives the simulation's Δ̂ to rounding (``tests/test_compressor_hook.py``).

The hook all-reduces decoded tensors: for compressors whose messages add (PowerSGD's P and Q,
random-k with shared coordinates) that is what a deployment sends; for top-k, QSGD and sign it
reproduces the numbers of a gather of the compressed messages, while ``state.stats()`` counts the
compressor's own floats (:meth:`~simsgd.compression.Compressor.floats`), not the dense all-reduce.
:func:`~simsgd.distributed.hook.powersgd_plus_hook` stays the PowerSGD+ hook for training: it is
PyTorch's ``powerSGD_hook`` bit for bit, with restarts, fp16/bf16 buckets and a ``state_dict``.
"""

# No ``from __future__ import annotations`` here: DDP checks the hook's annotations at run time.
import numpy as np
import torch
import torch.distributed as dist

from .._checks import check_choice, check_int, check_real
from ..algorithm import Config
from ..compression import Compressor, missing_members
from ..loop import LOCAL_STREAM, SHARED_STREAM, StreamDraws
from ..streams import NodeStreams, initial_q
from ._bucket_memory import unflatten
from .ledger import Ledger
from .ops import TorchOps

__all__ = ["CompressorHookState", "compressor_hook", "hook_for"]

_HALF = (torch.float16, torch.bfloat16)


class CompressorHookState(Ledger):
    """Options and memory of :func:`compressor_hook` (one instance for all buckets).

    Parameters
    ----------
    compressor : Compressor
    process_group : ProcessGroup or None
        None: the world.
    error_feedback : {"local", "global", "none"}
        Ignored (no memory) for a compressor whose ``error_feedback`` is False.
    start_iter : int ≥ 0
        Plain all-reduce before this iteration; compressed step t = iter − start_iter.
    min_compression_rate : float ≥ 0
        A matrix is compressed only if ``compressor.floats`` · rate < m n.
    seed : int ≥ 0
        Of Q_{−1} and the compressor's draws.

    Attributes
    ----------
    The counters of :class:`~simsgd.distributed.ledger.Ledger`; ``errors`` (parameter → e^{(i)}) and
    ``states`` (the compressor's state per group of same-shaped parameters).
    """

    def __init__(
        self,
        compressor,
        process_group=None,
        *,
        error_feedback="local",
        start_iter=0,
        min_compression_rate=1.0,
        seed=0,
    ):
        if not isinstance(compressor, Compressor):
            missing = missing_members(compressor)
            raise ValueError(f"compressor must be a Compressor; {type(compressor).__name__} lacks {missing}")
        self.compressor = compressor
        self.process_group = process_group
        self.error_feedback = check_choice("error_feedback", error_feedback, ("local", "global", "none"))
        self.start_iter = check_int("start_iter", start_iter, 0)
        self.min_compression_rate = check_real("min_compression_rate", min_compression_rate, 0.0)
        self.seed = check_int("seed", seed, 0, 2**64 - 1)
        self.errors: dict[int, torch.Tensor] = {}
        self.states: dict[tuple, object] = {}
        self._offsets: dict[tuple, int] = {}  # group -> its first matrix index (the draws' replica id)
        self.reset_ledger()

    @property
    def keeps_error(self) -> bool:
        return self.compressor.error_feedback and self.error_feedback != "none"

    def _compressed(self, shape, restart=False) -> bool:
        m, n = shape
        return self.compressor.floats(0, shape, restart) * self.min_compression_rate < m * n

    def offset(self, key) -> int:
        """The first matrix index of group ``key``: fixed at first sight, so that the draws do not
        depend on DDP's bucket order.
        """
        if key not in self._offsets:
            self._offsets[key] = sum(len(k) for k in self._offsets)
        return self._offsets[key]


def hook_for(compressor, process_group=None, **options):
    """A DDP communication hook running ``compressor`` (a Compressor, or a registered name built
    with default options), and its state.

    Parameters
    ----------
    compressor : Compressor or str
    process_group : ProcessGroup, optional
    **options
        Of :class:`CompressorHookState`.

    Returns
    -------
    state, hook
        For ``ddp.register_comm_hook(state, hook)``.
    """
    if isinstance(compressor, str):
        compressor = Config(method=compressor).compressor
    state = CompressorHookState(compressor, process_group, **options)
    return state, compressor_hook


def _groups(state, gradients):
    """Indices of the compressed gradients grouped by matrix shape (first-seen order), and the rest."""
    groups, rest = {}, []
    for i, grad in enumerate(gradients):
        m = grad.shape[0] if grad.dim() >= 2 else 0
        shape = (m, grad.numel() // m if m else 0)
        if m and state._compressed(shape):
            groups.setdefault(shape, []).append(i)
        else:
            rest.append(i)
    return groups, rest


def compressor_hook(
    state: CompressorHookState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """Algorithm 2's (7a)–(7b) with ``state.compressor`` on one DDP gradient bucket.

    Returns
    -------
    torch.futures.Future
        Resolves to the bucket's averaged, decompressed gradient (in place).

    Raises
    ------
    FloatingPointError
        A non-finite gradient on any node (every node raises; the error memory is unchanged).
    """
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    buffer = bucket.buffer()
    world = group.size()
    if state.iter < state.start_iter:
        state.count(bucket.index(), buffer.numel(), buffer.element_size(), buffer.numel(), "all-reduce")
        state.end_bucket(bucket)
        dist.all_reduce(buffer.div_(world), group=group)
        return _done(buffer)
    compute = torch.float32 if buffer.dtype in _HALF else buffer.dtype
    work = buffer.to(compute) if buffer.dtype != compute else buffer
    gradients, params = bucket.gradients(), bucket.parameters()
    views = unflatten(work, gradients)
    if state.keeps_error:
        for view, param in zip(views, params):
            if id(param) in state.errors:
                view.add_(state.errors[id(param)])
    groups, rest = _groups(state, gradients)
    plain = torch.cat(
        [views[i].reshape(-1) for i in rest] + [torch.isfinite(work).all().logical_not().to(compute)[None]]
    )
    dist.all_reduce(plain, group=group)
    plain.div_(world)
    if plain[-1] != 0:
        raise FloatingPointError(
            f"non-finite gradient at iteration {state.iter} on some node ({state.compressor.name} hook)"
        )
    at = 0
    for i in rest:
        views[i].copy_(plain[at : at + views[i].numel()].view_as(views[i]))
        at += views[i].numel()
    floats = float(plain.numel())  # the uncompressed tensors and the non-finite flag
    t = state.iter - state.start_iter
    ops = TorchOps(group, work.device)
    rank = dist.get_rank(group)
    any_restart = False
    for shape, members in groups.items():
        key = tuple(id(params[i]) for i in members)
        deltas = torch.stack([views[i].reshape(shape) for i in members])[:, None]  # (b, 1, m, n)
        errors = torch.stack(
            [state.errors.get(id(params[i]), torch.zeros_like(views[i])).reshape(shape) for i in members]
        )
        ids = state.offset(key) + np.arange(len(members))
        if key not in state.states:
            basis = state.compressor.basis_shape(shape)
            q0 = None if basis is None else torch.from_numpy(initial_q(state.seed, ids, *basis)).to(work)
            state.states[key] = state.compressor.init(q0)
        draws = StreamDraws(
            NodeStreams(state.seed, ids, [SHARED_STREAM]),
            NodeStreams(state.seed, ids, [LOCAL_STREAM + rank]),
            t,
        )
        local = state.keeps_error and state.error_feedback == "local"
        out, state.states[key] = state.compressor.compress(
            state.states[key], deltas, t, errors=errors[:, None], ops=ops, draws=draws, want_local=local
        )
        restart = out.restart if isinstance(out.restart, bool) else out.restart.cpu().numpy()
        any_restart = any_restart or bool(np.any(restart))
        per_matrix = np.where(
            restart, state.compressor.floats(t, shape, True), state.compressor.floats(t, shape, False)
        )
        floats += float(np.broadcast_to(per_matrix, (len(members),)).sum())
        for j, i in enumerate(members):
            if state.keeps_error:
                hat = out.local_hat[j, 0] if local else out.global_hat[j]
                state.errors[id(params[i])] = (deltas[j, 0] - hat).reshape(views[i].shape).clone()
            views[i].copy_(out.global_hat[j].reshape(views[i].shape))
    if work is not buffer:
        buffer.copy_(work)
    state.count(bucket.index(), floats, work.element_size(), work.numel(), state.compressor.name)
    state.restarts += any_restart
    state.end_bucket(bucket)
    return _done(buffer)


def _done(tensor):
    fut = torch.futures.Future()
    fut.set_result(tensor)
    return fut
