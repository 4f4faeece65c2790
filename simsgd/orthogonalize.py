"""QR(·) of Algorithm 1: orthogonalisation of the averaged P, and what to do when P
is rank-deficient.

Theorem 1's proof assumes ``P_t ≠ 0``; in the 2×2 ψ example with an even number of
nodes ``P_t = 0`` exactly with probability C(N, N/2)/2^N per step. QR(0) has no
answer, so the convention is an explicit choice (``degenerate_qr``):

``"previous"``
    keep the previous basis P̃_{t-1} (the reading under which Theorem 1's lock
    holds); at the very first step, where none exists, the orthogonaliser's answer
    is used.
``"native"``
    whatever the orthogonaliser returns: LAPACK's Householder QR gives unit basis
    vectors; Gram–Schmidt with ε > 0 gives zero columns and with ε = 0 gives NaN,
    as PyTorch's hook does (the engine then stops with an error naming the step).
``"zero"``
    P̃ = 0: nothing is transmitted and the whole Δ goes to the error.
``"raise"``
    raise :class:`DegenerateQRError`.

P (..., m, r) counts as degenerate when min_j |R_jj| ≤ max(m, r)·eps·√(mr)·max|P_ij|
(for Gram–Schmidt: a column's norm after projection), i.e. numerically rank < r;
√(mr)·max|P_ij| ≥ ||P||_F stands in for the norm so that huge inputs cannot overflow.
"""

from __future__ import annotations

from .ops import NUMPY
from .options import DEGENERATE_QR, ORTHOGONALIZATIONS

__all__ = ["ORTHOGONALIZATIONS", "DEGENERATE_QR", "DegenerateQRError", "orthogonalize"]


class DegenerateQRError(ArithmeticError):
    """Raised under ``degenerate_qr="raise"`` when P is numerically rank-deficient."""


def _householder(p, ops):
    if p.shape[-1] == 1 and p.shape[-2] > 1:  # m = 1 has no tail p₂..p_m: LAPACK's Q = [1]
        return _householder_rank1(p, ops)
    return _lapack(p, ops)


def _lapack(p, ops):
    q, r_diag = ops.qr(p)
    return q, ops.amin_last(abs(r_diag))


def _householder_rank1(p, ops):
    """LAPACK's ``dlarfg`` answer for one column, without a LAPACK call per matrix.

    Q = p / β with β = −sign(p₁)·||p|| (sign(0) = +1), and Q = e₁ when p₂..p_m are all
    zero (then H = I). Computed on p / max|p| so that huge or tiny scales neither
    overflow nor underflow. Returns (Q, |R₁₁|).
    """
    scale = ops.maxabs(p)[..., None, None]
    unit = p / ops.where(scale == 0, 1, scale)
    norm = ops.col_sum(unit * unit) ** 0.5
    beta = ops.where(p[..., :1, :] >= 0, -norm, norm)
    e1 = ops.zeros_like(p)
    e1[..., 0, :] = 1
    tail_zero = ops.expand_mask(ops.maxabs(p[..., 1:, :]) == 0, p)
    with ops.ignore_division_warnings():
        q = ops.where(tail_zero, e1, unit / beta)
    return q, (norm * scale)[..., 0, 0]


def _gram_schmidt(p, epsilon, ops):
    """PyTorch ``powerSGD_hook._orthogonalize_gram_schmidt``, vectorised over batch axes."""
    p = ops.copy(p)
    smallest = None
    with ops.ignore_division_warnings():
        for i in range(p.shape[-1]):
            col = p[..., i : i + 1]
            norm = ops.col_sum(col * col) ** 0.5
            smallest = (
                norm[..., 0, 0]
                if smallest is None
                else ops.where(norm[..., 0, 0] < smallest, norm[..., 0, 0], smallest)
            )
            col /= norm + epsilon
            if i + 1 < p.shape[-1]:
                rest = p[..., i + 1 :]
                rest -= ops.col_sum(col * rest) * col
    return p, smallest


def orthogonalize(
    p, *, method="householder", epsilon=0.0, previous=None, degenerate_qr="previous", ops=NUMPY
):
    """Orthonormal basis P̃ of the column space of ``p`` with the degenerate-case convention.

    Parameters
    ----------
    p : array, shape (..., m, r)
        The node-averaged P = (1/N) Σ_i Δ^{(i)} Q.
    method : {"householder", "lapack", "gram-schmidt"}
        ``"householder"``: LAPACK's Householder QR, computed in closed form for r = 1
        (Q = P/β, which keeps equal entries of P exactly equal); ``"lapack"``: always
        ``geqrf``/``orgqr`` (the same numbers up to the last bit); ``"gram-schmidt"``:
        PyTorch's hook.
    epsilon : float
        Gram–Schmidt only: columns are divided by ``norm + epsilon`` (PyTorch's
        ``orthogonalization_epsilon``).
    previous : array, shape (..., m, r), or None
        P̃_{t-1}, used by ``degenerate_qr="previous"``.
    degenerate_qr : {"previous", "native", "zero", "raise"}
        See the module docstring.

    Returns
    -------
    p_tilde : array, shape (..., m, r)
    degenerate : bool array, shape (...)
        Where P was numerically rank-deficient (the convention was applied).
    """
    m, r = p.shape[-2], p.shape[-1]
    scale = ops.maxabs(p) * (m * r) ** 0.5  # ≥ ||P||_F, and cannot overflow
    if method == "householder":
        p_tilde, pivot = _householder(p, ops)
    elif method == "lapack":
        p_tilde, pivot = _lapack(p, ops)
    elif method == "gram-schmidt":
        p_tilde, pivot = _gram_schmidt(p, epsilon, ops)
    else:
        raise ValueError(f"orthogonalization must be one of {ORTHOGONALIZATIONS}; got {method!r}")
    degenerate = pivot <= max(m, r) * ops.eps(p) * scale
    if degenerate_qr == "native" or not ops.any(degenerate):
        return p_tilde, degenerate
    if degenerate_qr == "raise":
        raise DegenerateQRError(
            f"P is numerically rank-deficient (rank < r = {r}) in {int(degenerate.sum())} "
            "replica(s); choose degenerate_qr='previous', 'native' or 'zero' to continue"
        )
    if degenerate_qr == "zero":
        replacement = ops.zeros_like(p_tilde)
    elif degenerate_qr == "previous":
        if previous is None:
            return p_tilde, degenerate
        replacement = previous
    else:
        raise ValueError(f"degenerate_qr must be one of {DEGENERATE_QR}; got {degenerate_qr!r}")
    return ops.where(ops.expand_mask(degenerate, p_tilde), replacement, p_tilde), degenerate
