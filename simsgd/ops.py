"""The array operations Algorithm 1 and 2 need, for NumPy.

Algorithm 2 is written once (``simsgd.algorithm``) against this small interface. The
simulated engine holds every node in an explicit node axis (axis -3 of a
``(..., N, m, n)`` array) and averages over it; the torch engine
(:mod:`simsgd.torch_engine`) does the same on tensors, and ``simsgd.distributed`` holds one
node per process in a node axis of length 1 and averages with ``all_reduce``. Nothing else
differs. The ops objects double as the array namespace of the problems' oracles
(:func:`array_ops`), so an oracle is written once for NumPy and torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyOps", "NUMPY", "array_ops"]

_SMALL = 8  # contraction length up to which NumpyOps.matmul avoids np.matmul


class NumpyOps:
    """Array operations on NumPy arrays; the node axis is axis -3."""

    name = "numpy"

    @staticmethod
    def node_mean(x):
        """(1/N) Σ_i x^{(i)}: mean over the node axis, ``(..., N, a, b) -> (..., a, b)``."""
        # A sum of slices: NumPy's reduction over a middle axis of small matrices is ~3× slower.
        total = x[..., 0, :, :].copy()
        for i in range(1, x.shape[-3]):
            total += x[..., i, :, :]
        return total / x.shape[-3]

    @staticmethod
    def matmul(a, b):
        """Batched ``a @ b``; for small contractions a sum of broadcast outer products,
        which beats ``np.matmul``'s per-matrix overhead on many tiny matrices.
        """
        k = a.shape[-1]
        if k > _SMALL or a.shape[-2] * b.shape[-1] > _SMALL**2:
            return a @ b
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for j in range(1, k):
            out += a[..., :, j : j + 1] * b[..., j : j + 1, :]
        return out

    @staticmethod
    def qr(p):
        """Householder QR (LAPACK ``geqrf``/``orgqr``). Returns ``(Q, diag(R))``."""
        q, r = np.linalg.qr(p)
        return q, np.diagonal(r, axis1=-2, axis2=-1)

    @staticmethod
    def top_left_singular_vectors(d, rank):
        """First ``rank`` left singular vectors of ``d`` (..., m, n) -> (..., m, rank)."""
        return np.linalg.svd(d, full_matrices=False)[0][..., :rank]

    @staticmethod
    def sqnorm(x):
        """Squared Frobenius norm over the last two axes."""
        return np.einsum("...ij,...ij->...", x, x)

    @staticmethod
    def maxabs(x):
        """Max |x_ij| over the last two axes."""
        return np.abs(x).max(axis=(-2, -1))

    @staticmethod
    def col_sum(x, keep=True):
        """Sum over the row axis (-2): per-column sums, shape (..., 1, k)."""
        return x.sum(axis=-2, keepdims=keep)

    @staticmethod
    def expand_mask(mask, like):
        """Broadcast a batch mask of shape (...) to ``like``'s (..., a, b)."""
        return mask[..., None, None]

    @staticmethod
    def amin_last(x):
        """Minimum over the last axis."""
        return x.min(axis=-1)

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def where(mask, a, b):
        return np.where(mask, a, b)

    @staticmethod
    def zeros_like(x):
        return np.zeros_like(x)

    @staticmethod
    def any(mask) -> bool:
        return bool(np.any(mask))

    @staticmethod
    def asnumpy(x):
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
    def eps(x) -> float:
        return float(np.finfo(x.dtype).eps)

    @staticmethod
    def ignore_division_warnings():
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
