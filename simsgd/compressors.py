"""Algorithm 1: the rank-r SSP and SVD compressors, for N nodes at once.

Arrays carry the node axis explicitly: ``deltas`` is (..., N, m, n), with any leading
replica axes. A node average is ``ops.node_mean`` (a mean over axis -3 here, an
``all_reduce`` in the torch backend).
"""

from __future__ import annotations

from typing import NamedTuple

from .backend import NUMPY
from .orthogonalize import orthogonalize

__all__ = ["Compressed", "ssp_compress", "svd_compress", "ssp_step", "svd_step", "project"]


class Compressed(NamedTuple):
    """Result of one call of Algorithm 1.

    Attributes
    ----------
    q : (..., n, r)
        Q_t = (1/N) Σ_i Q^{(i)}, the basis carried to the next SSP step.
    local_hat : (..., N, m, n) or None
        Δ̂^{(i)} = P̃ (Q^{(i)})ᵀ (None when not asked for).
    global_hat : (..., m, n)
        Δ̂ = P̃ Qᵀ = P̃ P̃ᵀ Δ.
    basis : (..., m, r)
        P̃_t.
    degenerate : bool array (...) or None
        Where QR(P) met a rank-deficient P (SSP only).
    """

    q: object
    local_hat: object
    global_hat: object
    basis: object
    degenerate: object


def project(basis, deltas, *, want_local=True, ops=NUMPY):
    """Second half of both compressors: Q^{(i)} = (Δ^{(i)})ᵀ P̃, Q = mean_i Q^{(i)}."""
    q_local = deltas.mT @ basis[..., None, :, :]          # (..., N, n, r)
    q = ops.node_mean(q_local)                             # (..., n, r)  all-reduce mean
    local_hat = basis[..., None, :, :] @ q_local.mT if want_local else None
    return q, local_hat, basis @ q.mT


def ssp_step(q, deltas, *, previous_basis=None, orthogonalization="householder",
             orthogonalization_epsilon=0.0, degenerate_qr="previous", want_local=True, ops=NUMPY):
    """SSP-COMP(Q, Δ^{(1..N)}) with its diagnostics; see :func:`ssp_compress`."""
    p = ops.node_mean(deltas @ q[..., None, :, :])         # P = mean_i Δ^{(i)} Q, all-reduce mean
    basis, degenerate = orthogonalize(
        p, method=orthogonalization, epsilon=orthogonalization_epsilon,
        previous=previous_basis, degenerate_qr=degenerate_qr, ops=ops)
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, degenerate)


def svd_step(deltas, rank, *, want_local=True, ops=NUMPY):
    """SVD-COMP(Δ^{(1..N)}) with its diagnostics; see :func:`svd_compress`."""
    basis = ops.top_left_singular_vectors(ops.node_mean(deltas), rank)   # all-reduce of full Δ
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, None)


def ssp_compress(q, deltas, **options):
    """SSP-COMP of Algorithm 1: one step of power iteration on the node average.

    Parameters
    ----------
    q : array, shape (..., n, r)
        Previous basis Q_{t-1}.
    deltas : array, shape (..., N, m, n)
        Δ^{(i)} of every node.
    **options
        ``orthogonalization`` ("householder" | "gram-schmidt"),
        ``orthogonalization_epsilon``, ``degenerate_qr`` and ``previous_basis``, as in
        :func:`simsgd.orthogonalize.orthogonalize`.

    Returns
    -------
    q : (..., n, r)
        Q_t.
    local_hat : (..., N, m, n)
        Δ̂^{(i)} = P̃ (Q^{(i)})ᵀ.
    global_hat : (..., m, n)
        Δ̂ = P̃ Q_tᵀ.
    """
    out = ssp_step(q, deltas, **options)
    return out.q, out.local_hat, out.global_hat


def svd_compress(deltas, rank):
    """SVD-COMP of Algorithm 1: the optimal rank-r compressor of the node average.

    Parameters
    ----------
    deltas : array, shape (..., N, m, n)
    rank : int, 1 ≤ rank ≤ min(m, n)

    Returns
    -------
    q, local_hat, global_hat
        As :func:`ssp_compress`, with P̃ = the first ``rank`` left singular vectors of
        (1/N) Σ_i Δ^{(i)}.
    """
    out = svd_step(deltas, rank)
    return out.q, out.local_hat, out.global_hat
