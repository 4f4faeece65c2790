"""Property tests of Lemma 1 (SSP compressor) and Lemma 2 (SVD compressor), Appendix B.

Lemma 1: with C(Δ) = P̃P̃ᵀΔ, ‖C(Δ)‖² ≤ ‖Δ‖², ‖C(Δ) − Δ‖² ≤ ‖Δ‖², the Pythagorean identity
(4) ‖C(Δ)‖² + ‖C(Δ) − Δ‖² = ‖Δ‖², and linearity mean_i C(Δ^{(i)}) = C(mean_i Δ^{(i)}).
Lemma 2: ‖C_SVD(Δ) − Δ‖² ≤ (1 − r/min(m, n))‖Δ‖².

Tolerances (floating-point error analysis, unit roundoff u = 2⁻⁵³). Every computed
quantity is a product of at most three factors with inner products of length ≤ m, n or N,
so each entry carries a relative error ≤ γ_k = ku/(1 − ku) with k ≤ m + n + N; Householder
QR and LAPACK's SVD return bases with ‖P̃ᵀP̃ − I‖ ≤ c·m·r·u (Higham, Accuracy and Stability,
Thm 19.4). Squaring a norm doubles a relative error. Rounding errors scale with the inputs
Δ^{(i)}, not with their mean (which may cancel), so every tolerance is relative to
S = mean_i ‖Δ^{(i)}‖²:  tol = 8·(m·r + m + n + N)·(u·S + η), a few hundred u·S here, with
η = 2⁻¹⁰⁷⁴ (≥ the absolute error of a result in the subnormal range, 2⁻¹⁰⁷⁵) (Higham's model with
underflow; tiny inputs whose node mean cancels land there) — far below the
violations found below (≥ 0.2·‖Δ‖²). Modified Gram–Schmidt loses orthogonality in
proportion to κ₂(P) (Björck 1967: ‖I − P̃ᵀP̃‖ ≤ c·u·κ₂(P)), so for it the tolerance is
multiplied by κ₂(P) and the property is asserted only where κ₂(P)·u ≤ 1e-8.

Scales 10^{±150}: the squared entries must stay within float64's normal range, since
norms are formed from squares (Gram–Schmidt squares entries without LAPACK's scaling).

Findings (asserted, not skipped):
- Gram–Schmidt with ε > 0 (PyTorch's ``orthogonalization_epsilon``) divides columns by
  ‖w‖ + ε, so P̃ is not semi-orthogonal: (4) fails for every input, and on nearly dependent
  columns ‖C(Δ)‖² exceeds ‖Δ‖² by up to a factor r (1.95 with ε = 1e-8 in a 2×2 example).
- Gram–Schmidt with ε = 0 (PyTorch's default) loses orthogonality on ill-conditioned P
  before the degeneracy test (min pivot ≤ max(m, r)·u·‖P‖_F) fires: ‖C(Δ)‖² = 1.21‖Δ‖² for
  Δ = I₂, Q = [[1, 1], [0.6, 0.6 + 1e-15]]. Householder QR satisfies Lemma 1 on the same inputs.
- Gram–Schmidt forms norms from unscaled squares: for ‖P‖ below ~1e-154 the squares are
  subnormal and the "unit" columns are off by far more than u (‖p̃‖ − 1 = 8e-9 at
  P = 1e-158, 6e-6 at 3e-160), so Lemma 1 holds there only to that accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from simsgd import DegenerateQRError
from simsgd.compressors import ssp_step, svd_step

U = np.finfo(np.float64).eps / 2
ETA = 2.0**-1074  # underflow: fl(x op y) = (x op y)(1 + δ) + η, |δ| ≤ u, |η| ≤ 2^-1075 < ETA
KINDS = ("random", "zero", "rank_deficient", "equal_singular_values", "cancelling")


def sq(x):
    return float(np.sum(np.square(x)))


def make_deltas(seed, nodes, m, n, kind, log_scale):
    """Δ^{(1..N)} (N, m, n) of a given kind, scaled by 10^log_scale."""
    rng = np.random.default_rng(seed)
    if kind == "zero":
        return np.zeros((nodes, m, n))
    if kind == "rank_deficient":  # every node of rank ≤ 1, so P has rank ≤ 1 < r when r ≥ 2
        d = rng.standard_normal((nodes, m, 1)) * rng.standard_normal((1, 1, n))
    elif kind == "equal_singular_values":  # worst case of Lemma 2: all min(m, n) singular values equal
        k = min(m, n)
        a, _ = np.linalg.qr(rng.standard_normal((m, k)))
        b, _ = np.linalg.qr(rng.standard_normal((n, k)))
        d = np.broadcast_to(a @ b.T, (nodes, m, n))
    elif kind == "cancelling":  # nodes nearly cancel: the mean is small against each Δ^{(i)}
        d = rng.standard_normal((nodes, m, n))
        d = d - d.mean(axis=0) + 1e-6 * rng.standard_normal((1, m, n))
    else:
        d = rng.standard_normal((nodes, m, n))
    return np.array(d) * 10.0**log_scale


def tolerance(m, n, r, nodes, deltas):
    return 8 * (m * r + m + n + nodes) * (U * float(np.mean(np.sum(deltas**2, axis=(-2, -1)))) + ETA)


problems = st.fixed_dictionaries(
    dict(
        m=st.integers(1, 6),
        n=st.integers(1, 6),
        nodes=st.integers(1, 4),
        seed=st.integers(0, 2**32 - 1),
        kind=st.sampled_from(KINDS),
        log_scale=st.sampled_from([-150, -20, 0, 20, 150]),
        rank_fraction=st.floats(0, 1),
    )
)


def setup(p):
    m, n = p["m"], p["n"]
    r = 1 + int(p["rank_fraction"] * (min(m, n) - 1) + 0.5)
    deltas = make_deltas(p["seed"], p["nodes"], m, n, p["kind"], p["log_scale"])
    rng = np.random.default_rng(p["seed"] + 1)
    q = rng.standard_normal((n, r))
    previous, _ = np.linalg.qr(rng.standard_normal((m, r)))
    return m, n, r, deltas, q, previous


def lemma1_terms(out, deltas):
    delta = deltas.mean(axis=0)
    c = out.global_hat
    return sq(c), sq(c - delta), sq(delta), sq(out.local_hat.mean(axis=0) - c)


@pytest.mark.parametrize("orthogonalization", ["householder", "lapack"])
@pytest.mark.parametrize("degenerate_qr", ["previous", "native", "zero"])
@given(p=problems)
def test_lemma1_householder(p, degenerate_qr, orthogonalization):
    """Householder QR (own rank-1 path, or LAPACK always): all four statements of Lemma 1, on
    every kind of input, under every convention."""
    m, n, r, deltas, q, previous = setup(p)
    out = ssp_step(
        q, deltas, previous_basis=previous, degenerate_qr=degenerate_qr, orthogonalization=orthogonalization
    )
    c2, e2, d2, lin = lemma1_terms(out, deltas)
    tol = tolerance(m, n, r, p["nodes"], deltas)
    assert c2 <= d2 + tol
    assert e2 <= d2 + tol
    if degenerate_qr == "zero" and bool(out.degenerate):
        assert c2 == 0.0 and e2 == pytest.approx(d2, rel=1e-12, abs=tol)
    assert abs(c2 + e2 - d2) <= tol  # (4): P̃ semi-orthogonal under every convention
    assert lin <= tol  # mean_i C(Δ^{(i)}) = C(mean_i Δ^{(i)})


def kappa(q, deltas):
    s = np.linalg.svd(deltas.mean(axis=0) @ q, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else np.inf


def squares_normal(q, deltas):
    """Gram–Schmidt squares unscaled entries: its norms are accurate only while σ_min(P)² is a
    normal number (see the finding at the end); 1e-150 leaves room for m ≤ 6 terms."""
    return float(np.linalg.svd(deltas.mean(axis=0) @ q, compute_uv=False)[-1]) >= 1e-150


@pytest.mark.parametrize("degenerate_qr", ["previous", "native", "zero"])
@given(p=problems)
def test_lemma1_gram_schmidt_exact(p, degenerate_qr):
    """Gram–Schmidt, ε = 0: Lemma 1 within u·κ₂(P) where κ₂(P)·u ≤ 1e-8; a zero P is flagged."""
    m, n, r, deltas, q, previous = setup(p)
    out = ssp_step(
        q, deltas, previous_basis=previous, orthogonalization="gram-schmidt", degenerate_qr=degenerate_qr
    )
    if p["kind"] == "zero":
        assert bool(out.degenerate)
        if degenerate_qr == "native":  # PyTorch's 0/0: the engine stops on it
            assert np.isnan(out.basis).all()
            return
    k = kappa(q, deltas)
    assume(p["kind"] == "zero" or (k * U <= 1e-8 and squares_normal(q, deltas)))
    c2, e2, d2, lin = lemma1_terms(out, deltas)
    tol = tolerance(m, n, r, p["nodes"], deltas) * (1.0 if p["kind"] == "zero" else k)
    assert not bool(out.degenerate) or p["kind"] == "zero"
    assert c2 <= d2 + tol
    assert e2 <= d2 + tol
    assert abs(c2 + e2 - d2) <= tol
    assert lin <= tol


@pytest.mark.parametrize("degenerate_qr", ["previous", "native", "zero"])
@given(p=problems, epsilon=st.sampled_from([1e-8, 1e-3, 1.0]))
def test_lemma1_gram_schmidt_epsilon(p, degenerate_qr, epsilon):
    """Gram–Schmidt, ε > 0: columns have norm ‖w‖/(‖w‖+ε) < 1, so what holds is

    - r = 1: P̃P̃ᵀ = c²uuᵀ with c < 1, so both inequalities hold and (4) misses by exactly
      2c²(1 − c²)‖uuᵀΔ‖² ≥ 0;
    - any r: ‖P̃‖₂² ≤ Σ_j ‖p̃_j‖² ≤ r, so ‖C(Δ)‖² ≤ r²‖Δ‖² only (see the finding below), and
      linearity, which needs no orthogonality.
    """
    m, n, r, deltas, q, previous = setup(p)
    assume(p["kind"] == "zero" or squares_normal(q, deltas))
    out = ssp_step(
        q,
        deltas,
        previous_basis=previous,
        orthogonalization="gram-schmidt",
        orthogonalization_epsilon=epsilon,
        degenerate_qr=degenerate_qr,
    )
    c2, e2, d2, lin = lemma1_terms(out, deltas)
    tol = tolerance(m, n, r, p["nodes"], deltas)
    assert lin <= tol
    norms = np.sqrt(np.sum(out.basis**2, axis=0))
    assert np.all(norms <= 1 + 4 * m * U)
    assert c2 <= r**2 * (d2 + tol)
    if r == 1 and not bool(out.degenerate):
        delta = deltas.mean(axis=0)
        c_sq = float(norms[0] ** 2)
        unit = out.basis / norms[0] if norms[0] > 0 else out.basis
        along = sq(unit @ (unit.T @ delta))
        assert c2 <= d2 + tol
        assert e2 <= d2 + tol
        assert d2 - c2 - e2 == pytest.approx(2 * c_sq * (1 - c_sq) * along, rel=1e-6, abs=tol)


@pytest.mark.parametrize(
    "orthogonalization, epsilon",
    [("householder", 0.0), ("lapack", 0.0), ("gram-schmidt", 0.0), ("gram-schmidt", 1e-8)],
)
@given(p=problems)
def test_degenerate_qr_raise(p, orthogonalization, epsilon):
    """``degenerate_qr="raise"`` raises exactly where the other conventions report degeneracy."""
    m, n, r, deltas, q, previous = setup(p)
    kw = dict(orthogonalization=orthogonalization, orthogonalization_epsilon=epsilon)
    flagged = bool(ssp_step(q, deltas, degenerate_qr="native", **kw).degenerate)
    if flagged:
        with pytest.raises(DegenerateQRError):
            ssp_step(q, deltas, degenerate_qr="raise", **kw)
    else:
        a = ssp_step(q, deltas, degenerate_qr="raise", **kw).global_hat
        b = ssp_step(q, deltas, degenerate_qr="native", **kw).global_hat
        np.testing.assert_array_equal(a, b)


@given(p=problems)
def test_lemma2_svd(p):
    """Lemma 2 with δ = r/min(m, n) (m < n included), and optimality: the error is Σ_{i>r} σ_i²."""
    m, n, r, deltas, _, _ = setup(p)
    out = svd_step(deltas, r)
    delta = deltas.mean(axis=0)
    tol = tolerance(m, n, r, p["nodes"], deltas)
    e2, d2 = sq(out.global_hat - delta), sq(delta)
    assert e2 <= (1 - r / min(m, n)) * d2 + tol
    tail = float(np.sum(np.linalg.svd(delta, compute_uv=False)[r:] ** 2))
    assert abs(e2 - tail) <= tol
    assert sq(out.local_hat.mean(axis=0) - out.global_hat) <= tol


def test_lemma2_is_tight_for_equal_singular_values():
    """Equality in Lemma 2 when all singular values are equal (so the bound cannot be improved)."""
    deltas = make_deltas(3, 2, 3, 5, "equal_singular_values", 0)
    out = svd_step(deltas, 2)
    delta = deltas.mean(axis=0)
    assert sq(out.global_hat - delta) == pytest.approx((1 - 2 / 3) * sq(delta), rel=1e-12)


# ---- findings: options of simsgd.orthogonalize under which Lemma 1 fails -----------------------------


def test_finding_gram_schmidt_epsilon_violates_lemma1():
    """PyTorch-style ε = 1e-8 on nearly dependent columns: ‖C(Δ)‖² = 1.95‖Δ‖² > ‖Δ‖² (Lemma 1 fails).

    Δ = diag(1, 1e-8) on one node, Q_{t-1} = [[1, 1], [0, 1]], so P = [[1, 1], [0, 1e-8]]. The
    second column's residual (1e-8) is comparable to ε, so it is divided by 2e-8 instead of
    1e-8, while the first column keeps a component (1 − c₁²) along it: P̃ has two unit-ish,
    non-orthogonal columns. The degeneracy test does not fire (the pivot 1e-8 ≫ 2·u·‖P‖).
    """
    deltas = np.array([[[1.0, 0.0], [0.0, 1e-8]]])
    q = np.array([[1.0, 1.0], [0.0, 1.0]])
    out = ssp_step(
        q, deltas, orthogonalization="gram-schmidt", orthogonalization_epsilon=1e-8, degenerate_qr="raise"
    )
    assert not bool(out.degenerate)
    c2, e2, d2, _ = lemma1_terms(out, deltas)
    assert c2 > 1.9 * d2  # first inequality of Lemma 1 violated
    assert abs(c2 + e2 - d2) > 0.9 * d2  # (4) violated
    ok = ssp_step(q, deltas, orthogonalization="householder", degenerate_qr="raise")
    c2h, e2h, d2h, _ = lemma1_terms(ok, deltas)
    assert c2h <= d2h * (1 + 1e-14) and abs(c2h + e2h - d2h) <= 1e-14 * d2h


def test_finding_gram_schmidt_loses_orthogonality_before_degeneracy_test():
    """ε = 0 (PyTorch's default): ‖C(Δ)‖² = 1.21‖Δ‖² for Δ = I₂, Q = [[1, 1], [0.6, 0.6 + 1e-15]].

    κ₂(P) ≈ 1e15, yet the smallest Gram–Schmidt pivot (≈ 1e-15·‖P‖) is just above the
    threshold relative to P's own size, max(m, r)·u·‖P‖_F, so that reading misses it and the
    non-orthogonal basis would be used. The test relative to P's inputs (n² times larger)
    flags it. Householder QR on the same P stays orthonormal to working precision.
    """
    deltas = np.eye(2)[None]
    q = np.array([[1.0, 1.0], [0.6, 0.6 + 1e-15]])
    out = ssp_step(q, deltas, orthogonalization="gram-schmidt", degenerate_qr="native")
    assert bool(out.degenerate) and not bool(out.degenerate_own_scale)
    c2, _, d2, _ = lemma1_terms(out, deltas)
    assert c2 > 1.2 * d2  # what "native" (and the own-scale reading) lets through
    with pytest.raises(DegenerateQRError):
        ssp_step(q, deltas, orthogonalization="gram-schmidt", degenerate_qr="raise")
    ok = ssp_step(q, deltas, orthogonalization="householder", degenerate_qr="previous")
    c2h, e2h, d2h, _ = lemma1_terms(ok, deltas)
    assert c2h <= d2h * (1 + 1e-14) and abs(c2h + e2h - d2h) <= 1e-14 * d2h


def test_finding_gram_schmidt_underflows_on_tiny_inputs():
    """P = 1e-158 (1×1): Gram–Schmidt's column has norm 1 + 8e-9, so ‖C(Δ)‖² > (1 + 1e-8)‖Δ‖²;
    Householder (which scales by max|p| first) returns exactly 1."""
    deltas, q = np.array([[[1e-158]]]), np.array([[1.0]])
    out = ssp_step(q, deltas, orthogonalization="gram-schmidt", degenerate_qr="raise")
    c2, _, d2, _ = lemma1_terms(out, deltas)
    assert c2 > (1 + 1e-8) * d2
    assert ssp_step(q, deltas, degenerate_qr="raise").basis.item() == 1.0
