"""PowerSGD+ as a ``DistributedDataParallel`` communication hook.

``ddp.register_comm_hook(PowerSGDPlusState(group, restart_period=100), powersgd_plus_hook)``

With ``restart_period=None`` this is PyTorch's ``powerSGD_hook`` operation for operation
(the same buckets, tensor split, warm start, error feedback ``e ← Δ − Δ̂`` and random
Q's), so it gives the same parameters; the tests check that every step. With
``restart_period=τ`` the compressed steps t = iter − start_powerSGD_iter with
t mod τ = 0 are PowerSGD+'s restarts (Algorithm 2): the whole error-fed gradient is
all-reduced, P̃ is the first r left singular vectors of each averaged matrix, and the
step finishes as SVD-COMP does (Q^{(i)} = Δ^{(i)ᵀ} P̃ all-reduced, Δ̂ = P̃ Qᵀ); the Q
carried to the next step is that Q, so the power iteration restarts from the SVD basis.

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
untouched (``"zero"``; a warning is logged). Both count in ``state.nonfinite_steps``. NaN never reaches the error
memory or the other nodes' gradients.
"""

import logging

import numpy as np
import torch
import torch.distributed as dist

from .._checks import check_choice, check_int, check_real

__all__ = ["PowerSGDPlusState", "powersgd_plus_hook", "NONFINITE_POLICIES"]

logger = logging.getLogger(__name__)

NONFINITE_POLICIES = ("raise", "zero")


class PowerSGDPlusState:
    """Options and memory of :func:`powersgd_plus_hook` (one instance for all buckets).

    Parameters
    ----------
    process_group : ProcessGroup or None
        None: the world.
    matrix_approximation_rank : int ≥ 1
        r; a matrix m×n is compressed with rank min(m, n, r).
    start_powerSGD_iter : int ≥ 0
        Plain all-reduce before this iteration. Unlike PyTorch's (≥ 2 with error feedback
        or warm start), 0 and 1 are allowed: the memories follow DDP's bucket rebuild.
    min_compression_rate : float ≥ 0
        A matrix is compressed only if (m + n) r · rate < m n.
    use_error_feedback, warm_start : bool
    orthogonalization_epsilon : float ≥ 0
        Added to column norms in Gram–Schmidt (rank ≤ 2); QR is used for rank > 2.
    random_seed : int in [0, 2³² − 1]
        Seeds the NumPy ``RandomState`` that draws one seed per random Q (as PyTorch).
    batch_tensors_with_same_shape : bool
    restart_period : int ≥ 1 or None
        τ of PowerSGD+; None is plain PowerSGD.
    nonfinite : {"raise", "zero"}
        Policy for a NaN or infinite gradient (module docstring).

    Attributes
    ----------
    iter : int
        Iterations seen (as PyTorch's ``PowerSGDState.iter``).
    floats_sent_last_step, floats_sent_total : int
        Floats one node put into all-reduces in the last step, and in all steps.
    floats_uncompressed_last_step : int
        What a plain all-reduce would have sent in the last step.
    restarts, nonfinite_steps : int
        Restart (SVD) steps run, and steps a non-finite gradient was met (per bucket).
    """

    def __init__(
        self,
        process_group,
        matrix_approximation_rank=1,
        start_powerSGD_iter=1_000,
        min_compression_rate=2,
        use_error_feedback=True,
        warm_start=True,
        orthogonalization_epsilon=0,
        random_seed=0,
        batch_tensors_with_same_shape=False,
        restart_period=None,
        nonfinite="raise",
    ):
        self.process_group = process_group
        self.matrix_approximation_rank = check_int("matrix_approximation_rank", matrix_approximation_rank, 1)
        self.start_powerSGD_iter = check_int("start_powerSGD_iter", start_powerSGD_iter, 0)
        self.min_compression_rate = check_real("min_compression_rate", min_compression_rate, 0.0)
        self.use_error_feedback = bool(use_error_feedback)
        self.warm_start = bool(warm_start)
        self.orthogonalization_epsilon = check_real(
            "orthogonalization_epsilon", orthogonalization_epsilon, 0.0
        )
        self.random_seed = check_int("random_seed", random_seed, 0, 2**32 - 1)
        self.batch_tensors_with_same_shape = bool(batch_tensors_with_same_shape)
        self.restart_period = (
            None if restart_period is None else check_int("restart_period", restart_period, 1)
        )
        self.nonfinite = check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        self.rng = np.random.RandomState(self.random_seed)
        self.generator = torch.Generator(device="cpu")
        self.error_dict: dict[int, torch.Tensor] = {}
        self.p_memory_dict: dict[int, torch.Tensor] = {}
        self.q_memory_dict: dict[int, torch.Tensor] = {}
        self.iter = 0
        self.floats_sent_last_step = self.floats_sent_total = self.floats_uncompressed_last_step = 0
        self.restarts = self.nonfinite_steps = 0
        self._step_floats = self._step_uncompressed = 0
        self._layouts: dict[int, list] = {}  # bucket index -> its parameters, in bucket order
        self._first_layout: list = []  # all parameters in the order of the first iteration
        self._first_layout_done = False
        self._pending: dict[str, dict[int, torch.Tensor]] = {"error": {}, "q": {}}

    _COUNTERS = (
        "iter",
        "floats_sent_last_step",
        "floats_sent_total",
        "floats_uncompressed_last_step",
        "restarts",
        "nonfinite_steps",
        "_step_floats",
        "_step_uncompressed",
    )
    _OPTIONS = (
        "matrix_approximation_rank",
        "start_powerSGD_iter",
        "min_compression_rate",
        "use_error_feedback",
        "warm_start",
        "orthogonalization_epsilon",
        "random_seed",
        "batch_tensors_with_same_shape",
        "restart_period",
        "nonfinite",
    )

    def is_restart(self) -> bool:
        """Whether the current iteration is a PowerSGD+ restart (t mod τ = 0, t from the first
        compressed iteration).
        """
        return (
            self.restart_period is not None
            and self.iter >= self.start_powerSGD_iter
            and (self.iter - self.start_powerSGD_iter) % self.restart_period == 0
        )

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue bit for bit (not the process group).

        The error and warm-start Q memories are saved per parameter (see :meth:`_see`), so
        a resumed run needs a new DDP over the same model with this state registered
        before its first step; the bucket layout may differ.
        """
        memory = {
            kind: {k: v.detach().clone() for k, v in saved.items()}
            for kind, saved in self._per_parameter().items()
        }
        return {
            "options": {k: getattr(self, k) for k in self._OPTIONS},
            "counters": {k: getattr(self, k) for k in self._COUNTERS},
            "rng": self.rng.get_state(),
            "memory": memory,
        }

    def _per_parameter(self) -> dict:
        """The memories per parameter: {"error": {k: e_k}, "q": {k: Q_k (n, r)}}, k numbering the
        parameters in the order DDP presented them in the first iteration this state saw.
        """
        number = {id(p): k for k, p in enumerate(self._first_layout)}
        saved = {kind: dict(pending) for kind, pending in self._pending.items()}
        for index, params in self._layouts.items():
            keys = [number[id(p)] for p in params]
            if index in self.error_dict:
                for key, chunk in zip(keys, _unflatten(self.error_dict[index], params)):
                    saved["error"][key] = chunk
            if self.warm_start and index in self.q_memory_dict:
                at = 0
                for i, (_m, n, rank) in _compressed(self, params):
                    saved["q"][keys[i]] = self.q_memory_dict[index][at : at + n * rank].view(n, rank)
                    at += n * rank
        return saved

    def load_state_dict(self, state: dict, device=None) -> None:
        """Restore :meth:`state_dict`'s output into a new state, before its DDP's first step.

        ``device`` moves the memories (default: where each bucket lives).

        Raises
        ------
        ValueError
            The saved options differ from this state's.
        """
        mine = {k: getattr(self, k) for k in self._OPTIONS}
        if state["options"] != mine:
            diff = {k: (state["options"].get(k), v) for k, v in mine.items() if state["options"].get(k) != v}
            raise ValueError(f"state_dict options differ from this state's (saved, here): {diff}")
        for k, v in state["counters"].items():
            setattr(self, k, v)
        self.rng.set_state(state["rng"])
        self.error_dict, self.p_memory_dict, self.q_memory_dict = {}, {}, {}
        self._layouts, self._first_layout, self._first_layout_done = {}, [], False
        self._pending = {
            kind: {
                int(k): v.detach().clone() if device is None else v.detach().to(device, copy=True)
                for k, v in memory.items()
            }
            for kind, memory in state["memory"].items()
        }

    def _see(self, bucket, params, device):
        """Track DDP's bucket layouts and keep the memories aligned with them.

        The error and Q memories are flat in a bucket's parameter order, which DDP changes
        after its first iteration (and a resumed run starts from the first order again).
        When a bucket's parameters change, every bucket's memories are set aside per
        parameter and each bucket takes its parameters' memories back in its new order,
        so ``start_powerSGD_iter`` need not wait for the rebuild (PyTorch's hook needs ≥ 2).
        """
        index = bucket.index()
        old = self._layouts.get(index)
        if old is not None and [id(p) for p in old] != [id(p) for p in params]:
            self._pending = self._per_parameter()
            self.error_dict, self.p_memory_dict, self.q_memory_dict, self._layouts = {}, {}, {}, {}
        self._layouts[index] = params
        if not self._first_layout_done:
            self._first_layout.extend(params)
            self._first_layout_done = bucket.is_last()
        if (
            not (self._pending["error"] or self._pending["q"])
            or index in self.error_dict
            or index in self.q_memory_dict
        ):
            return
        number = {id(p): k for k, p in enumerate(self._first_layout)}
        keys = [number[id(p)] for p in params]
        if self.use_error_feedback and all(k in self._pending["error"] for k in keys):
            self.error_dict[index] = torch.cat([self._pending["error"].pop(k).reshape(-1) for k in keys]).to(
                device
            )
        shapes = _compressed(self, params)
        if self.warm_start and shapes and all(keys[i] in self._pending["q"] for i, _ in shapes):
            self.q_memory_dict[index] = torch.cat(
                [self._pending["q"].pop(keys[i]).reshape(-1) for i, _ in shapes]
            ).to(device)
            self.p_memory_dict[index] = torch.empty(
                sum(m * rank for _, (m, n, rank) in shapes),
                device=device,
                dtype=self.q_memory_dict[index].dtype,
            )

    def _count(self, sent, uncompressed):
        self._step_floats += sent
        self._step_uncompressed += uncompressed

    def _end_bucket(self, bucket):
        """PyTorch's ``maybe_increase_iter``, closing the step's float count on the last bucket."""
        if bucket.is_last():
            self.iter += 1
            self.floats_sent_last_step, self.floats_uncompressed_last_step = (
                self._step_floats,
                self._step_uncompressed,
            )
            self.floats_sent_total += self._step_floats
            self._step_floats = self._step_uncompressed = 0

    def _random_q(self, q):
        """Fill ``q`` with standard normals from the dedicated generator (PyTorch's numbers)."""
        q.copy_(torch.randn(*q.shape, generator=self.generator, device="cpu", dtype=q.dtype))


def _orthogonalize(matrices, epsilon):
    """PyTorch's ``_orthogonalize`` (b, m, r) in place, except that a zero column stays zero."""
    rank = matrices.shape[2]
    if rank > 2 and matrices.dtype not in (torch.float16, torch.bfloat16):
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


def _groups(state, tensors):
    """PyTorch's step I on shapes: indices of the tensors worth compressing, grouped by their
    matrix shape (m, n) = (shape[0], rest) in first-seen order, and the indices of the rest.
    """
    groups, rest = {}, []
    for i, tensor in enumerate(tensors):
        m = tensor.shape[0]
        n = tensor.numel() // m if m else 0
        rank = min(m, n, state.matrix_approximation_rank)
        if (m + n) * rank * state.min_compression_rate < m * n:
            groups.setdefault((m, n), []).append(i)
        else:
            rest.append(i)
    return list(groups.values()), rest


def _compressed(state, tensors):
    """(index, (m, n, r)) of each compressed tensor, in the order of the P/Q memories."""
    groups, _ = _groups(state, tensors)
    out = []
    for group in groups:
        for i in group:
            m = tensors[i].shape[0]
            n = tensors[i].numel() // m
            out.append((i, (m, n, min(m, n, state.matrix_approximation_rank))))
    return out


def _split(state, tensors):
    """The (b, m, n) batches to compress (views, or stacked copies when batching), the
    matrices of each shape group, and the tensors sent uncompressed.
    """
    groups, rest = _groups(state, tensors)
    grouped = [[tensors[i].view(tensors[i].shape[0], -1) for i in group] for group in groups]
    batches = []
    for matrices in grouped:
        if state.batch_tensors_with_same_shape:
            batches.append(matrices[0].unsqueeze(0) if len(matrices) == 1 else torch.stack(matrices))
        else:
            batches.extend(matrix.unsqueeze(0) for matrix in matrices)
    return batches, [tensors[i] for i in rest], grouped


def _low_rank_views(state, bucket_index, batches, device, dtype):
    """P (b, m, r) and Q (b, n, r) views into the bucket's P/Q memories; whether Q needs drawing."""
    ranks = [min(b.shape[1], b.shape[2], state.matrix_approximation_rank) for b in batches]
    p_sizes = [b.shape[0] * b.shape[1] * r for b, r in zip(batches, ranks)]
    q_sizes = [b.shape[0] * b.shape[2] * r for b, r in zip(batches, ranks)]
    fresh = not state.warm_start or bucket_index not in state.p_memory_dict
    if fresh:
        state.p_memory_dict[bucket_index] = torch.empty(sum(p_sizes), device=device, dtype=dtype)
        state.q_memory_dict[bucket_index] = torch.empty(sum(q_sizes), device=device, dtype=dtype)
    ps, qs, p_at, q_at = [], [], 0, 0
    for b, r, p_size, q_size in zip(batches, ranks, p_sizes, q_sizes):
        ps.append(state.p_memory_dict[bucket_index][p_at : p_at + p_size].view(b.shape[0], b.shape[1], r))
        qs.append(state.q_memory_dict[bucket_index][q_at : q_at + q_size].view(b.shape[0], b.shape[2], r))
        p_at, q_at = p_at + p_size, q_at + q_size
    return ps, qs, fresh


def _nonfinite(state, bucket, input_tensor, what):
    """Apply the non-finite policy on every node alike; returns the (zeroed) bucket.

    ``bucket`` is None when the step was already counted (warm-up).
    """
    state.nonfinite_steps += 1
    iteration = state.iter if bucket is not None else state.iter - 1
    message = f"non-finite gradient at iteration {iteration} ({what}); error feedback left unchanged"
    if bucket is not None:
        state._end_bucket(bucket)
    if state.nonfinite == "raise":
        raise FloatingPointError(message)
    logger.warning("%s; the bucket's gradient is set to zero for this step", message)
    return input_tensor.zero_()


def powersgd_plus_hook(
    state: PowerSGDPlusState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """PowerSGD (``restart_period=None``) or PowerSGD+ for one DDP gradient bucket.

    Parameters
    ----------
    state : PowerSGDPlusState
    bucket : torch.distributed.GradBucket

    Returns
    -------
    torch.futures.Future
        Resolves to the bucket's averaged, decompressed gradient (in place).
    """
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world_size = group.size()
    input_tensor = bucket.buffer()

    if state.iter < state.start_powerSGD_iter:
        state._see(bucket, bucket.parameters(), input_tensor.device)
        state._count(input_tensor.numel(), input_tensor.numel())
        state._end_bucket(bucket)  # PyTorch counts a warm-up iteration before its all-reduce

        input_tensor.div_(world_size)  # as PyTorch's default all-reduce hook
        dist.all_reduce(input_tensor, group=group)
        if not torch.isfinite(input_tensor).all():
            return _done(_nonfinite(state, None, input_tensor, "all-reduce warm-up"))
        return _done(input_tensor)

    device, dtype = input_tensor.device, input_tensor.dtype
    bucket_index = bucket.index()
    state._see(bucket, bucket.parameters(), device)
    finite = torch.isfinite(input_tensor).all()
    input_tensor_cp = None
    if state.use_error_feedback:
        if bucket_index in state.error_dict:
            input_tensor.add_(state.error_dict[bucket_index])
        else:
            state.error_dict[bucket_index] = torch.zeros_like(input_tensor)
        input_tensor_cp = input_tensor.detach().clone()

    gradients = bucket.gradients()
    batches, uncompressed, grouped = _split(state, gradients)
    restart = state.is_restart()
    ps, qs, fresh = _low_rank_views(state, bucket_index, batches, device, dtype)
    flag = torch.where(finite, 0.0, 1.0).to(device=device, dtype=dtype).reshape(1)

    def finish(matrices_mean):
        """Orthogonalise (SSP) or take the SVD basis (restart), then Q, all-reduce, decompress."""
        if restart:
            for p, mean in zip(ps, matrices_mean):
                p.copy_(torch.linalg.svd(mean, full_matrices=False)[0][..., : p.shape[2]])
        else:
            for p in ps:
                _orthogonalize(p, state.orthogonalization_epsilon)
        for matrix, p, q in zip(batches, ps, qs):
            torch.bmm(matrix.transpose(1, 2), p, out=q)
        q_memory = state.q_memory_dict[bucket_index]
        dist.all_reduce(q_memory, group=group)
        q_memory.div_(world_size)
        for p, q, matrix in zip(ps, qs, batches):
            torch.bmm(p, q.transpose(1, 2), out=matrix)
        if state.batch_tensors_with_same_shape:
            for batch, originals in zip(batches, grouped):
                if batch.shape[0] > 1:
                    for i, original in enumerate(originals):
                        original.copy_(batch[i])
        if state.use_error_feedback:
            state.error_dict[bucket_index] = input_tensor_cp - input_tensor
        if not state.warm_start:
            state.p_memory_dict.clear()
            state.q_memory_dict.clear()
        if restart:
            state.restarts += 1
        state._end_bucket(bucket)
        return input_tensor

    q_floats = sum(q.numel() for q in qs)
    if restart:
        # The whole error-fed bucket and the flag in one all-reduce: uncompressed tensors and
        # the matrices' node average Δ alike.
        memory = torch.cat([input_tensor, flag])
        state._count(memory.numel() + q_floats, input_tensor.numel())

        dist.all_reduce(memory, group=group)
        mean = memory.div_(world_size)
        if mean[-1] != 0:
            return _done(_nonfinite(state, bucket, input_tensor, "restart step"))
        mean_batches, mean_uncompressed, _ = _split(state, _unflatten(mean[:-1], gradients))
        for tensor, tensor_mean in zip(uncompressed, mean_uncompressed):
            tensor.copy_(tensor_mean)
        return _done(finish(mean_batches))

    if fresh:
        state.generator.manual_seed(int(state.rng.randint(1_000_000_000)))
        for q in qs:
            state._random_q(q)
            _orthogonalize(q, state.orthogonalization_epsilon)
    else:
        for q in qs:
            _orthogonalize(q, state.orthogonalization_epsilon)
    for matrix, q, p in zip(batches, qs, ps):
        torch.bmm(matrix, q, out=p)
    memory = torch.cat([tensor.view(-1) for tensor in uncompressed] + [flag])
    p_memory = state.p_memory_dict[bucket_index]
    state._count(memory.numel() + p_memory.numel() + q_floats, input_tensor.numel())

    dist.all_reduce(memory, group=group)
    mean = memory.div_(world_size)
    if mean[-1] != 0:
        return _done(_nonfinite(state, bucket, input_tensor, "compressed step"))
    at = 0
    for tensor in uncompressed:
        tensor.copy_(mean[at : at + tensor.numel()].view_as(tensor))
        at += tensor.numel()
    # P is orthogonalised next, so its sum need not be divided by N (as PyTorch).
    dist.all_reduce(p_memory, group=group)
    return _done(finish(None))


def _done(tensor):
    """A completed future: every collective of a compressed step is issued by the hook's own
    call, so all ranks issue them in the same (bucket) order. Issuing them from future
    callbacks, as PyTorch's hook does, lets two buckets' collectives interleave differently
    on different ranks; with a slow SVD in between that deadlocked gloo.
    """
    fut = torch.futures.Future()
    fut.set_result(tensor)
    return fut


def _unflatten(flat, tensors):
    """Views of ``flat`` shaped as ``tensors``, which lie one after another in a bucket."""
    views, at = [], 0
    for tensor in tensors:
        views.append(flat[at : at + tensor.numel()].view_as(tensor))
        at += tensor.numel()
    if at != flat.numel():
        raise RuntimeError(f"bucket gradients hold {at} elements, the bucket {flat.numel()}")
    return views
