"""PowerSGD+ as a ``DistributedDataParallel`` communication hook.

``ddp.register_comm_hook(PowerSGDPlusState(group, restart_period=100), powersgd_plus_hook)``

With ``restart_period=None`` this is PyTorch's ``powerSGD_hook`` operation for operation
(the same buckets, tensor split, warm start, error feedback ``e ← Δ − Δ̂`` and random
Q's), so it gives the same parameters; the tests check that every step. With
``restart_period=τ`` the compressed steps t = iter − start_powerSGD_iter with
t mod τ = 0 are PowerSGD+'s restarts (Algorithm 2): P̃ is the first r left singular
vectors of each node-averaged matrix Δ̄ (``restart_method``, :mod:`.restart`), Q = Δ̄ᵀP̃
and Δ̂ = P̃Qᵀ; the Q carried to the next step is that Q, so the power iteration restarts
from the SVD basis.

Restart cost: ``"svd"`` all-reduces the whole error-fed bucket (m n per matrix). Then every
node holds Δ̄, so Q = Δ̄ᵀP̃ is computed locally (``minimal_restart=True``, the default);
``minimal_restart=False`` all-reduces Q = mean(Δ^{(i)ᵀ}P̃) as Algorithm 1's SVD-COMP writes
(n r more floats per matrix, the same Q up to rounding). ``"randomized"`` sends
(K + 1)(m + n)(r + p) per matrix and never a Q. A failed SVD (``"svd"``: LAPACK does not
converge or returns NaN on a finite Δ̄) falls back to the randomized range finder on the
Δ̄ every node already holds (no communication, so all nodes stay in step); a failed small
SVD inside ``"randomized"`` keeps the range basis's first r columns. Both are counted in
``state.fallbacks`` and logged.

Precision: buckets in float16/bfloat16 are compressed in float32 (``compute_dtype``): the
error memory, P, Q and the all-reduces of compressed steps are float32, and the result is
rounded to the bucket's dtype once, when it is written back. float32/float64 buckets are
compressed in their own dtype, as PyTorch does.

``between_restarts="fixed"`` keeps P̃ from the last restart and sends only Q = Δᵀ P̃ in between
(n r floats): the GaLore-style baseline of Table 2 (with ``use_error_feedback=False`` as GaLore).

Habits of PyTorch's hook not copied: its Q's are drawn after ``torch.manual_seed``
(which also reseeds the global CUDA generators); here a dedicated CPU ``torch.Generator``
draws the same numbers. With ``orthogonalization_epsilon=0`` a zero column of P or Q (a
gradient matrix that is exactly zero, e.g. a frozen layer) gave NaN there; here it stays
zero, so that component is sent as zero and kept in the error. PyTorch issues the P and
Q all-reduces from future callbacks, whose order can differ between ranks when a bucket
has more than one; here every collective is issued by the hook call, in bucket order.

Non-finite gradients (policy ``nonfinite``): every compressed step all-reduces one
extra float, the number of nodes whose bucket holds a NaN or an infinity, with the
uncompressed tensors; warm-up steps check the averaged bucket, which is non-finite
whenever any node's is. Then every node alike either raises ``FloatingPointError``
(``"raise"``, the default; it comes out of ``loss.backward()`` on every rank; stop
training there) or returns a zero gradient for the bucket and leaves the error feedback
untouched (``"zero"``; a warning is logged). Both count in ``state.nonfinite_steps``. NaN
never reaches the error memory or the other nodes' gradients.
"""

# No ``from __future__ import annotations`` here: DDP checks the hook's annotations at run time.
import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..algorithm import is_restart
from . import restart as _restart
from ._bucket_memory import BucketMemory, compressed_matrices, split_bucket, unflatten
from .hook_options import BETWEEN_RESTARTS, NONFINITE_POLICIES, RESTART_METHODS, HookOptions
from .ledger import Ledger

__all__ = [
    "PowerSGDPlusState",
    "HookOptions",
    "powersgd_plus_hook",
    "NONFINITE_POLICIES",
    "RESTART_METHODS",
    "BETWEEN_RESTARTS",
]

logger = logging.getLogger(__name__)

_HALF = (torch.float16, torch.bfloat16)


class PowerSGDPlusState(Ledger):
    """Options and memory of :func:`powersgd_plus_hook` (one instance for all buckets).

    Parameters
    ----------
    process_group : ProcessGroup or None
        None: the world.
    options : HookOptions, optional
        The options as one record; or give them by keyword, as PyTorch's ``PowerSGDState``
        takes them (``matrix_approximation_rank=…, start_powerSGD_iter=…``), not both. Every
        option is checked on creation (:class:`~simsgd.distributed.hook_options.HookOptions`
        lists them with their ranges) and reads as an attribute: ``state.restart_period``.

    Attributes
    ----------
    options : HookOptions
    The counters of :class:`~simsgd.distributed.ledger.Ledger` (``iter``, ``floats_sent_last_step``,
    ``restarts``, …) and ``memory``, the error/P/Q memories (:class:`BucketMemory`).
    """

    def __init__(self, process_group, options: HookOptions = None, **kwargs):
        if options is not None and kwargs:
            raise ValueError(
                f"give the options as a HookOptions or by keyword, not both (got {sorted(kwargs)})"
            )
        unknown = sorted(set(kwargs) - set(HookOptions.names()))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; the options are {', '.join(HookOptions.names())}")
        self.process_group = process_group
        self.options = options if options is not None else HookOptions(**kwargs)
        self.rng = np.random.RandomState(self.random_seed)
        self.generator = torch.Generator(device="cpu")
        saved = ("error",) + (("q",) if self.warm_start else ()) + (("p",) if self.fixed_basis else ())
        self.memory = BucketMemory(self._plan, saved)
        self.reset_ledger()

    def __getattr__(self, name):
        # Only reached when normal lookup fails: the options read as attributes (PyTorch's habit).
        options = self.__dict__.get("options")  # absent on an object being unpickled
        if options is not None and name in HookOptions.names():
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def fixed_basis(self) -> bool:
        """Whether P̃ is kept between restarts (``between_restarts="fixed"``)."""
        return self.between_restarts == "fixed"

    # PyTorch's PowerSGDState names for the memories.
    @property
    def error_dict(self):
        return self.memory.error

    @property
    def p_memory_dict(self):
        return self.memory.p

    @property
    def q_memory_dict(self):
        return self.memory.q

    def is_restart(self) -> bool:
        """Whether the current iteration is a PowerSGD+ restart (t mod τ = 0, t from the first
        compressed iteration).
        """
        return self.iter >= self.start_powerSGD_iter and is_restart(
            self.iter - self.start_powerSGD_iter, self.restart_period
        )

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit for bit (not the process group).

        The memories are saved per parameter (:class:`BucketMemory`), so a resumed run needs
        a new DDP over the same model with this state registered before its first step;
        the bucket layout may differ.
        """
        return {
            "options": self.options.saved(),
            "counters": self.counters(),
            "rng": self.rng.get_state(),
            "memory": self.memory.state_dict(),
        }

    def load_state_dict(self, state: dict, device=None) -> None:
        """Restore :meth:`state_dict`'s output into a new state, before its DDP's first step.

        ``device`` moves the memories (default: where each bucket lives).

        Raises
        ------
        ValueError
            The saved options differ from this state's.
        """
        mine = self.options.saved()
        saved = state["options"]
        if any(saved.get(k) != v for k, v in mine.items()):
            diff = {k: (saved.get(k), v) for k, v in mine.items() if saved.get(k) != v}
            raise ValueError(f"state_dict options differ from this state's (saved, here): {diff}")
        for k, v in state["counters"].items():
            setattr(self, k, v)
        self.rng.set_state(state["rng"])
        self.memory.load_state_dict(state["memory"], device)

    def _plan(self, tensors):
        return compressed_matrices(tensors, self.matrix_approximation_rank, self.min_compression_rate)

    def draw_normal(self, tensors):
        """Fill ``tensors`` with standard normals from the dedicated generator, seeded as
        PyTorch's hook seeds its random Q's.
        """
        self.generator.manual_seed(int(self.rng.randint(1_000_000_000)))
        for t in tensors:
            t.copy_(torch.randn(*t.shape, generator=self.generator, device="cpu", dtype=t.dtype))


def _orthogonalize(matrices, epsilon):
    """PyTorch's ``_orthogonalize`` (b, m, r) in place, except that a zero column stays zero."""
    rank = matrices.shape[2]
    if rank > 2 and matrices.dtype not in _HALF:
        torch.linalg.qr(
            matrices,
            out=(
                matrices,
                torch.empty(matrices.shape[0], rank, rank, device=matrices.device, dtype=matrices.dtype),
            ),
        )
        return
    for i in range(rank):
        col = matrices[:, :, i : i + 1]
        norm = torch.norm(col, dim=1, keepdim=True)
        col /= torch.where(norm == 0, 1, norm) if epsilon == 0 else norm + epsilon
        if i + 1 < rank:
            rest = matrices[:, :, i + 1 :]
            rest -= torch.sum(col * rest, dim=1, keepdim=True) * col


@dataclass
class _Bucket:
    """One bucket's tensors during one compressed step."""

    index: int
    input_tensor: torch.Tensor  # DDP's buffer (the bucket's dtype)
    work: torch.Tensor  # the error-fed Δ^{(i)} in the compute dtype (the buffer itself if equal)
    local: torch.Tensor | None  # a copy of ``work`` before compression (error feedback)
    gradients: list  # the bucket's gradients, for their shapes
    batches: list  # (b, m, n) views (or stacked copies) of ``work``
    uncompressed: list  # views of ``work``
    grouped: list
    ps: list  # (b, m, r) views of the P memory
    qs: list  # (b, n, r) views of the Q memory
    fresh: bool  # P/Q memories just allocated
    flag: torch.Tensor  # (1,): 1 if this node's bucket is non-finite


def _split(state, tensors):
    return split_bucket(
        tensors,
        state.matrix_approximation_rank,
        state.min_compression_rate,
        state.batch_tensors_with_same_shape,
    )


def _compute_dtype(state, dtype):
    if dtype not in _HALF + (torch.float32, torch.float64):
        raise ValueError(
            f"powersgd_plus_hook compresses float16, bfloat16, float32 and float64 buckets; got {dtype}"
        )
    if state.compute_dtype is not None:
        return state.compute_dtype
    return torch.float32 if dtype in _HALF else dtype


def powersgd_plus_hook(
    state: PowerSGDPlusState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """PowerSGD (``restart_period=None``) or PowerSGD+ for one DDP gradient bucket.

    Step I feeds the error back and splits the bucket (PyTorch's step I); step II is the
    compression of this iteration (a power step, a restart, or a fixed-basis step), which
    all-reduces the uncompressed tensors with the non-finite flag; step III decompresses
    Δ̂ = P Qᵀ into the bucket and updates the error memory.

    Parameters
    ----------
    state : PowerSGDPlusState
    bucket : torch.distributed.GradBucket

    Returns
    -------
    torch.futures.Future
        Resolves to the bucket's averaged, decompressed gradient (in place).

    Raises
    ------
    ValueError
        The bucket's dtype is not a float type (before any collective).
    FloatingPointError
        A non-finite gradient under ``nonfinite="raise"``.
    """
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    input_tensor = bucket.buffer()
    compute = _compute_dtype(state, input_tensor.dtype)
    state.memory.track(bucket.index(), bucket.parameters(), bucket.is_last(), input_tensor.device)
    if state.iter < state.start_powerSGD_iter:
        return _done(_all_reduce_step(state, bucket, input_tensor, group))

    b = _prepare(state, bucket, input_tensor, compute)  # Step I
    restart = state.is_restart()
    if restart and state.restart_method == "svd":  # Step II
        ok = _svd_restart(state, b, group)
    elif restart:
        ok = _randomized_restart(state, b, group)
    elif state.fixed_basis and not b.fresh:
        ok = _fixed_basis_step(state, b, group)
    else:
        ok = _power_step(state, b, group)
    if not ok:
        return _done(_nonfinite(state, bucket, b, f"{'restart' if restart else 'compressed'} step"))
    _decompress(state, b)  # Step III
    if restart:
        state.restarts += 1
    state.end_bucket(bucket)
    return _done(input_tensor)


def _all_reduce_step(state, bucket, input_tensor, group):
    """Warm-up: PyTorch's default all-reduce hook (in the bucket's dtype)."""
    numel = input_tensor.numel()
    state.count(bucket.index(), numel, input_tensor.element_size(), numel, "all-reduce")
    state.end_bucket(bucket)  # PyTorch counts a warm-up iteration before its all-reduce
    input_tensor.div_(group.size())
    dist.all_reduce(input_tensor, group=group)
    if not torch.isfinite(input_tensor).all():
        state.nonfinite_steps += 1
        message = f"non-finite gradient at iteration {state.iter - 1} (all-reduce warm-up)"
        return _apply_nonfinite_policy(state, input_tensor, message)
    return input_tensor


def _prepare(state, bucket, input_tensor, compute):
    """Step I: error feedback Δ^{(i)} = g^{(i)} + e^{(i)} (in the compute dtype), the split into
    batches to compress and uncompressed tensors, and the P/Q memory views.
    """
    index, device = bucket.index(), input_tensor.device
    finite = torch.isfinite(input_tensor).all()
    work = input_tensor if input_tensor.dtype == compute else input_tensor.to(compute)
    local = None
    if state.use_error_feedback:
        if index in state.memory.error:
            work.add_(state.memory.error[index])
        else:
            state.memory.error[index] = torch.zeros_like(work)
        local = work.detach().clone()
    gradients = bucket.gradients()
    batches, uncompressed, grouped = _split(state, unflatten(work, gradients))
    shapes = [
        (*batch.shape, min(batch.shape[1], batch.shape[2], state.matrix_approximation_rank))
        for batch in batches
    ]
    ps, qs, fresh = state.memory.low_rank(index, shapes, device, compute, reuse=state.warm_start)
    flag = torch.where(finite, 0.0, 1.0).to(device=device, dtype=compute).reshape(1)
    return _Bucket(
        index, input_tensor, work, local, gradients, batches, uncompressed, grouped, ps, qs, fresh, flag
    )


def _all_reduce_uncompressed(state, b, group, extra_floats, kind):
    """All-reduce the uncompressed tensors and the non-finite flag (counting ``extra_floats``
    more for this step's other all-reduces); False if some node's bucket was non-finite.
    """
    memory = torch.cat([tensor.view(-1) for tensor in b.uncompressed] + [b.flag])
    state.count(b.index, memory.numel() + extra_floats, memory.element_size(), b.work.numel(), kind)
    dist.all_reduce(memory, group=group)
    mean = memory.div_(group.size())
    if mean[-1] != 0:
        return False
    at = 0
    for tensor in b.uncompressed:
        tensor.copy_(mean[at : at + tensor.numel()].view_as(tensor))
        at += tensor.numel()
    return True


def _power_step(state, b, group):
    """PowerSGD's single power step (SSP-COMP): P = mean(Δ^{(i)} Q) orthogonalised, then Q."""
    if b.fresh:
        state.draw_normal(b.qs)
    for q in b.qs:
        _orthogonalize(q, state.orthogonalization_epsilon)
    for matrix, q, p in zip(b.batches, b.qs, b.ps):
        torch.bmm(matrix, q, out=p)
    p_memory = state.memory.p[b.index]
    q_floats = state.memory.q[b.index].numel()
    if not _all_reduce_uncompressed(state, b, group, p_memory.numel() + q_floats, "power"):
        return False
    # P is orthogonalised next, so its sum need not be divided by N (as PyTorch).
    dist.all_reduce(p_memory, group=group)
    for p in b.ps:
        _orthogonalize(p, state.orthogonalization_epsilon)
    _all_reduce_q(state, b, group)
    return True


def _fixed_basis_step(state, b, group):
    """GaLore-style: P̃ from the last restart, Q = mean(Δ^{(i)ᵀ} P̃)."""
    if not _all_reduce_uncompressed(state, b, group, state.memory.q[b.index].numel(), "fixed"):
        return False
    _all_reduce_q(state, b, group)
    return True


def _all_reduce_q(state, b, group):
    """Q = mean(Δ^{(i)ᵀ} P) into the Q memory."""
    for matrix, p, q in zip(b.batches, b.ps, b.qs):
        torch.bmm(matrix.transpose(1, 2), p, out=q)
    q_memory = state.memory.q[b.index]
    dist.all_reduce(q_memory, group=group)
    q_memory.div_(group.size())


def _svd_restart(state, b, group):
    """PowerSGD+'s restart (SVD-COMP): all-reduce the whole bucket, P̃ = SVD basis of Δ̄."""
    q_floats = 0 if state.minimal_restart else sum(q.numel() for q in b.qs)
    memory = torch.cat([b.work, b.flag])
    state.count(b.index, memory.numel() + q_floats, memory.element_size(), b.work.numel(), "restart")
    dist.all_reduce(memory, group=group)
    mean = memory.div_(group.size())
    if mean[-1] != 0:
        return False
    mean_batches, mean_uncompressed, _ = _split(state, unflatten(mean[:-1], b.gradients))
    for tensor, tensor_mean in zip(b.uncompressed, mean_uncompressed):
        tensor.copy_(tensor_mean)
    for p, q, matrix_mean in zip(b.ps, b.qs, mean_batches):
        try:
            p.copy_(_restart.svd_basis(matrix_mean, p.shape[2]))
        except _restart.FactorizationError as exc:
            _fallback(state, b, f"{exc}; randomized range finder on the averaged matrix used instead")
            p.copy_(_local_randomized_basis(state, matrix_mean, p.shape[2]))
        if state.minimal_restart:
            torch.bmm(matrix_mean.transpose(1, 2), p, out=q)  # Q = Δ̄ᵀP̃, no all-reduce
    if not state.minimal_restart:
        _all_reduce_q(state, b, group)
    state.note(b.index, relative_error=_relative_error(mean_batches, b.ps, b.qs))
    return True


def _local_randomized_basis(state, matrix_mean, rank):
    """The randomized range finder on a Δ̄ every node holds (no communication)."""
    k = min(rank + state.restart_oversampling, *matrix_mean.shape[1:])
    omega = matrix_mean.new_empty(matrix_mean.shape[0], matrix_mean.shape[2], k)
    state.draw_normal([omega])
    ps, _, _ = _restart.randomized_basis(
        lambda zs: [matrix_mean @ zs[0]],
        lambda ys: [matrix_mean.transpose(1, 2) @ ys[0]],
        [omega],
        rank,
        state.restart_power_steps,
    )
    return ps[0]


def _randomized_restart(state, b, group):
    """A restart by the randomized range finder on Δ̄, through all-reduced products."""
    ks = [min(p.shape[2] + state.restart_oversampling, *m.shape[1:]) for p, m in zip(b.ps, b.batches)]
    floats = sum(
        _restart.restart_floats(
            "randomized", m.shape[1], m.shape[2], p.shape[2], k - p.shape[2], state.restart_power_steps
        )
        * m.shape[0]
        for p, m, k in zip(b.ps, b.batches, ks)
    )
    if not _all_reduce_uncompressed(state, b, group, floats, "restart"):
        return False
    if not b.batches:  # nothing compressed in this bucket
        return True
    omegas = [m.new_empty(m.shape[0], m.shape[2], k) for m, k in zip(b.batches, ks)]
    state.draw_normal(omegas)

    def mean_of(products):
        flat = torch.cat([x.reshape(-1) for x in products])
        dist.all_reduce(flat, group=group)
        flat.div_(group.size())
        return unflatten(flat, products)

    ps, qs, fallback = _restart.randomized_basis(
        lambda zs: mean_of([m @ z for m, z in zip(b.batches, zs)]),
        lambda ys: mean_of([m.transpose(1, 2) @ y for m, y in zip(b.batches, ys)]),
        omegas,
        max(p.shape[2] for p in b.ps),
        state.restart_power_steps,
    )
    if fallback:
        _fallback(state, b, "SVD of the sketch failed; the range basis's first columns used")
    for p, q, p_new, q_new in zip(b.ps, b.qs, ps, qs):
        p.copy_(p_new[..., : p.shape[2]])
        q.copy_(q_new[..., : q.shape[2]])
    return True


def _fallback(state, b, message):
    state.fallbacks += 1
    logger.warning("restart at iteration %d, bucket %d: %s", state.iter, b.index, message)


def _relative_error(means, ps, qs):
    """‖Δ̄ − P̃Qᵀ‖²/‖Δ̄‖² over the bucket's compressed matrices (Q = Δ̄ᵀP̃), or None if Δ̄ = 0."""
    total = sum(float(torch.sum(mean.double() ** 2)) for mean in means)
    if total == 0:
        return None
    residual = sum(
        float(torch.sum((mean - p @ q.transpose(1, 2)).double() ** 2)) for mean, p, q in zip(means, ps, qs)
    )
    return residual / total


def _decompress(state, b):
    """Step III: Δ̂ = P Qᵀ into the bucket, e^{(i)} ← Δ^{(i)} − Δ̂, the result in the bucket's dtype."""
    for p, q, matrix in zip(b.ps, b.qs, b.batches):
        torch.bmm(p, q.transpose(1, 2), out=matrix)
    if state.batch_tensors_with_same_shape:
        for batch, originals in zip(b.batches, b.grouped):
            if batch.shape[0] > 1:
                for i, original in enumerate(originals):
                    original.copy_(batch[i])
    if state.use_error_feedback:
        error = b.local - b.work
        state.memory.error[b.index] = error
        state.note(b.index, relative_error_local=_local_error(state, b, error))
    if not state.warm_start:
        state.memory.p.clear()
        state.memory.q.clear()
    if b.work is not b.input_tensor:
        b.input_tensor.copy_(b.work)


def _local_error(state, b, error):
    """‖Δ^{(i)} − Δ̂‖²/‖Δ^{(i)}‖² over the compressed matrices of this node (one host sync)."""
    compressed = [
        i
        for i, _ in compressed_matrices(
            b.gradients, state.matrix_approximation_rank, state.min_compression_rate
        )
    ]
    if not compressed:
        return None
    errors, deltas = unflatten(error, b.gradients), unflatten(b.local, b.gradients)
    # Dot products (BLAS, no temporaries): ~0.1 ms for 200k floats, so the stats can stay on.
    squares = torch.stack(
        [
            sum(torch.dot(errors[i].reshape(-1), errors[i].reshape(-1)) for i in compressed),
            sum(torch.dot(deltas[i].reshape(-1), deltas[i].reshape(-1)) for i in compressed),
        ]
    )
    residual, total = squares.tolist()
    return residual / total if total else None


def _nonfinite(state, bucket, b, what):
    """Apply the non-finite policy on every node alike; returns the (zeroed) bucket."""
    state.nonfinite_steps += 1
    state.note(b.index, kind="nonfinite")
    message = f"non-finite gradient at iteration {state.iter} ({what}); error feedback left unchanged"
    state.end_bucket(bucket)
    return _apply_nonfinite_policy(state, b.input_tensor, message)


def _apply_nonfinite_policy(state, input_tensor, message):
    if state.nonfinite == "raise":
        raise FloatingPointError(message)
    logger.warning("%s; the bucket's gradient is set to zero for this step", message)
    return input_tensor.zero_()


def _done(tensor):
    """A completed future: every collective of a compressed step is issued by the hook's own
    call, so all ranks issue them in the same (bucket) order. Issuing them from future
    callbacks, as PyTorch's hook does, lets two buckets' collectives interleave differently
    on different ranks; with a slow SVD in between that deadlocked gloo.
    """
    fut = torch.futures.Future()
    fut.set_result(tensor)
    return fut
