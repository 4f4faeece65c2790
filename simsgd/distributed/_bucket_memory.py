"""The per-bucket memories of the DDP hook (error feedback, P and Q), kept aligned with DDP's buckets.

The memories are flat tensors in a bucket's parameter order, as in PyTorch's ``powerSGD_hook``.
DDP changes that order after its first iteration (and a resumed run starts from the first
order again), so :class:`BucketMemory` also keeps them per parameter when the layout changes
and for ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["BucketMemory", "unflatten", "matrix_groups", "compressed_matrices", "split_bucket"]

KINDS = ("error", "p", "q")


def unflatten(flat, tensors):
    """Views of ``flat`` shaped as ``tensors``, which lie one after another in a bucket."""
    views, at = [], 0
    for tensor in tensors:
        views.append(flat[at : at + tensor.numel()].view_as(tensor))
        at += tensor.numel()
    if at != flat.numel():
        raise RuntimeError(f"bucket gradients hold {at} elements, the bucket {flat.numel()}")
    return views


def matrix_groups(tensors, rank, min_compression_rate):
    """PyTorch's step I on shapes: indices of the tensors worth compressing at ``rank``, grouped by
    their matrix shape (m, n) = (shape[0], rest) in first-seen order, and the indices of the rest.
    """
    groups, rest = {}, []
    for i, tensor in enumerate(tensors):
        m = tensor.shape[0] if tensor.dim() else 1
        n = tensor.numel() // m if m else 0
        r = min(m, n, rank)
        if (m + n) * r * min_compression_rate < m * n:
            groups.setdefault((m, n), []).append(i)
        else:
            rest.append(i)
    return list(groups.values()), rest


def compressed_matrices(tensors, rank, min_compression_rate):
    """(index, (m, n, r)) of each compressed tensor, in the order of the P/Q memories."""
    groups, _ = matrix_groups(tensors, rank, min_compression_rate)
    out = []
    for group in groups:
        for i in group:
            m = tensors[i].shape[0]
            n = tensors[i].numel() // m
            out.append((i, (m, n, min(m, n, rank))))
    return out


def split_bucket(tensors, rank, min_compression_rate, batch_same_shape):
    """The (b, m, n) batches to compress (views, or stacked copies when batching), the
    matrices of each shape group, and the tensors sent uncompressed.
    """
    groups, rest = matrix_groups(tensors, rank, min_compression_rate)
    grouped = [[tensors[i].view(tensors[i].shape[0], -1) for i in group] for group in groups]
    batches = []
    for matrices in grouped:
        if batch_same_shape:
            batches.append(matrices[0].unsqueeze(0) if len(matrices) == 1 else torch.stack(matrices))
        else:
            batches.extend(matrix.unsqueeze(0) for matrix in matrices)
    return batches, [tensors[i] for i in rest], grouped


class BucketMemory:
    """Error, P and Q memories of every bucket, by bucket index.

    Parameters
    ----------
    plan : callable
        ``plan(tensors) -> [(i, (m, n, r)), ...]``: the compressed tensors of a bucket and
        their matrix shapes and ranks, in the order of the P/Q memories.
    saved : tuple of str
        The kinds kept per parameter across a layout change and in :meth:`per_parameter`
        (a subset of ``("error", "p", "q")``).

    Attributes
    ----------
    error, p, q : dict[int, Tensor]
        Flat memories by bucket index: e (bucket size), P (Σ m r), Q (Σ n r).
    """

    def __init__(self, plan: Callable, saved: tuple):
        self.plan = plan
        self.saved = tuple(saved)
        self.error: dict[int, torch.Tensor] = {}
        self.p: dict[int, torch.Tensor] = {}
        self.q: dict[int, torch.Tensor] = {}
        self._layouts: dict[int, list] = {}  # bucket index -> its parameters, in bucket order
        self._first_layout: list = []  # all parameters in the order of the first iteration
        self._first_layout_done = False
        self._pending: dict[str, dict[int, torch.Tensor]] = {kind: {} for kind in KINDS}

    def track(self, index: int, params: list, is_last: bool, device) -> None:
        """See bucket ``index`` holding ``params``; realign the memories if its layout changed.

        When a bucket's parameters change, every bucket's memories are set aside per
        parameter and each bucket takes its parameters' memories back in its new order,
        so compression may start before DDP's bucket rebuild.
        """
        old = self._layouts.get(index)
        if old is not None and [id(p) for p in old] != [id(p) for p in params]:
            self._pending = self.per_parameter()
            self.error, self.p, self.q, self._layouts = {}, {}, {}, {}
        self._layouts[index] = params
        if not self._first_layout_done:
            self._first_layout.extend(params)
            self._first_layout_done = is_last
        if not any(self._pending.values()) or index in self.error or index in self.q:
            return
        keys = self._keys(params)
        if all(k in self._pending["error"] for k in keys):
            self.error[index] = self._take("error", keys, device)
        shapes = self.plan(params)
        wanted = [keys[i] for i, _ in shapes]
        if shapes and all(k in self._pending["q"] for k in wanted):
            self.q[index] = self._take("q", wanted, device)
            if all(k in self._pending["p"] for k in wanted):
                self.p[index] = self._take("p", wanted, device)
            else:
                size = sum(m * rank for _, (m, _n, rank) in shapes)
                self.p[index] = torch.empty(size, device=device, dtype=self.q[index].dtype)

    def _keys(self, params):
        number = {id(p): k for k, p in enumerate(self._first_layout)}
        return [number[id(p)] for p in params]

    def _take(self, kind, keys, device):
        return torch.cat([self._pending[kind].pop(k).reshape(-1) for k in keys]).to(device)

    def low_rank(self, index, shapes, device, dtype, reuse: bool):
        """P (b, m, r) and Q (b, n, r) views of bucket ``index``'s memories for batches of
        ``shapes`` [(b, m, n, r)], allocated unless ``reuse`` and present; and whether they were.
        """
        p_sizes = [b * m * r for b, m, _n, r in shapes]
        q_sizes = [b * n * r for b, _m, n, r in shapes]
        fresh = not reuse or index not in self.p
        if fresh:
            self.p[index] = torch.empty(sum(p_sizes), device=device, dtype=dtype)
            self.q[index] = torch.empty(sum(q_sizes), device=device, dtype=dtype)
        ps, qs, p_at, q_at = [], [], 0, 0
        for (b, m, n, r), p_size, q_size in zip(shapes, p_sizes, q_sizes):
            ps.append(self.p[index][p_at : p_at + p_size].view(b, m, r))
            qs.append(self.q[index][q_at : q_at + q_size].view(b, n, r))
            p_at, q_at = p_at + p_size, q_at + q_size
        return ps, qs, fresh

    def per_parameter(self) -> dict:
        """The saved kinds per parameter: {"error": {k: e_k}, "p": {k: P_k (m, r)}, "q": {k: Q_k (n, r)}},
        k numbering the parameters in the order DDP presented them in the first iteration seen.
        """
        saved = {kind: dict(pending) for kind, pending in self._pending.items()}
        for index, params in self._layouts.items():
            keys = self._keys(params)
            if "error" in self.saved and index in self.error:
                for key, chunk in zip(keys, unflatten(self.error[index], params)):
                    saved["error"][key] = chunk
            for kind, memory, dim in (("p", self.p, 0), ("q", self.q, 1)):
                if kind not in self.saved or index not in memory:
                    continue
                at = 0
                for i, shape in self.plan(params):
                    rows, rank = shape[dim], shape[2]
                    saved[kind][keys[i]] = memory[index][at : at + rows * rank].view(rows, rank)
                    at += rows * rank
        return saved

    def state_dict(self) -> dict:
        """Copies of :meth:`per_parameter`."""
        return {
            kind: {k: v.detach().clone() for k, v in chunks.items()}
            for kind, chunks in self.per_parameter().items()
        }

    def load_state_dict(self, memory: dict, device=None) -> None:
        """Start over from :meth:`state_dict`'s output; buckets take it back as they are seen."""
        self.error, self.p, self.q = {}, {}, {}
        self._layouts, self._first_layout, self._first_layout_done = {}, [], False
        self._pending = {kind: {} for kind in KINDS}
        for kind, chunks in memory.items():
            self._pending[kind] = {
                int(k): v.detach().clone() if device is None else v.detach().to(device, copy=True)
                for k, v in chunks.items()
            }
