"""simsgd.stats: the estimates, their one-sided coverage, and the exponent fit."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from simsgd.stats import fit_exponent, max_mean_bounds, mean_bounds


def binomial_ok(hits, trials, p, z=4.0):
    """|hits − trials·p| within z binomial standard deviations."""
    return abs(hits - trials * p) <= z * math.sqrt(trials * p * (1 - p))


def test_clt_bound_formula():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    est = mean_bounds(x, alpha=0.05)
    half = NormalDist().inv_cdf(0.95) * x.std(ddof=1) / 2.0
    assert (est.mean, est.n) == (2.5, 4)
    assert est.upper == pytest.approx(2.5 + half) and est.lower == pytest.approx(2.5 - half)
    assert est.method == "clt, R=4"


@pytest.mark.parametrize("method, datasets", [("clt", 2000), ("bootstrap", 300)])
def test_one_sided_coverage(method, datasets):
    """Exponential(1) data, R = 200: each one-sided bound misses the true mean 1 about α of the time."""
    rng = np.random.default_rng(0)
    data = rng.exponential(size=(datasets, 200))
    ests = [mean_bounds(d, alpha=0.1, method=method, resamples=500, seed=k) for k, d in enumerate(data)]
    assert binomial_ok(sum(e.upper < 1 for e in ests), datasets, 0.1)
    assert binomial_ok(sum(e.lower > 1 for e in ests), datasets, 0.1)


def test_bootstrap_is_seeded():
    x = np.random.default_rng(1).standard_normal(50)
    assert mean_bounds(x, method="bootstrap", seed=3) == mean_bounds(x, method="bootstrap", seed=3)


def test_max_mean_bounds_are_simultaneous():
    """T = 50 columns with the same mean 0: max_t UCB_t < 0 (a miss) at most ≈ α of the time."""
    rng = np.random.default_rng(2)
    misses = sum(max_mean_bounds(rng.standard_normal((100, 50)), alpha=0.1).upper < 0 for _ in range(400))
    assert misses <= 400 * 0.1 + 4 * math.sqrt(400 * 0.1 * 0.9)
    est = max_mean_bounds(np.arange(12.0).reshape(3, 4) ** 2)
    assert est.mean == pytest.approx(np.mean([9, 49, 121]))  # the largest column mean (last column)
    assert "Bonferroni over T=4" in est.method


def test_fit_exponent_recovers_a_power_law():
    rng = np.random.default_rng(3)
    x = np.array([1.0, 4.0, 16.0, 64.0])
    samples = [x_k**-0.5 * rng.exponential(size=400) for x_k in x]
    fit = fit_exponent(x, samples, seed=0)
    assert fit.lower <= -0.5 <= fit.upper and fit.upper - fit.lower < 0.1
    assert fit.slope == pytest.approx(-0.5, abs=0.05)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: mean_bounds([1.0, 2.0], alpha=0.7), "alpha"),
        (lambda: mean_bounds([1.0, np.nan]), "samples"),
        (lambda: mean_bounds([1.0]), "samples"),
        (lambda: mean_bounds([1.0, 2.0], method="t"), "method"),
        (lambda: max_mean_bounds([1.0, 2.0]), "samples"),
        (lambda: fit_exponent([1.0, 2.0], [[1.0, 2.0], [-1.0, -2.0]]), "samples"),
        (lambda: fit_exponent([1.0, 1.0], [[1.0, 2.0], [1.0, 2.0]]), "x"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
