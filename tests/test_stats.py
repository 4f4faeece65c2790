"""simsgd.stats: the estimates, their one-sided coverage, and the exponent fit."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from simsgd.stats import (
    fit_exponent,
    max_mean_bounds,
    mean_bounds,
    student_t_cdf,
    student_t_quantile,
    tost,
)


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
        (lambda: tost([0.1, 0.2], margin=0.0), "margin"),
        (lambda: tost([0.1, 0.2], margin=0.1, alpha=0.5), "alpha"),
        (lambda: tost([0.1], margin=0.1), "diffs"),
        (lambda: tost([0.1, np.inf], margin=0.1), "diffs"),
        (lambda: student_t_quantile(1.0, 3), "p"),
        (lambda: student_t_cdf(1.0, 0), "df"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_student_t_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 9, 10.5, 40, 1000):
        for p in (0.001, 0.05, 0.5, 0.9, 0.95, 0.975, 0.99375):
            assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)
        for t in (-30.0, -2.0, -0.1, 0.0, 0.7, 4.0):
            assert student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-10, abs=1e-14)
    # Negative control: the normal quantile is not the t quantile at small df.
    assert abs(student_t_quantile(0.975, 3) - NormalDist().inv_cdf(0.975)) > 1.0


def test_tost_interval_and_p_value_by_hand():
    d = np.array([0.004, -0.001, 0.002, 0.006, 0.0, 0.003])
    res = tost(d, margin=0.01, alpha=0.05)
    se = d.std(ddof=1) / math.sqrt(d.size)
    t = student_t_quantile(0.95, d.size - 1)
    assert (res.lower, res.upper) == pytest.approx((d.mean() - t * se, d.mean() + t * se))
    p = max(1 - student_t_cdf((d.mean() + 0.01) / se, 5), student_t_cdf((d.mean() - 0.01) / se, 5))
    assert res.p_value == pytest.approx(p) and res.verdict == "equivalent" and res.p_value < 0.05
    assert res.text == "equivalent within ±0.01" and res.needed is None
    # The same differences shifted past the margin are "different"; half way, "undecided".
    assert tost(d + 0.02, margin=0.01).verdict == "different"
    half = tost(d + 0.0085, margin=0.01)
    assert half.verdict == "undecided" and half.needed > d.size and "pairs would decide" in half.text


@pytest.mark.parametrize("true_mean", [0.01, -0.01])
def test_tost_declares_equivalence_at_the_margin_at_most_alpha_of_the_time(true_mean):
    """Type I error: with E[d] exactly at ±m, "equivalent" must come out in ≤ α of the runs."""
    rng = np.random.default_rng(4)
    trials, alpha = 4000, 0.05
    data = true_mean + 0.004 * rng.standard_normal((trials, 10))
    hits = sum(tost(x, margin=0.01, alpha=alpha).verdict == "equivalent" for x in data)
    assert hits <= trials * alpha + 4 * math.sqrt(trials * alpha * (1 - alpha))
    assert binomial_ok(hits, trials, alpha)  # and it is not far below α either (the test is exact)


def test_tost_has_power_where_it_should_and_not_where_it_should_not():
    rng = np.random.default_rng(5)
    equal = [tost(0.004 * rng.standard_normal(10), margin=0.01).verdict for _ in range(500)]
    assert equal.count("equivalent") > 0.95 * 500  # E[d] = 0, sd 0.004, n = 10: power ≈ 1
    noisy = [tost(0.02 * rng.standard_normal(3), margin=0.01).verdict for _ in range(500)]
    assert noisy.count("equivalent") < 0.05 * 500  # n = 3, sd 0.02: it cannot decide
    assert noisy.count("undecided") > 0.8 * 500
    far = [tost(0.03 + 0.004 * rng.standard_normal(10), margin=0.01).verdict for _ in range(500)]
    assert far.count("different") > 0.95 * 500


def test_lm_claims_follow_the_tost_verdicts():
    from simsgd.examples.lm_analysis import claims

    def curves(shift, galore_shift):
        base = {s: [(0, 2.0, 0, 0.0), (10, 1.5, 0, 1.0), (20, 1.4, 0, 2.0)] for s in range(6)}
        noise = {s: 0.001 * (s - 2.5) for s in range(6)}

        def moved(d):
            return {
                s: [(st, v + (d + noise[s] if st == 20 else 0), f, sec) for st, v, f, sec in c]
                for s, c in base.items()
            }

        return {
            ("PowerSGD", 4, 0): base,
            ("PowerSGD+", 4, 10): moved(shift),
            ("GaLore-style", 4, 100): moved(galore_shift),
        }

    same = claims(curves(0.0, 0.2), 0.01, 0.5)
    assert same["LM-plus"]["verdict"] == "holds" and same["LM-galore"]["verdict"] == "holds"
    apart = claims(curves(0.05, 0.0), 0.01, 0.5)  # the control: PowerSGD+ 0.05 worse, GaLore equal
    assert apart["LM-plus"]["verdict"] == "fails" and apart["LM-galore"]["verdict"] == "open"
    still_falling = claims(curves(0.0, 0.2), 0.01, 0.01)  # fell by 0.1 over the last fifth
    assert still_falling["LM-plus"]["verdict"] == "holds in scope"
