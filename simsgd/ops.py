"""The array operations Algorithm 1 and 2 need, for NumPy.

Algorithm 2 is written once (``simsgd.algorithm``) against this small interface. The
simulated engine holds every node in an explicit node axis (axis -3 of a
``(..., N, m, n)`` array) and averages over it; the torch backend
(``simsgd.distributed``) holds one node per process in a node axis of length 1 and
averages with ``all_reduce``. Nothing else differs.

:class:`ArrayOps` states the interface; :class:`NumpyOps` (here), :class:`simsgd.torch_ops.TorchOps`,
:class:`~simsgd.distributed.ops.TorchOps` and :class:`~simsgd.distributed.ops.ReferenceOps`
implement it, and a new backend need only implement it too (and register itself in
:mod:`simsgd.backends`).

The ops objects double as the array namespace of the problems' oracles (:func:`array_ops`),
so an oracle is written once for NumPy and torch; the torch engine holds the replicas' nodes on
tensors the way the NumPy engine does.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np

from .small_svd import top_left_singular_vectors_2xn

__all__ = ["Array", "ArrayOps", "NumpyOps", "NUMPY", "array_ops"]

Array: TypeAlias = Any
"""A NumPy array or a torch tensor; shapes are given in the docstrings."""

_SMALL = 8  # contraction length up to which NumpyOps.matmul avoids np.matmul
_ENTRIES = 16  # matrix entries up to which NumpyOps works entry by entry (long strided loops)


@runtime_checkable
class ArrayOps(Protocol):
    """Every array operation the package calls: Algorithms 1 and 2 (:mod:`simsgd.algorithm`,
    :mod:`simsgd.compressors`, :mod:`simsgd.orthogonalize`, the compressors of
    :mod:`simsgd.methods` and :mod:`simsgd.baselines`), the engine's loop and record, and the
    problems' oracles (which reach it through :func:`array_ops`). Nothing else of an array
    library is used, so a class with exactly these members runs :func:`simsgd.simulate`
    (``tests/test_core_engine.py`` checks that).

    Arrays carry leading batch (replica) axes ``...``; the node axis is axis -3 of a
    ``(..., N, a, b)`` array, and ``node_mean`` is the only operation that communicates.
    """

    name: str

    # -- Algorithm 1 and 2 --------------------------------------------------------------
    def node_mean(self, x: Array) -> Array:
        """(1/N) Σ_i x^{(i)}: ``(..., N, a, b) -> (..., a, b)``."""
        ...

    def matmul(self, a: Array, b: Array) -> Array:
        """Batched ``a @ b``: ``(..., a, k), (..., k, b) -> (..., a, b)``."""
        ...

    def qr(self, p: Array) -> tuple[Array, Array]:
        """Householder QR of ``p`` (..., m, r): ``(Q (..., m, r), diag(R) (..., r))``."""
        ...

    def svd(self, p: Array) -> tuple[Array, Array]:
        """Reduced SVD's left singular vectors and singular values: ``(..., m, k), (..., k)``."""
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

    def eps(self, x: Array) -> float:
        """Machine epsilon of ``x``'s dtype."""
        ...

    def ignore_division_warnings(self) -> AbstractContextManager:
        """A context in which 0/0 yields NaN without a warning (Gram–Schmidt with ε = 0)."""
        ...

    # -- the baselines' compressors (simsgd.baselines) -----------------------------------
    def topk_mask(self, x: Array, k: int) -> Array:
        """Boolean mask of the ``k`` entries of largest |x_ij| per matrix: ``(..., a, b)``, ties
        to the lower row-major index (a stable sort), so every backend picks the same entries.
        """
        ...

    def sign(self, x: Array) -> Array:
        """Elementwise sign (−1, 0, +1)."""
        ...

    def floor(self, x: Array) -> Array:
        """Elementwise floor."""
        ...

    # -- the engine's loop and record ----------------------------------------------------
    def asnumpy(self, x: Array) -> np.ndarray:
        """``x`` as a NumPy array."""
        ...

    def from_numpy(self, a: np.ndarray) -> Array:
        """A NumPy array in this library (and on this ops' device)."""
        ...

    def asarray(self, a, like: Array) -> Array:
        """``a`` (array or scalar) in ``like``'s library, dtype and device."""
        ...

    def node_layout(self, x: Array) -> Array:
        """``x`` (R, N, m, n) in the memory layout the kernels prefer (values unchanged)."""
        ...

    def all_finite(self, x: Array) -> bool:
        """Whether every entry of ``x`` is finite (a Python bool)."""
        ...

    def stack(self, arrays) -> Array:
        """Stack equal-shaped arrays along a new axis 0."""
        ...

    # -- the oracles' array namespace (:func:`array_ops`) ---------------------------------
    def abs(self, x: Array) -> Array:
        """Elementwise |x|."""
        ...

    def clip(self, x: Array, low, high) -> Array:
        """Elementwise clip to [low, high]."""
        ...

    def einsum(self, subscripts: str, *operands: Array) -> Array:
        """Einstein summation, as ``numpy.einsum``."""
        ...

    def ones_like(self, x: Array) -> Array:
        """Ones of ``x``'s shape and dtype."""
        ...


def _replica_fastest(x) -> bool:
    """Whether ``x`` (..., a, b) has its batch axes fastest in memory (:meth:`NumpyOps.node_layout`)."""
    return x.ndim > 2 and x.strides[0] == x.itemsize and not x.flags.c_contiguous


def _empty_like_layout(shape, dtype, *inputs):
    """An empty array of ``shape``, batch axes fastest (Fortran order) if those of an input are."""
    return np.empty(shape, dtype, order="F" if any(map(_replica_fastest, inputs)) else "C")


def _layout_as(x, out):
    """``out`` (LAPACK's, C order) with its batch axes fastest if ``x``'s are."""
    return np.asfortranarray(out) if _replica_fastest(x) else out


def _matmul_entries(a, b):
    """``a @ b`` one output entry at a time: out_il = Σ_j a_ij b_jl, summed in order of j."""
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    out = _empty_like_layout(shape, np.result_type(a, b), a, b)
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
        total = _empty_like_layout(x.shape[:-3] + x.shape[-2:], x.dtype, x)
        for a in range(x.shape[-2]):
            for b in range(x.shape[-1]):
                entry = total[..., a, b]
                if nodes == 1:
                    np.copyto(entry, x[..., 0, a, b])
                else:
                    np.add(x[..., 0, a, b], x[..., 1, a, b], out=entry)
                for i in range(2, nodes):
                    entry += x[..., i, a, b]
        total /= nodes
        return total

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
        return _layout_as(p, q), np.diagonal(r, axis1=-2, axis2=-1)

    @staticmethod
    def svd(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reduced SVD's left singular vectors and singular values: (..., m, k), (..., k)."""
        u, s, _ = np.linalg.svd(p, full_matrices=False)
        return _layout_as(p, u), s

    @staticmethod
    def top_left_singular_vectors(d: np.ndarray, rank: int) -> np.ndarray:
        """First ``rank`` left singular vectors of ``d`` (..., m, n) -> (..., m, rank).

        m = 2: the closed form of :func:`simsgd.small_svd.top_left_singular_vectors_2xn` (the
        torch engines' too; LAPACK's batched SVD of 10⁵ 2×2 matrices takes ~20× as long);
        otherwise LAPACK's SVD. The two may differ in the last bits and in the signs of the vectors.
        """
        if d.shape[-2] == 2:  # with a batch axis: NumPy scalars would take ** 0.5 through pow
            return top_left_singular_vectors_2xn(d[None], rank, NUMPY)[0]
        return _layout_as(d, np.linalg.svd(d, full_matrices=False)[0][..., :rank])

    @staticmethod
    def sqnorm(x: np.ndarray) -> np.ndarray:
        """Squared Frobenius norm over the last two axes (summed as for C order, whatever the layout)."""
        x = np.ascontiguousarray(x)  # einsum's order of summation follows the memory layout
        return np.einsum("...ij,...ij->...", x, x)

    @staticmethod
    def maxabs(x: np.ndarray) -> np.ndarray:
        """Max |x_ij| over the last two axes."""
        entries = x.shape[-2] * x.shape[-1]
        if entries > _ENTRIES or entries == 0:
            return np.abs(x).max(axis=(-2, -1))
        # NumPy's reduction over tiny trailing axes is ~10× slower than this maximum of columns.
        out = np.abs(x[..., 0, :1])[..., 0]  # an array, also without batch axes
        for a in range(x.shape[-2]):
            for b in range(x.shape[-1]):
                if a or b:
                    np.maximum(out, np.abs(x[..., a, b]), out=out)
        return out

    @staticmethod
    def col_sum(x: np.ndarray, keep: bool = True) -> np.ndarray:
        """Sum over the row axis (-2): per-column sums, shape (..., 1, k).

        Summed as for C order, whatever the layout: NumPy sums a contiguous axis of ≥ 8
        pairwise and a strided one in sequence.
        """
        return np.ascontiguousarray(x).sum(axis=-2, keepdims=keep)

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
    def node_layout(x: np.ndarray) -> np.ndarray:
        """``x`` (R, N, m, n) laid out for the entry-by-entry loops: the replicas fastest in
        memory (Fortran order, or ``x`` itself if its replicas are fastest already) when
        m·n ≤ 16 and m, n ≤ 8, so that each entry's loop over R·N runs through memory at a
        fixed stride; larger matrices stay as given (there ``np.matmul`` sums, in an order
        that depends on the layout).

        The engine lays out the oracle's g_t^{(i)} so (ψ's oracle asks for it on its inputs,
        which makes its broadcasting faster and spares the copy); (7a)–(7b) keep the layout of
        their inputs (:func:`_empty_like_layout`). Values do not depend on it: every reduction here
        runs in an explicit order or is exact, or (``sqnorm``, ``col_sum``) sums a C-order copy.
        """
        m, n = x.shape[-2:]
        if max(m, n) > _SMALL or m * n > _ENTRIES:  # contractions over > 8 terms use np.matmul
            return x
        return x if _replica_fastest(x) else np.asfortranarray(x)

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

    @staticmethod
    def topk_mask(x: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` entries of largest |x_ij| per matrix (ties to the lower row-major index)."""
        flat = np.abs(np.ascontiguousarray(x)).reshape(x.shape[:-2] + (-1,))
        order = np.argsort(-flat, axis=-1, kind="stable")[..., :k]
        mask = np.zeros(flat.shape, dtype=bool)
        np.put_along_axis(mask, order, True, axis=-1)
        return mask.reshape(x.shape)

    @staticmethod
    def sign(x):
        return np.sign(x)

    @staticmethod
    def floor(x):
        return np.floor(x)

    @staticmethod
    def abs(x):
        return np.abs(x)

    @staticmethod
    def clip(x, low, high):
        return np.clip(x, low, high)

    @staticmethod
    def einsum(subscripts, *operands):
        return np.einsum(subscripts, *operands)

    @staticmethod
    def ones_like(x):
        return np.ones_like(x)

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
    """The ops (and array namespace) of ``x``: :data:`NUMPY`, the torch engine's for a tensor, or
    those an array type names itself (an ``array_ops`` attribute, e.g. :class:`simsgd.lanes.Lanes`).

    Never imports torch for a NumPy array.
    """
    own = getattr(x, "array_ops", None)
    if own is not None:
        return own
    if type(x).__module__.partition(".")[0] == "torch":
        from .torch_ops import TORCH  # a leaf: torch's kernels import nothing of the package

        return TORCH
    return NUMPY
