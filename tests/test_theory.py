"""simsgd.theory: the constants, cross-checked numerically, and the bound formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simsgd import theory
from simsgd.problems import HeterogeneousQuadratic, Psi2x2
from simsgd.streams import NodeStreams


def sampled_lipschitz(problem, rng, pairs=2000):
    """max ‖∇f(X) − ∇f(Y)‖ / ‖X − Y‖ over random pairs, and along the top direction."""
    m, n = problem.shape
    x = rng.standard_normal((pairs, m, n))
    y = x + rng.standard_normal((pairs, m, n)) * rng.uniform(1e-3, 1, (pairs, 1, 1))
    ratio = np.linalg.norm(problem.grad(x) - problem.grad(y), axis=(1, 2)) / np.linalg.norm(
        x - y, axis=(1, 2)
    )
    return float(ratio.max())


def noise_sq(problem, x, nodes, draws, seed=0):
    """‖∇F(X; ξ^{(i)}) − ∇f_i(X)‖² for ``draws`` replicas of every node at X: (draws, N)."""
    streams = NodeStreams(seed, np.arange(draws), np.arange(nodes))
    xs = np.broadcast_to(x, (draws,) + x.shape)
    grads = problem.stochastic_grads(xs, nodes, streams.at(0))
    local = problem.local_grad(xs) if hasattr(problem, "local_grad") else problem.grad(xs)[:, None]
    return np.sum((grads - local) ** 2, axis=(-2, -1))


@pytest.mark.parametrize("basis", ["paper", "aligned", "random"])
def test_psi_constants_analytic_and_sampled(basis):
    problem = Psi2x2(noise_scale=5.0, basis=basis)
    c = theory.constants(problem)
    assert (c.L, c.variance, c.omega_sq, c.G_sq, c.f_star) == (8.0, 116.0, 16.0, 132.0, 0.0)
    assert c.delta_f == pytest.approx(3.0, rel=1e-14)  # ψ(2) = 3; a random rotation rounds
    rng = np.random.default_rng(0)
    assert sampled_lipschitz(problem, rng) <= c.L * (1 + 1e-12)
    x = problem.x0 * 0.1  # |⟨A, X⟩| < 1: ψ is quadratic there
    step = 1e-3 * problem.A / np.linalg.norm(problem.A)  # the direction where L is attained
    ratio = np.linalg.norm(problem.grad(x + step) - problem.grad(x)) / np.linalg.norm(step)
    assert ratio == pytest.approx(c.L, rel=1e-9)
    xs = rng.standard_normal((5000, 2, 2)) * 3
    g2 = np.sum(problem.grad(xs) ** 2, axis=(1, 2))
    assert g2.max() <= c.omega_sq * (1 + 1e-12) and g2.max() == pytest.approx(c.omega_sq)


def test_psi_variance_is_attained_exactly_where_the_gradient_is_largest():
    """ξ² = 1, so ‖∇F − ∇f‖² = ‖σB − ∇f‖² = 4σ² + ‖∇f‖² at every draw: = variance where ‖∇f‖² = 16."""
    problem = Psi2x2(noise_scale=5.0)
    c = theory.constants(problem)
    np.testing.assert_allclose(noise_sq(problem, problem.x0, 3, 50), c.variance, rtol=1e-12)
    inside = noise_sq(problem, 0.1 * problem.x0, 3, 50)  # ‖∇f‖² = 4·0.2² · 4 < 16
    assert np.all(inside < c.variance)


def test_quadratic_constants_sampled():
    problem = HeterogeneousQuadratic(m=5, n=3, nodes=3, heterogeneity=0.7, noise=0.5, lowrank_noise=1.0)
    with pytest.raises(ValueError, match="omega_sq"):
        theory.constants(problem)
    c = theory.constants(problem, omega_sq=2.0)
    assert c.omega_sq_source == "visited" and c.G_sq == pytest.approx(c.variance + 2.0)
    rng = np.random.default_rng(1)
    assert sampled_lipschitz(problem, rng) <= c.L * (1 + 1e-12)
    w, v = np.linalg.eigh(problem.H)
    top = np.outer(v[:, -1], np.ones(3))
    assert np.linalg.norm(problem.grad(top) - problem.grad(0 * top)) / np.linalg.norm(top) == pytest.approx(
        c.L
    )
    assert np.linalg.norm(problem.grad(problem.x_star)) < 1e-10
    assert c.delta_f == pytest.approx(float(problem.loss(problem.x0)) - c.f_star)
    draws = noise_sq(problem, problem.x0, 3, 4000).ravel()  # 12000 draws of the noise
    se = draws.std(ddof=1) / math.sqrt(draws.size)
    assert abs(draws.mean() - c.variance) < 5 * se  # variance = (a² + b²)mn exactly


def test_visited_omega_sq_is_a_lower_confidence_bound():
    rng = np.random.default_rng(2)
    g = rng.exponential(size=(400, 6)) * np.arange(1, 7)  # E at column t is t + 1, max 6
    w = theory.visited_omega_sq(g)
    assert w <= 6.0 and w > 5.0


def test_delta_uses_the_smaller_dimension():
    assert theory.delta(2, (8, 4)) == 0.5 and theory.delta(2, (4, 8)) == 0.5
    with pytest.raises(ValueError, match="rank"):
        theory.delta(5, (4, 8))


def test_bound_formulas():
    assert theory.lemma3_bound(2, 3.0, 0.5) == pytest.approx(45 * 4 * 3 / 0.25)
    assert theory.lemma4_bound(2, 3.0, 0.5, 0.5) == pytest.approx(92 * 4 * 3 / (0.25 * 0.25))
    c = theory.constants(Psi2x2(noise_scale=1.0))
    t = theory.theorem4_terms(c, lr=0.01, momentum=0.5, restart_period=3, delta=0.5, nodes=4, steps=100)
    assert t.optimization == pytest.approx(4 * 0.5 * 3 / (0.01 * 100))
    assert t.noise == pytest.approx(2 * 8 * 0.01 * 20 / (0.5 * 4))
    assert t.compression == pytest.approx(548 * 64 * 1e-4 * 9 * 36 / (0.5**4 * 0.25))
    assert t.total == pytest.approx(t.optimization + t.noise + t.compression)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=0.0626, momentum=0.0), "lr"),  # η > (1 − μ)/(2L) = 1/16
        (dict(lr=0.01, momentum=0.9), "lr"),  # η > 0.1/16
        (dict(lr=0.001, momentum=1.0), "momentum"),
        (dict(lr=0.001, momentum=-0.1), "momentum"),
        (dict(lr=0.001, momentum=0.0, delta=0.0), "delta"),
        (dict(lr=0.001, momentum=0.0, restart_period=0), "restart_period"),
    ],
)
def test_theorem4_refuses_settings_outside_its_hypotheses(kwargs, name):
    c = theory.constants(Psi2x2())
    args = dict(restart_period=1, delta=0.5, nodes=1, steps=10) | kwargs
    with pytest.raises(ValueError, match=name):
        theory.theorem4_terms(c, **args)


def test_lemma_bounds_refuse_bad_parameters():
    with pytest.raises(ValueError, match="momentum"):
        theory.lemma4_bound(1, 1.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="delta"):
        theory.lemma3_bound(1, 1.0, 1.5)


@given(
    mu=st.floats(0, 0.99),
    tau=st.integers(1, 100),
    r=st.integers(1, 4),
    nodes=st.integers(1, 64),
    steps=st.integers(1, 10**7),
    noise=st.floats(0.1, 10),
)
def test_corollary1_step_size_and_rate(mu, tau, r, nodes, steps, noise):
    """Corollary 1's η obeys Theorem 4's hypothesis, and Theorem 4 at that η is ≤ Corollary 1's rate."""
    c = theory.constants(Psi2x2(noise_scale=noise))
    d = theory.delta(min(r, 2), (2, 2))
    kw = dict(momentum=mu, restart_period=tau, delta=d, nodes=nodes, steps=steps)
    eta = theory.corollary1_lr(c, **kw)
    assert eta <= (1 - mu) / (2 * c.L)
    rhs = theory.theorem4_terms(c, lr=eta, **kw)
    rate = theory.corollary1_rate(c, **kw)
    assert rhs.total <= rate.total * (1 + 1e-12)
    assert rate.noise == pytest.approx(math.sqrt(32 * c.L * c.variance * c.delta_f / (nodes * steps)))


def test_constants_are_duck_typed():
    """Any problem exposing L, variance, f_star (and optionally omega_sq) works: no isinstance chain."""
    from simsgd.problems import GeneralCounterexample

    c = theory.constants(GeneralCounterexample(m=5, n=4, signal_rank=2, noise_scale=1.0))
    assert (c.L, c.omega_sq, c.variance, c.omega_sq_source) == (8.0, 32.0, 40.0, "analytic")
    assert c.delta_f == pytest.approx(6.0)  # two signal directions at ψ(2) = 3
    assert theory.constants(Psi2x2(), omega_sq=4.0).omega_sq_source == "given"

    class Bare:
        L, variance, f_star, shape, x0 = 2.0, 1.0, 0.0, (1, 1), np.zeros((1, 1))

        def loss(self, x):
            return float(np.sum(x**2))

    with pytest.raises(ValueError, match="omega_sq must be given for Bare"):
        theory.constants(Bare())
    assert theory.constants(Bare(), omega_sq=3.0).omega_sq_source == "visited"
    del Bare.variance
    with pytest.raises(ValueError, match="lacks variance"):
        theory.constants(Bare(), omega_sq=3.0)


@given(st.floats(0.0, 0.999))
def test_corrected_compression_constant_is_below_the_stated_one(mu):
    """Erratum (19): 180/(1−μ)² + 368μ²/(1−μ)⁴ ≤ 548/(1−μ)⁴ (Theorem 4 survives it)."""
    corrected = theory.compression_constant(mu, corrected=True)
    assert corrected <= theory.compression_constant(mu) * (1 + 1e-12)
    assert corrected >= 180.0 + 368.0 * mu**2 / (1 - mu) ** 4  # ≥ the paper's unfixed intermediate


def test_theorem4_corrected_third_term():
    c = theory.constants(Psi2x2(noise_scale=1.0))
    kw = dict(lr=1e-4, momentum=0.5, restart_period=4, delta=0.5, nodes=2, steps=1000)
    stated, fixed = theory.theorem4_terms(c, **kw), theory.theorem4_terms(c, corrected=True, **kw)
    assert stated[:2] == fixed[:2]
    assert fixed.compression / stated.compression == pytest.approx((180 * 0.25 + 368 * 0.25) / 548)
