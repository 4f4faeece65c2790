"""The array operations of Algorithm 2 on torch tensors (CPU or CUDA): a leaf module.

:class:`TorchOps` is :class:`simsgd.ops.ArrayOps` for tensors that hold every node of a run in
axis -3 (the torch engine); :class:`simsgd.distributed.ops.TorchOps` derives from it with a node
mean that crosses processes. CholeskyQR2 (CUDA's QR) lives here beside them; the closed-form 2×n
restart SVD is :mod:`simsgd.small_svd`'s.

Needs torch; ``import simsgd`` does not import this module.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .small_svd import top_left_singular_vectors_2xn

__all__ = ["TorchOps", "TORCH", "check_device", "top_left_singular_vectors_2x2", "cholesky_qr2"]


def check_device(device) -> torch.device:
    """``device`` as a torch.device: "cpu", or "cuda"/"cuda:k" when CUDA is present.

    Raises
    ------
    ValueError
        Not a CPU or CUDA device, or CUDA asked for where there is none.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} needs CUDA, and torch.cuda.is_available() is False here")
    return dev


class TorchOps:
    """Algorithm 2's array operations on torch tensors; the node axis (-3) is averaged locally.

    Parameters
    ----------
    device : str or torch.device
        Where :meth:`from_numpy` puts arrays.
    qr : {None, "householder", "cholesky"}
        How :meth:`qr` orthogonalises: None picks by the tensor's device (CholeskyQR2 on CUDA,
        Householder elsewhere); "cholesky" runs the CUDA kernel on any device (so that the CPU
        tests exercise it); "householder" LAPACK's everywhere.

    Notes
    -----
    ``node_mean`` adds the node slices in order 0, 1, …, N−1 as NumPy's does, and the
    rank-1 QR is the same closed form, so most numbers equal the NumPy engine's; torch's
    LAPACK calls, ``sqrt`` and reductions may differ in the last bit. The SVD of a restart step
    on 2×n matrices is the NumPy engine's closed form
    (:func:`simsgd.small_svd.top_left_singular_vectors_2xn`); on larger ones ``torch.linalg.svd``
    may return singular vectors of the opposite sign to LAPACK's in NumPy (then Q_t has the
    opposite sign; P̃ Qᵀ, X_t and the trace do not depend on it).
    """

    name = "torch"

    def __init__(self, device="cpu", qr=None):
        if qr not in (None, "householder", "cholesky"):
            raise ValueError(f"qr must be None, 'householder' or 'cholesky', got {qr!r}")
        self.device, self.qr_kind = torch.device(device), qr

    @staticmethod
    def node_mean(x):
        """(1/N) Σ_i x^{(i)}: mean over the node axis, ``(..., N, a, b) -> (..., a, b)``."""
        total = x[..., 0, :, :]
        for i in range(1, x.shape[-3]):
            total = total + x[..., i, :, :]
        return total / x.shape[-3]

    @staticmethod
    def matmul(a, b):
        """Batched ``a @ b``; for small contractions a sum of broadcast outer products
        (elementwise kernels that fuse under ``torch.compile`` and avoid per-matrix GEMMs).
        """
        k = a.shape[-1]
        if k > 8 or a.shape[-2] * b.shape[-1] > 64:
            return a @ b
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for j in range(1, k):
            out = out + a[..., :, j : j + 1] * b[..., j : j + 1, :]
        return out

    def qr(self, p):
        """Householder QR. Returns ``(Q, diag(R))``.

        On CUDA batched ``linalg.qr`` runs matrix by matrix, so there it is CholeskyQR2
        (two Cholesky passes, orthogonal to rounding for the well-conditioned P of
        Algorithm 1; a rank-deficient P gives a zero pivot and is caught as degenerate);
        ``qr="cholesky"`` takes that branch on any device.
        """
        kind = self.qr_kind or ("cholesky" if p.device.type == "cuda" else "householder")
        if kind == "cholesky":
            return cholesky_qr2(p)
        q, r = torch.linalg.qr(p)
        return q, torch.diagonal(r, dim1=-2, dim2=-1)

    @staticmethod
    def svd(p):
        """Reduced SVD's left singular vectors and singular values: (..., m, k), (..., k)."""
        u, s, _ = torch.linalg.svd(p, full_matrices=False)
        return u, s

    @staticmethod
    def top_left_singular_vectors(d, rank):
        """First ``rank`` left singular vectors of ``d`` (..., m, n) -> (..., m, rank).

        m = 2: closed form (:func:`simsgd.small_svd.top_left_singular_vectors_2xn`; LAPACK's
        batched SVD of 10⁵ 2×2 matrices costs more than a whole τ = 10 cycle); otherwise
        ``torch.linalg.svd``.
        """
        if d.shape[-2] == 2:
            return top_left_singular_vectors_2xn(d, rank, TORCH)
        return torch.linalg.svd(d, full_matrices=False)[0][..., :rank]

    @staticmethod
    def sqnorm(x):
        """Squared Frobenius norm over the last two axes."""
        return (x * x).sum(dim=(-2, -1))

    @staticmethod
    def maxabs(x):
        """Max |x_ij| over the last two axes."""
        return x.abs().amax(dim=(-2, -1))

    @staticmethod
    def col_sum(x, keep=True):
        """Sum over the row axis (-2): per-column sums, shape (..., 1, k)."""
        return x.sum(dim=-2, keepdim=keep)

    @staticmethod
    def expand_mask(mask, like):
        """Broadcast a batch mask of shape (...) to ``like``'s (..., a, b)."""
        return mask[..., None, None]

    @staticmethod
    def amin_last(x):
        """Minimum over the last axis."""
        return x.amin(dim=-1)

    @staticmethod
    def copy(x):
        return x.clone()

    @staticmethod
    def where(mask, a, b):
        return torch.where(mask, a, b)

    @staticmethod
    def zeros_like(x):
        return torch.zeros_like(x)

    @staticmethod
    def any(mask) -> bool:
        return bool(torch.any(mask))

    @staticmethod
    def asnumpy(x):
        """``x`` as a NumPy array (bfloat16, which NumPy lacks, as float32: exact)."""
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()

    @staticmethod
    def node_layout(x):
        """``x`` as it is (NumpyOps lays out per-node arrays for its loops; torch needs not)."""
        return x

    def from_numpy(self, a):
        """A NumPy array as a tensor on this ops' device."""
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @staticmethod
    def asarray(a, like):
        """``a`` (array, tensor or scalar) as a tensor of ``like``'s dtype and device."""
        return torch.as_tensor(a, dtype=like.dtype, device=like.device)

    @staticmethod
    def all_finite(x) -> bool:
        return bool(torch.isfinite(x).all())

    @staticmethod
    def stack(arrays):
        return torch.stack(arrays)

    @staticmethod
    def topk_mask(x, k):
        """The ``k`` entries of largest |x_ij| per matrix (ties to the lower row-major index)."""
        flat = x.abs().reshape(x.shape[:-2] + (-1,))
        order = torch.sort(-flat, dim=-1, stable=True).indices[..., :k]
        mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, order, True)
        return mask.reshape(x.shape)

    @staticmethod
    def sign(x):
        return torch.sign(x)

    @staticmethod
    def floor(x):
        return torch.floor(x)

    @staticmethod
    def abs(x):
        return torch.abs(x)

    @staticmethod
    def clip(x, low, high):
        return torch.clip(x, low, high)

    @staticmethod
    def einsum(subscripts, *operands):
        return torch.einsum(subscripts, *operands)

    @staticmethod
    def ones_like(x):
        return torch.ones_like(x)

    @staticmethod
    def eps(x) -> float:
        return float(torch.finfo(x.dtype).eps)

    @staticmethod
    def ignore_division_warnings():
        # torch does not warn on 0/0; the NaN is caught by the engine's finiteness check.
        return contextlib.nullcontext()


TORCH = TorchOps()
"""The CPU instance (:func:`simsgd.ops.array_ops` of a tensor; the oracles use only its
device-independent methods)."""


def top_left_singular_vectors_2x2(d):
    """Left singular vectors of 2×2 matrices in closed form: (..., 2, 2) -> (..., 2, 2)
    (:func:`simsgd.small_svd.top_left_singular_vectors_2xn`, the NumPy engine's too).
    """
    return top_left_singular_vectors_2xn(d, 2, TORCH)


def cholesky_qr2(p):
    """Thin QR of tall (..., m, r) by CholeskyQR2. Returns ``(Q, diag(R))``; a rank-deficient P
    (Cholesky fails) gives Q = 0 and a zero pivot there.
    """
    r_total = None
    q = p
    for _ in range(2):
        gram = q.mT @ q
        chol, info = torch.linalg.cholesky_ex(gram)
        bad = info != 0
        chol = torch.where(bad[..., None, None], torch.eye(p.shape[-1], dtype=p.dtype, device=p.device), chol)
        q = torch.linalg.solve_triangular(chol.mT, q, upper=True, left=False)
        q = torch.where(bad[..., None, None], 0, q)
        r = chol.mT
        r_total = r if r_total is None else r @ r_total
        r_total = torch.where(bad[..., None, None], 0, r_total)
    return q, torch.diagonal(r_total, dim1=-2, dim2=-1)
