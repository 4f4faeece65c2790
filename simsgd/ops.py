"""The array operations Algorithm 1 and 2 need, for NumPy.

Algorithm 2 is written once (``simsgd.algorithm``) against this small interface. The
simulated engine holds every node in an explicit node axis (axis -3 of a
``(..., N, m, n)`` array) and averages over it; the torch backend
(``simsgd.distributed``) holds one node per process in a node axis of length 1 and
averages with ``all_reduce``. Nothing else differs.

:class:`ArrayOps` states the interface; :class:`NumpyOps` (here),
:class:`~simsgd.distributed.ops.TorchOps` and :class:`~simsgd.distributed.ops.ReferenceOps`
implement it, and a new backend need only implement it too.

The ops objects double as the array namespace of the problems' oracles (:func:`array_ops`),
so an oracle is written once for NumPy and torch; :mod:`simsgd.torch_engine` holds the
replicas' nodes on tensors the way the NumPy engine does.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np

__all__ = ["Array", "ArrayOps", "NumpyOps", "NUMPY", "array_ops"]

Array: TypeAlias = Any
"""A NumPy array or a torch tensor; shapes are given in the docstrings."""

_SMALL = 8  # contraction length up to which NumpyOps.matmul avoids np.matmul
_ENTRIES = 16  # matrix entries up to which NumpyOps works entry by entry (long strided loops)


@runtime_checkable
class ArrayOps(Protocol):
    """The array operations :mod:`simsgd.algorithm`, :mod:`simsgd.compressors` and
    :mod:`simsgd.orthogonalize` call, plus ``sqnorm`` and ``asnumpy`` for the runners'
    records; nothing else of an array library is used.

    Arrays carry leading batch (replica) axes ``...``; the node axis is axis -3 of a
    ``(..., N, a, b)`` array, and ``node_mean`` is the only operation that communicates.
    """

    def node_mean(self, x: Array) -> Array:
        """(1/N) Σ_i x^{(i)}: ``(..., N, a, b) -> (..., a, b)``."""
        ...

    def matmul(self, a: Array, b: Array) -> Array:
        """Batched ``a @ b``: ``(..., a, k), (..., k, b) -> (..., a, b)``."""
        ...

    def qr(self, p: Array) -> tuple[Array, Array]:
        """Householder QR of ``p`` (..., m, r): ``(Q (..., m, r), diag(R) (..., r))``."""
        ...

    def top_left_singular_vectors(self, d: Array, rank: int) -> Array:
        """First ``rank`` left singular vectors: ``(..., m, n) -> (..., m, rank)``."""
        ...

    def sqnorm(self, x: Array) -> Array:
        """Squared Frobenius norm over the last two axes: ``(..., a, b) -> (...)``."""
        ...

    def maxabs(self, x: Array) -> Array:
        """Max |x_ij| over the last two axes: ``(..., a, b) -> (...)``."""
        ...

    def col_sum(self, x: Array, keep: bool = True) -> Array:
        """Sum over axis -2: ``(..., a, k) -> (..., 1, k)``."""
        ...

    def expand_mask(self, mask: Array, like: Array) -> Array:
        """Broadcast a batch mask ``(...)`` to ``like``'s ``(..., a, b)``."""
        ...

    def amin_last(self, x: Array) -> Array:
        """Minimum over the last axis."""
        ...

    def copy(self, x: Array) -> Array:
        """A copy that the caller may change in place."""
        ...

    def where(self, mask: Array, a: Array, b: Array) -> Array:
        """Elementwise ``a`` where ``mask``, else ``b``."""
        ...

    def zeros_like(self, x: Array) -> Array:
        """Zeros of ``x``'s shape and dtype."""
        ...

    def any(self, mask: Array) -> bool:
        """Whether any element of ``mask`` is true (a Python bool)."""
        ...

    def asnumpy(self, x: Array) -> np.ndarray:
        """``x`` as a NumPy array."""
        ...

    def eps(self, x: Array) -> float:
        """Machine epsilon of ``x``'s dtype."""
        ...

    def ignore_division_warnings(self) -> AbstractContextManager:
        """A context in which 0/0 yields NaN without a warning (Gram–Schmidt with ε = 0)."""
        ...


def _matmul_entries(a, b):
    """``a @ b`` one output entry at a time: out_il = Σ_j a_ij b_jl, summed in order of j."""
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    out = np.empty(shape, np.result_type(a, b))
    for i in range(a.shape[-2]):
        for col in range(b.shape[-1]):
            entry = out[..., i, col]
            np.multiply(a[..., i, 0], b[..., 0, col], out=entry)
            for j in range(1, a.shape[-1]):
                entry += a[..., i, j] * b[..., j, col]
    return out


class NumpyOps:
    """The :class:`ArrayOps` of NumPy arrays: all N nodes in axis -3, averaged in memory."""

    name = "numpy"

    @staticmethod
    def node_mean(x: np.ndarray) -> np.ndarray:
        """(1/N) Σ_i x^{(i)}: mean over the node axis, ``(..., N, a, b) -> (..., a, b)``."""
        # A sum of slices in node order: NumPy's reduction over a middle axis of small matrices
        # is ~3× slower, and for ≤ 16 entries one long strided loop per entry ~3× faster again.
        nodes, entries = x.shape[-3], x.shape[-2] * x.shape[-1]
        if entries > _ENTRIES or entries == 0:
            total = x[..., 0, :, :].copy()
            for i in range(1, nodes):
                total += x[..., i, :, :]
            return total / nodes
        flat = x.reshape(*x.shape[:-3], nodes, entries)
        total = np.empty(flat.shape[:-2] + (entries,), x.dtype)
        for e in range(entries):
            entry = total[..., e]
            if nodes == 1:
                np.copyto(entry, flat[..., 0, e])
            else:
                np.add(flat[..., 0, e], flat[..., 1, e], out=entry)
            for i in range(2, nodes):
                entry += flat[..., i, e]
        total /= nodes
        return total.reshape(*x.shape[:-3], *x.shape[-2:])

    @staticmethod
    def matmul(a: Array, b: Array) -> Array:
        """Batched ``a @ b``; for small contractions a sum of products in the order j = 0, 1, …,
        which beats ``np.matmul``'s per-matrix overhead on many tiny matrices: entry by entry
        (one long strided loop per term) for outputs of ≤ 16 entries, else broadcast outer
        products. Both round as each other.
        """
        k = a.shape[-1]
        if k > _SMALL or a.shape[-2] * b.shape[-1] > _SMALL**2:
            return a @ b
        if a.shape[-2] * b.shape[-1] <= _ENTRIES:
            return _matmul_entries(a, b)
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for j in range(1, k):
            out += a[..., :, j : j + 1] * b[..., j : j + 1, :]
        return out

    @staticmethod
    def qr(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Householder QR (LAPACK ``geqrf``/``orgqr``). Returns ``(Q, diag(R))``."""
        q, r = np.linalg.qr(p)
        return q, np.diagonal(r, axis1=-2, axis2=-1)

    @staticmethod
    def svd(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reduced SVD's left singular vectors and singular values: (..., m, k), (..., k)."""
        u, s, _ = np.linalg.svd(p, full_matrices=False)
        return u, s

    @staticmethod
    def top_left_singular_vectors(d: np.ndarray, rank: int) -> np.ndarray:
        """First ``rank`` left singular vectors of ``d`` (..., m, n) -> (..., m, rank)."""
        return np.linalg.svd(d, full_matrices=False)[0][..., :rank]

    @staticmethod
    def sqnorm(x: np.ndarray) -> np.ndarray:
        """Squared Frobenius norm over the last two axes."""
        return np.einsum("...ij,...ij->...", x, x)

    @staticmethod
    def maxabs(x: np.ndarray) -> np.ndarray:
        """Max |x_ij| over the last two axes."""
        entries = x.shape[-2] * x.shape[-1]
        if entries > _ENTRIES or entries == 0:
            return np.abs(x).max(axis=(-2, -1))
        # NumPy's reduction over tiny trailing axes is ~10× slower than this maximum of columns.
        flat = x.reshape(*x.shape[:-2], entries)
        out = np.abs(flat[..., :1])[..., 0]  # an array, also without batch axes
        for j in range(1, entries):
            np.maximum(out, np.abs(flat[..., j]), out=out)
        return out

    @staticmethod
    def col_sum(x: np.ndarray, keep: bool = True) -> np.ndarray:
        """Sum over the row axis (-2): per-column sums, shape (..., 1, k)."""
        return x.sum(axis=-2, keepdims=keep)

    @staticmethod
    def expand_mask(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
        """Broadcast a batch mask of shape (...) to ``like``'s (..., a, b)."""
        return mask[..., None, None]

    @staticmethod
    def amin_last(x: np.ndarray) -> np.ndarray:
        """Minimum over the last axis."""
        return x.min(axis=-1)

    @staticmethod
    def copy(x: np.ndarray) -> np.ndarray:
        return x.copy()

    @staticmethod
    def where(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(mask, a, b)

    @staticmethod
    def zeros_like(x: np.ndarray) -> np.ndarray:
        return np.zeros_like(x)

    @staticmethod
    def any(mask: np.ndarray) -> bool:
        return bool(np.any(mask))

    @staticmethod
    def asnumpy(x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def from_numpy(a):
        """A NumPy array in this library (and device)."""
        return a

    @staticmethod
    def asarray(a, like):
        """``a`` (array or scalar) in ``like``'s library, dtype (and device)."""
        return np.asarray(a, dtype=like.dtype)

    @staticmethod
    def all_finite(x) -> bool:
        return bool(np.isfinite(x).all())

    @staticmethod
    def stack(arrays):
        return np.stack(arrays)

    abs = staticmethod(np.abs)
    clip = staticmethod(np.clip)
    einsum = staticmethod(np.einsum)
    ones_like = staticmethod(np.ones_like)

    @staticmethod
    def eps(x: np.ndarray) -> float:
        return float(np.finfo(x.dtype).eps)

    @staticmethod
    def ignore_division_warnings() -> AbstractContextManager:
        # Gram–Schmidt with ε = 0 divides 0 by 0 on a zero column, as PyTorch's hook
        # does; the NaN is caught by the engine's finiteness check, not by a warning.
        return np.errstate(divide="ignore", invalid="ignore")


NUMPY = NumpyOps()


def array_ops(x):
    """The ops (and array namespace) of ``x``: :data:`NUMPY`, or the torch engine's for a tensor.

    Never imports torch for a NumPy array.
    """
    if type(x).__module__.partition(".")[0] == "torch":
        from .torch_engine import TORCH

        return TORCH
    return NUMPY
