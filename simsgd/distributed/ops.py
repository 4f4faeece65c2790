"""The array operations of Algorithm 2 on torch tensors, averaging nodes with ``all_reduce``.

:class:`TorchOps` has the methods of :class:`simsgd.backend.NumpyOps`, so
:func:`simsgd.algorithm.step` runs unchanged on it. Each process holds one node: arrays
keep the node axis at -3 with length 1, and ``node_mean`` sums it away and all-reduces
the sum over the process group, divided by the world size.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist

from ..backend import NumpyOps

__all__ = ["TorchOps"]


class TorchOps:
    """Algorithm 2's array operations for the node held by this process.

    Parameters
    ----------
    group : ProcessGroup, optional
        The nodes to average over (default: the world).

    Notes
    -----
    The SVD of a restart step has a sign per singular vector that is up to the LAPACK
    in use (NumPy's OpenBLAS and torch's MKL pick opposite signs for some columns). On
    CPU tensors :meth:`top_left_singular_vectors` therefore calls NumPy's LAPACK, so
    that Q_t is the simulator's bit for bit; on CUDA it calls ``torch.linalg.svd`` and
    Q_t may differ from the simulator's by column signs (X_t and Δ̂_t do not depend on
    them: P̃ → −P̃ gives Q → −Q and the same P̃ Qᵀ exactly).
    """

    name = "torch"

    def __init__(self, group=None):
        self.group = group
        self.world_size = dist.get_world_size(group)

    def node_mean(self, x):
        """(1/N) Σ_i x^{(i)}: ``(..., 1, a, b) -> (..., a, b)``, an all-reduce of the local sum."""
        total = x.sum(dim=-3)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.group)
        return total / self.world_size

    matmul = staticmethod(NumpyOps.matmul)   # generic: slicing, broadcasting and ``@`` only

    @staticmethod
    def qr(p):
        """Householder QR (LAPACK ``geqrf``/``orgqr``). Returns ``(Q, diag(R))``."""
        q, r = torch.linalg.qr(p)
        return q, torch.diagonal(r, dim1=-2, dim2=-1)

    @staticmethod
    def top_left_singular_vectors(d, rank):
        """First ``rank`` left singular vectors of ``d`` (..., m, n) -> (..., m, rank)."""
        if d.device.type == "cpu":
            return torch.from_numpy(NumpyOps.top_left_singular_vectors(d.numpy(), rank).copy())
        return torch.linalg.svd(d, full_matrices=False)[0][..., :rank]

    @staticmethod
    def sqnorm(x):
        """Squared Frobenius norm over the last two axes."""
        return (x * x).sum(dim=(-2, -1))

    @staticmethod
    def maxabs(x):
        """max |x_ij| over the last two axes."""
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
        return x.detach().cpu().numpy()

    @staticmethod
    def eps(x) -> float:
        return float(torch.finfo(x.dtype).eps)

    @staticmethod
    def ignore_division_warnings():
        # torch does not warn on 0/0; the NaN is caught by the runner's finiteness check.
        return contextlib.nullcontext()

