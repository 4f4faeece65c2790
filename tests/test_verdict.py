"""simsgd.verdict: each rule refuses a verdict on an input that triggers it, and not on a control."""

import math

import numpy as np
import pytest

from simsgd.problems import Psi2x2
from simsgd.verdict import (
    MIN_EVENTS,
    MIN_REPLICAS,
    RESOLUTION_FACTOR,
    Interval,
    Verdict,
    decide,
    grad_norm_sq_resolution,
)

# A run that decides: PowerSGD-like subject well above c = 1, control far below.
SUBJECT = Interval(1.0, 0.8, 1.2, 1000)
CONTROL = Interval(1e-8, 0.0, 2e-8, 1000)


def _verdict(subject=SUBJECT, threshold=1.0, **kw):
    kw.setdefault("control", CONTROL)
    return decide(subject, ">=", threshold, **kw)


def test_the_control_run_holds():
    v = _verdict()
    assert v.kind == "holds" and v.decided and v.would_decide == ""
    assert v.line().startswith("holds: ")


@pytest.mark.parametrize("n", [1, 2, MIN_REPLICAS - 1])
def test_rule1_too_few_replicas(n):
    v = _verdict(Interval(1.0, 0.8, 1.2, n))
    assert v.kind == "inconclusive" and f"R = {n} is below {MIN_REPLICAS}" in v.reason
    assert f"R ≥ {MIN_REPLICAS}" in v.would_decide
    assert _verdict(Interval(1.0, 0.8, 1.2, MIN_REPLICAS)).kind == "holds"  # control


def test_rule1_r1_is_no_ci_even_below_the_threshold():
    # R = 1 far below c: the old CLI said "fails"; a zero-width interval of one value is no CI.
    v = _verdict(Interval(0.009, 0.009, 0.009, 1))
    assert v.kind == "inconclusive" and "no CI" in v.reason
    assert _verdict(Interval(0.009, 0.008, 0.010, 1000)).kind == "fails"  # control: enough replicas


def test_rule1_zero_width_interval_at_any_r():
    samples = np.full(1000, 16.0)  # T = 1: every run still at ||∇f(X_0)||² = 16
    v = _verdict(samples, control=samples)
    assert v.kind == "inconclusive" and "zero-width" in v.reason and "cannot tell them apart" in v.reason
    assert "more steps" in v.would_decide
    spread = 16.0 + np.random.default_rng(0).normal(0, 1e-3, 1000)
    assert _verdict(spread).kind == "holds"  # control: the same values, spread


def test_rule2_rare_event():
    v = _verdict(event_probability=2.0**-20)
    assert v.kind == "inconclusive" and "expected events" in v.reason
    assert f"R ≥ {MIN_EVENTS * 2**20}" in v.would_decide
    assert _verdict(event_probability=2.0**-4).kind == "holds"  # control: 1000/16 = 62 events


def test_rule2_out_of_reach():
    v = _verdict(event_probability=2.0**-1024)
    assert "out of reach" in v.would_decide and "10^309" in v.would_decide


def test_rule3_resolution():
    v = _verdict(
        Interval(1e-299, 0.5e-299, 1.5e-299, 1000),
        threshold=1e-300,
        resolution=1e-30,
        control=Interval(0.0, 0.0, 1e-310, 1000),
    )
    assert v.kind == "inconclusive" and "float resolution" in v.reason
    assert _verdict(resolution=1e-30).kind == "holds"  # control: c = 1 ≫ 2^10 · 1e-30


def test_rule3_documented_numbers_for_psi():
    # The module docstring: float64, L = 8, ||X_0|| = √2: ε₀ = 16·2^−N resolved up to N = 90.
    psi = Psi2x2(basis="aligned")
    res = grad_norm_sq_resolution(psi.L, float(np.linalg.norm(psi.x0)))
    assert math.isclose(RESOLUTION_FACTOR * res, 6.46e-27, rel_tol=1e-3)
    eps0 = psi.epsilon0(0)
    for n, resolved in ((90, True), (91, False)):
        v = _verdict(Interval(1.0, 0.8, 1.2, 1000), threshold=eps0 * 2.0**-n, resolution=res)
        assert ("float resolution" not in v.reason) == resolved, n
    assert grad_norm_sq_resolution(8, 1, "float32") > grad_norm_sq_resolution(8, 1, "float64")


def test_rule4_separation():
    v = _verdict(control=SUBJECT)
    assert v.kind == "inconclusive" and "cannot tell them apart" in v.reason
    assert "more steps" in v.would_decide  # the means coincide: more replicas cannot help
    near = Interval(0.7, 0.5, 0.9, 1000)  # means apart, intervals overlapping: more replicas
    w = _verdict(control=near)
    assert w.kind == "inconclusive" and "R ≥ " in w.would_decide and "more steps" not in w.would_decide
    assert _verdict(control=None).kind == "holds"  # control: no control run, rule 4 skipped


def test_rule4_is_not_needed_to_fail():
    # A significant violation is a result even if the control does no better.
    assert _verdict(Interval(0.1, 0.05, 0.15, 1000), control=Interval(0.1, 0.05, 0.15, 1000)).kind == "fails"


def test_rule5_margin_and_the_replicas_that_would_decide():
    wide = Interval(1.0, 0.3, 1.7, 100)  # straddles c/2 .. c
    v = _verdict(wide)
    assert v.kind == "inconclusive" and "too wide" in v.reason
    needed = int(v.would_decide.split("R ≥ ")[1].split()[0])
    half_then = 0.7 * math.sqrt(100 / needed)  # the half-width shrinks as 1/√R
    assert half_then <= 0.5 + 1e-12 and 0.7 * math.sqrt(100 / (needed - 1)) > 0.5
    assert _verdict(Interval(1.0, 0.55, 1.45, 100)).kind == "holds"  # control: lower end ≥ c/2
    assert _verdict(wide, margin=0.8).kind == "holds"  # a wider margin decides the same run


def test_less_or_equal_is_the_mirror_image():
    bound = 1.0
    assert decide(Interval(0.5, 0.4, 0.6, 500), "<=", bound).kind == "holds"
    assert decide(Interval(1.5, 1.4, 1.6, 500), "<=", bound).kind == "fails"
    sep = decide(Interval(0.5, 0.4, 0.6, 500), "<=", bound, control=Interval(0.55, 0.5, 0.6, 500))
    assert sep.kind == "inconclusive" and "does not end above" in sep.reason
    assert decide(Interval(0.9, 0.5, 1.3, 500), "<=", bound, margin=0.1).kind == "inconclusive"


def test_samples_are_turned_into_the_normal_interval():
    values = np.random.default_rng(1).normal(2.0, 1.0, 400)
    est = Interval.of(values)
    half = 1.96 * values.std(ddof=1) / 20
    assert est.n == 400 and math.isclose(est.high - est.mean, half) and math.isclose(est.mean - est.low, half)
    assert Interval.of([-1.0, 1.0], floor=0.0).low == 0.0
    assert decide(values, ">=", 1.0).kind == "holds"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(comparison="=="), "comparison"),
        (dict(threshold=float("nan")), "threshold"),
        (dict(margin=0.0), "margin"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(subject=SUBJECT, comparison=">=", threshold=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        decide(**args)
    with pytest.raises(ValueError, match="kind"):
        Verdict("maybe", "x")


def test_before_run_says_what_rules_1_to_3_force_and_nothing_else():
    from simsgd.verdict import before_run

    # Decidable a priori: R = 160, p = 1/16 (10 expected events), ε₀ = 1 well above 6.5e-27.
    assert before_run(160, 1.0, resolution=6.5e-27, event_probability=1 / 16) is None
    # Each rule alone makes it inconclusive, with the same reasons decide() gives after the run.
    for replicas, threshold, p, reason in (
        (20, 1.0, None, "R = 20 is below 30"),
        (100, 1.0, 1 / 16, "R·p = 6.2 expected"),
        (160, 1e-30, None, "below 2^10 × the float resolution"),
    ):
        early = before_run(replicas, threshold, resolution=6.5e-27, event_probability=p)
        assert early.kind == "inconclusive" and reason in early.reason
        values = np.linspace(0.5, 1.5, replicas)
        late = decide(values, ">=", threshold, resolution=6.5e-27, event_probability=p)
        assert late.kind == "inconclusive" and reason in late.reason
    assert before_run(160, 1e-30, resolution=6.5e-27).would_decide.startswith("a larger threshold")
