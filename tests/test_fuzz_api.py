"""The public API fuzzed with generated arguments (issue 13): a correct result, a ValueError
naming the parameter, or a documented FloatingPointError / DegenerateQRError; nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import simsgd
from simsgd.compressors import ssp_step
from simsgd.engine import Diverged
from simsgd.orthogonalize import DegenerateQRError
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2

DOCUMENTED = (ValueError, FloatingPointError, DegenerateQRError)
SIMULATE_DOCUMENTED = (ValueError, Diverged, DegenerateQRError)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
JUNK = st.one_of(
    st.none(), st.text(max_size=3), st.integers(-(2**70), 2**70), ANY_FLOAT, st.booleans(), st.just([1, 2])
)


def small(low, high, good):
    """Mostly valid, cheap values; sometimes anything."""
    return st.one_of(st.integers(low, high), st.sampled_from(good), JUNK)


OPTIONS = {
    "method": small(0, 0, ["powersgd", "powersgd+", "full", "galore", "power-iteration", "bogus"]),
    "nodes": small(-1, 5, [1, 4]),
    "rank": small(-1, 3, [1, 2]),
    "restart_period": small(-1, 5, [1, 10]),
    "optimizer": st.sampled_from(["sgd", "msgd", "adam", "lion"]) | JUNK,
    "lr": st.sampled_from([1e-3, 0.1, 1e3, 1e300, -1.0, 0.0]) | ANY_FLOAT | JUNK,
    "momentum": st.sampled_from([0.0, 0.9, 1.0]) | ANY_FLOAT,
    "steps": small(-1, 4, [1, 3]),
    "replicas": small(-1, 4, [1, 3]) | st.just(10**13),
    "seed": small(-1, 3, [0, 2**64 - 1, 2**64]),
    "dtype": st.sampled_from(["float64", "float32", "float16", "bogus", None, np.float32, "int64"]),
    "error_feedback": st.sampled_from(["local", "global", "none", "x"]),
    "orthogonalization": st.sampled_from(["householder", "lapack", "gram-schmidt", "x"]),
    "orthogonalization_epsilon": st.sampled_from([0.0, 1e-8]) | ANY_FLOAT,
    "degenerate_qr": st.sampled_from(["previous", "native", "zero", "raise", "x"]),
    "adam_eps": st.sampled_from([1e-8, 0.0]) | ANY_FLOAT,
    "betas": st.sampled_from([(0.9, 0.999), (0.9,), (1.0, 0.5)]) | st.tuples(ANY_FLOAT, ANY_FLOAT),
    "x0": st.sampled_from(
        [None, [[1.0, 0.0], [0.0, 1.0]], [[np.nan, 0.0], [0.0, 1.0]], [[1e308, 0], [0, 1]]]
    ),
}


def _psi(noise_scale):
    return Psi2x2(noise_scale, basis="aligned")


@given(
    kwargs=st.fixed_dictionaries({}, optional=OPTIONS),
    noise=st.sampled_from([5.0, 0.0, 1e150]),
)
def test_simulate_gives_a_result_or_a_documented_error(kwargs, noise):
    kwargs.setdefault("steps", 2)
    kwargs.setdefault("replicas", 2)
    problem = _psi(noise)
    try:
        trace = simsgd.simulate(problem, progress=False, **kwargs)
    except SIMULATE_DOCUMENTED as err:
        assert str(err), type(err)
        return
    steps, replicas = kwargs["steps"], kwargs["replicas"]
    assert trace.grad_norm_sq.shape == (replicas, steps + 1)
    assert np.isfinite(trace.x).all() and np.isfinite(trace.grad_norm_sq).all()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: Psi2x2(1e300), id="psi noise 1e300"),
        pytest.param(lambda: GeneralCounterexample(8, 8, 2, 1e300), id="general noise"),
        pytest.param(lambda: GeneralCounterexample(10**6, 8, 2, 5.0), id="general m=10^6"),
    ],
)
def test_problem_constructors_refuse_with_a_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_psi_epsilon0_at_the_largest_documented_n():
    assert Psi2x2().epsilon0(1024) == 16 * 2.0**-1024


@given(
    heterogeneity=st.sampled_from([0.0, 1.0, 1e100, 1e152, 1e200]) | ANY_FLOAT,
    noise=st.sampled_from([0.1, 1e152, 1e155]) | ANY_FLOAT,
    m=small(-1, 4, [2]),
    seed=small(-1, 2, [2**64]),
)
def test_quadratic_constructor(heterogeneity, noise, m, seed):
    try:
        problem = HeterogeneousQuadratic(m=m, n=2, heterogeneity=heterogeneity, noise=noise, seed=seed)
    except ValueError as err:
        assert str(err)
        return
    for value in (problem.L, problem.mu_strong, problem.f_star, problem.variance):
        assert math.isfinite(value)
    assert np.isfinite(problem.x_star).all()


def _common_unit(*arrays):
    """The arrays, as float64, divided by one power of two that brings their largest entry to [1, 2)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    big = max(float(np.max(np.abs(a))) for a in arrays)
    scale = np.ldexp(1.0, int(np.frexp(big)[1]) - 1) if big > 0 else 1.0
    return [a / scale for a in arrays]


def _check_projection(deltas, global_hat, full_rank):
    """Δ̂ is an orthogonal projection of the node mean: residual ⟂ Δ̂; zero residual at full rank."""
    mean, hat = _common_unit(deltas.mean(axis=-3, dtype=np.float64), global_hat)
    residual = mean - hat
    size = max(float(np.sum(mean * mean)), 1e-300)
    eps = 1e-5 if deltas.dtype == np.float32 else 1e-12
    assert abs(float(np.sum(residual * hat))) <= 100 * eps * size
    if full_rank:
        assert float(np.sum(residual * residual)) <= eps * size


DELTAS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32]),
    shape=hnp.array_shapes(min_dims=3, max_dims=4, min_side=1, max_side=3),
    elements=st.floats(-4, 4, width=32) | st.sampled_from([0.0, np.nan, np.inf]),
)
# scales 2^k across both float ranges (float32's from about 2^-149 to 2^127)
EXPONENTS = st.integers(-150, 127) | st.sampled_from([-1074, -1060, -1000, -600, 600, 1000, 1015, 1023])


@given(deltas=DELTAS, exponent=EXPONENTS, rank=st.integers(0, 3))
def test_svd_compress_full_rank_is_the_average_at_any_scale(deltas, exponent, rank):
    with np.errstate(over="ignore", under="ignore"):
        deltas = (deltas * np.ldexp(1.0, exponent)).astype(deltas.dtype)
    try:
        q, local_hat, global_hat = simsgd.svd_compress(deltas, rank)
    except DOCUMENTED as err:
        assert str(err)
        return
    assert np.isfinite(q).all() and np.isfinite(global_hat).all()
    _check_projection(deltas, global_hat, full_rank=rank == min(deltas.shape[-2:]))


@given(
    deltas=DELTAS,
    exponent=EXPONENTS,
    q=hnp.arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(0, 3)), elements=ANY_FLOAT),
    orthogonalization=st.sampled_from(["householder", "lapack", "gram-schmidt", "bogus"]),
)
def test_ssp_compress_gives_a_projection_at_any_scale(deltas, exponent, q, orthogonalization):
    with np.errstate(over="ignore", under="ignore"):
        deltas = (deltas * np.ldexp(1.0, exponent)).astype(deltas.dtype)
    try:
        q_out, local_hat, global_hat = simsgd.ssp_compress(
            q, deltas, orthogonalization=orthogonalization, degenerate_qr="zero"
        )  # "native" is whatever the orthogonaliser returns: Gram–Schmidt's need not be orthonormal
    except DOCUMENTED as err:
        assert str(err)
        return
    assert np.isfinite(q_out).all() and np.isfinite(local_hat).all() and np.isfinite(global_hat).all()
    _check_projection(deltas, global_hat, full_rank=False)


@pytest.mark.parametrize(
    "orthogonalization, scale, raw_fails",
    [
        ("householder", 1e-300, False),
        ("householder", "near max", False),  # rank-1 Householder scales itself
        ("lapack", "near max", False),
        ("gram-schmidt", 1e300, True),
        ("gram-schmidt", 1e-300, True),
        ("gram-schmidt", "near max", True),
    ],
)
def test_compressors_are_scale_safe_where_the_raw_step_is_not(orthogonalization, scale, raw_fails):
    rng = np.random.default_rng(0)
    deltas, q = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 1))
    scale = 1.5e308 / np.abs(deltas).max() if scale == "near max" else scale
    reference = simsgd.ssp_compress(q, deltas, orthogonalization=orthogonalization)
    scaled = simsgd.ssp_compress(q, deltas * scale, orthogonalization=orthogonalization)
    for got, want in zip(scaled, reference):
        np.testing.assert_allclose(got / scale, want, rtol=1e-12, atol=1e-14)
    # negative control: the unguarded step (the engine's hot path) at the same scale
    with np.errstate(all="ignore"):
        raw = ssp_step(q, deltas * scale, orthogonalization=orthogonalization).global_hat / scale
    assert np.allclose(raw, reference[2], rtol=1e-6) != raw_fails


def test_powers_of_two_keep_the_result_bit_for_bit():
    rng = np.random.default_rng(1)
    deltas, q = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 4, 2))
    raw = ssp_step(q, deltas)
    checked = simsgd.ssp_compress(q, deltas)
    for a, b in zip(checked, (raw.q, raw.local_hat, raw.global_hat)):
        np.testing.assert_array_equal(a, b)


def test_the_projection_check_can_fail():
    deltas = np.random.default_rng(2).standard_normal((3, 4, 3))
    _, _, hat = simsgd.svd_compress(deltas, 1)
    _check_projection(deltas, hat, full_rank=False)
    with pytest.raises(AssertionError):
        _check_projection(deltas, 1.1 * hat, full_rank=False)  # not a projection
    with pytest.raises(AssertionError):
        _check_projection(deltas, hat, full_rank=True)  # rank 1 < 3 leaves a residual


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dtype="bogus"), "dtype"),
        (dict(dtype=None), "dtype"),
        (dict(lr=np.inf), "lr"),
        (dict(adam_eps=np.inf, optimizer="adam"), "adam_eps"),
        (dict(orthogonalization_epsilon=np.inf), "orthogonalization_epsilon"),
        (dict(seed=2**64), "seed"),
        (dict(x0=[[1.0, np.nan], [0.0, 1.0]]), r"x0\[0, 1\] = nan"),
        (dict(x0=[[1e308, 0.0], [0.0, 1.0]], dtype="float32"), "finite in float32"),
        (dict(replicas=10**13), "GiB"),
        (dict(steps=10**12), "GiB"),
    ],
)
def test_simulate_refuses_before_computing(kwargs, match, monkeypatch):
    calls = []
    problem = _psi(5.0)
    monkeypatch.setattr(problem, "stochastic_grads", lambda *a: calls.append(a))
    with pytest.raises(ValueError, match=match):
        simsgd.simulate(problem, steps=kwargs.pop("steps", 2), replicas=kwargs.pop("replicas", 2), **kwargs)
    assert calls == []  # nothing was computed


def test_check_real_refuses_inf_without_an_upper_bound():
    from simsgd._checks import check_real

    assert check_real("x", 1e308, 0.0) == 1e308
    for bad in (math.inf, -math.inf, math.nan, 10**400):
        with pytest.raises(ValueError, match="x must be a finite real number"):
            check_real("x", bad, 0.0)


@pytest.mark.parametrize(
    "problem, options",
    [
        (lambda: Psi2x2(5.0, basis="aligned"), dict(replicas=2000, steps=20, nodes=4, rank=1)),
        (lambda: Psi2x2(5.0, basis="aligned"), dict(replicas=1, steps=4000, nodes=4, rank=1)),
        (lambda: HeterogeneousQuadratic(16, 12, nodes=8), dict(replicas=50, steps=100, nodes=8, rank=2)),
    ],
    ids=["many replicas", "many steps", "quadratic"],
)
def test_memory_estimate_bounds_the_measured_peak(problem, options):
    import tracemalloc

    from simsgd.engine import memory_estimate

    problem = problem()
    simsgd.simulate(problem, progress=False, **dict(options, steps=2, replicas=2))  # imports done: warm
    tracemalloc.start()
    try:
        simsgd.simulate(problem, progress=False, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = memory_estimate(options["replicas"], options["steps"], options["nodes"], problem.shape, 2)
    assert peak <= estimate <= 3 * peak, (peak, estimate)


@pytest.mark.parametrize(
    "scale",
    [1e100, 1e200, 1e307],
)
def test_lock_test_is_not_fooled_by_a_huge_iterate(scale):
    """X − X_0 with a large A-component is not in span(B); lock.py's ‖X‖ overflows beyond 1.3e154."""
    import types

    from simsgd.lock import locked_mask

    trace = types.SimpleNamespace(
        x=np.array([[[scale, 0.0], [0.0, scale]]]), grad_norm_sq=np.array([[16.0, 16.0]])
    )
    with np.errstate(over="ignore"):
        assert not locked_mask(Psi2x2(5.0, basis="aligned"), trace)[0]
