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

P (..., m, r) counts as degenerate when a pivot |R_jj| (for Gram–Schmidt: a column's norm
after projection) is at most max(m, r)·eps·S, i.e. numerically rank < r. Two scales S are
read (:class:`Orthogonalized`):

* **relative to the inputs** (decides, when ``input_scale`` is given): S = ``input_scale``,
  which :func:`simsgd.compressors.ssp_step` sets to n²·√(mr)·mean_i max|Δ^{(i)}|·max|Q|: a
  bound on ||P||_F from what P was made of, times n, the length of the sums whose
  rounding error it must cover. A P that is rounding noise (~1e-17 where exact arithmetic
  gives 0, e.g. a balanced step Σ ξ_i = 0 of the ψ example in the paper's basis) is flagged;
  so is (S = ∞) a P made from a Q that was itself rounding noise (the step after a balanced
  one; ``Compressed.q_negligible``).
* **relative to P itself** (the second reading, and the test when no input scale is given):
  S = √(mr)·max|P_ij| ≥ ||P||_F (max|P| rather than the norm, so huge inputs cannot
  overflow). It cannot see a P that is all rounding noise, since that P is not small
  relative to itself.

For r > 1, ``"previous"`` keeps what P holds: P̃ spans P's numerical column space (its
singular vectors above the threshold) and only the missing directions are taken from
P̃_{t−1} (its part outside that space), so good columns are never discarded; where
P̃_{t−1} has too few such directions the basis is completed (LAPACK's SVD's choice). For
r = 1 this is P̃_{t−1} itself.
"""

from __future__ import annotations

from typing import NamedTuple

from .ops import NUMPY
from .options import DEGENERATE_QR, ORTHOGONALIZATIONS

__all__ = [
    "ORTHOGONALIZATIONS",
    "DEGENERATE_QR",
    "DegenerateQRError",
    "Orthogonalized",
    "orthogonalize",
    "orthogonalize_checked",
]


class DegenerateQRError(ArithmeticError):
    """Raised under ``degenerate_qr="raise"`` when P is numerically rank-deficient."""


def _householder(p, ops):
    if p.shape[-1] == 1 and p.shape[-2] > 1:  # m = 1 has no tail p₂..p_m: LAPACK's Q = [1]
        return _householder_rank1(p, ops)
    return _lapack(p, ops)


def _lapack(p, ops):
    q, r_diag = ops.qr(p)
    return q, abs(r_diag)


def _householder_rank1(p, ops):
    """LAPACK's ``dlarfg`` answer for one column, without a LAPACK call per matrix.

    Q = p / β with β = −sign(p₁)·||p|| (sign(0) = +1), and Q = e₁ when p₂..p_m are all
    zero (then H = I). Computed on p / max|p| so that huge or tiny scales neither
    overflow nor underflow. Returns (Q, |R₁₁| of shape (..., 1)).
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
    return q, (norm * scale)[..., 0, :]


def _gram_schmidt(p, epsilon, ops):
    """PyTorch ``powerSGD_hook._orthogonalize_gram_schmidt``, vectorised over batch axes.

    Returns (P̃, the column norms after projection (..., r)).
    """
    p = ops.copy(p)
    pivots = ops.zeros_like(p[..., 0, :])
    with ops.ignore_division_warnings():
        for i in range(p.shape[-1]):
            col = p[..., i : i + 1]
            norm = ops.col_sum(col * col) ** 0.5
            pivots[..., i] = ops.where(norm == norm, norm, 0)[..., 0, 0]  # NaN after a 0/0: deficient
            col /= norm + epsilon
            if i + 1 < p.shape[-1]:
                rest = p[..., i + 1 :]
                rest -= ops.col_sum(col * rest) * col
    return p, pivots


class Orthogonalized(NamedTuple):
    """P̃ and both degeneracy readings (bool arrays of shape (...)).

    ``degenerate`` is the one that decided (relative to the inputs when an input scale
    was given), ``degenerate_own_scale`` the reading relative to P's own size.
    """

    basis: object
    degenerate: object
    degenerate_own_scale: object


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
        Where P was numerically rank-deficient relative to its own size (the convention
        was applied). :func:`orthogonalize_checked` also takes the inputs' scale.
    """
    out = orthogonalize_checked(
        p, method=method, epsilon=epsilon, previous=previous, degenerate_qr=degenerate_qr, ops=ops
    )
    return out.basis, out.degenerate


def orthogonalize_checked(
    p,
    *,
    method="householder",
    epsilon=0.0,
    previous=None,
    degenerate_qr="previous",
    input_scale=None,
    ops=NUMPY,
) -> Orthogonalized:
    """:func:`orthogonalize` with the degeneracy test relative to P's inputs.

    Parameters
    ----------
    p, method, epsilon, previous, degenerate_qr, ops
        As :func:`orthogonalize`.
    input_scale : array, shape (...), or None
        S of the module docstring (≥ ||P||_F, from P's inputs); None: P's own scale decides.

    Returns
    -------
    Orthogonalized
    """
    m, r = p.shape[-2], p.shape[-1]
    tol = max(m, r) * ops.eps(p)
    own_scale = ops.maxabs(p) * (m * r) ** 0.5  # ≥ ||P||_F, and cannot overflow
    if method == "householder":
        p_tilde, pivots = _householder(p, ops)
    elif method == "lapack":
        p_tilde, pivots = _lapack(p, ops)
    elif method == "gram-schmidt":
        p_tilde, pivots = _gram_schmidt(p, epsilon, ops)
    else:
        raise ValueError(f"orthogonalization must be one of {ORTHOGONALIZATIONS}; got {method!r}")
    own = ops.amin_last(pivots) <= tol * own_scale
    scale = own_scale if input_scale is None else input_scale
    degenerate = ops.amin_last(pivots) <= tol * scale
    out = Orthogonalized(p_tilde, degenerate, own)
    if degenerate_qr == "native" or not ops.any(degenerate):
        return out
    if degenerate_qr == "raise":
        raise DegenerateQRError(
            f"P is numerically rank-deficient (rank < r = {r}) in {int(degenerate.sum())} "
            "replica(s); choose degenerate_qr='previous', 'native' or 'zero' to continue"
        )
    if degenerate_qr == "zero":
        replacement = ops.zeros_like(p_tilde)
    elif degenerate_qr == "previous":
        if previous is None:
            return out
        replacement = previous if r == 1 else _complete(p, previous, tol * scale, ops)
    else:
        raise ValueError(f"degenerate_qr must be one of {DEGENERATE_QR}; got {degenerate_qr!r}")
    return out._replace(basis=ops.where(ops.expand_mask(degenerate, p_tilde), replacement, p_tilde))


def _complete(p, previous, threshold, ops):
    """P̃ for a rank-deficient P (r > 1): P's numerical column space, completed from P̃_{t−1}.

    The left singular vectors of P whose singular value exceeds ``threshold`` (...) span
    what P holds (U_g); the rest is filled with the directions of P̃_{t−1} outside span(U_g)
    (F = (I − U_gU_gᵀ)P̃_{t−1}), strongest first: the top-r eigenvectors of
    4·U_gU_gᵀ + FFᵀ, where U_g's eigenvalue 4 beats F's ≤ 1. Where F has too few
    directions, the SVD completes the basis.
    """
    u, s = ops.svd(p)
    u_good = ops.where((s > threshold[..., None])[..., None, :], u, 0)
    fill = previous - ops.matmul(u_good, ops.matmul(u_good.mT, previous))
    target = 4 * ops.matmul(u_good, u_good.mT) + ops.matmul(fill, fill.mT)
    return ops.top_left_singular_vectors(target, p.shape[-1])
