"""GaLore, multi-step power iteration and the general counterexample."""

import numpy as np
import pytest

import simsgd
from simsgd import algorithm
from simsgd.compressors import power_iteration_step
from simsgd.options import METHODS
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2

QUAD = dict(m=6, n=5, nodes=3, noise=0.1, lowrank_noise=1.0, seed=1)
RUN = dict(nodes=3, optimizer="msgd", lr=0.02, momentum=0.9, steps=30, replicas=4, seed=3, progress=False)


def _same(a, b):
    return np.array_equal(a.grad_norm_sq, b.grad_norm_sq) and np.array_equal(a.x, b.x)


@pytest.mark.parametrize(
    "method, tau, rank, expected",
    [
        ("galore", 5, 2, lambda m, n, r, tau: n * r + m * n / tau),
        ("galore", 1, 1, lambda m, n, r, tau: n * r + m * n / tau),
        ("power-iteration", 5, 2, lambda m, n, r, tau: 3 * (m + n) * r),
        ("powersgd+", 5, 2, lambda m, n, r, tau: (m + n) * r + (m * n - m * r) / tau),
    ],
)
def test_mean_floats_per_step_match_the_formula(method, tau, rank, expected):
    trace = simsgd.simulate(
        HeterogeneousQuadratic(**QUAD), method=method, rank=rank, restart_period=tau, power_steps=3, **RUN
    )
    assert trace.floats_sent.mean() == pytest.approx(expected(6, 5, rank, tau), rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tau", [1, 4, 7, None])  # 7 does not divide T = 30; None is τ = ∞
def test_mean_floats_per_step_is_what_a_run_sends(method, tau):
    trace = simsgd.simulate(
        HeterogeneousQuadratic(**QUAD), method=method, rank=2, restart_period=tau or 30, power_steps=3, **RUN
    )
    predicted = algorithm.mean_floats_per_step(method, 6, 5, 2, tau, steps=30, power_steps=3)
    assert trace.floats_sent.mean() == predicted


@pytest.mark.parametrize(
    "method, tau, sent, table2",
    [  # m, n, r = 6, 5, 2: (m+n)r = 22, mn = 30, nr = 10, mr = 12
        ("powersgd", None, 22, 22),
        ("powersgd+", 5, 22 + (30 - 12) / 5, 22 + 30 / 5),  # Table 2 counts mr more per restart
        ("powersgd+", None, 22, 22),
        ("galore", 5, 10 + 30 / 5, 10 + 30 / 5),
        ("full", None, 30, 30),
        ("power-iteration", None, 3 * 22, 3 * 22),
    ],
)
def test_mean_floats_per_step_long_run_and_table2(method, tau, sent, table2):
    mean = algorithm.mean_floats_per_step
    assert mean(method, 6, 5, 2, tau, power_steps=3) == pytest.approx(sent, rel=1e-15)
    assert mean(method, 6, 5, 2, tau, power_steps=3, formula="table2") == pytest.approx(table2, rel=1e-15)


def test_restart_predicate_counts_t_from_zero():
    assert [algorithm.is_restart(t, 3) for t in range(7)] == [True, False, False, True, False, False, True]
    assert not any(algorithm.is_restart(t, None) for t in range(5))
    for method in METHODS:
        config = algorithm.Config(method=method, restart_period=3)
        restarts = [config.restart_at(t) for t in range(7)]
        assert restarts == (
            [algorithm.is_restart(t, 3) for t in range(7)]
            if method in ("powersgd+", "galore")
            else [False] * 7
        )


def test_galore_never_feeds_back_error_and_refreshes_only_every_tau_steps():
    trace = simsgd.simulate(
        HeterogeneousQuadratic(**QUAD),
        method="galore",
        rank=2,
        restart_period=7,
        error_feedback="local",
        **RUN,
    )
    assert np.all(trace.error_norm_sq == 0)
    np.testing.assert_array_equal(np.flatnonzero(trace.restart_steps), np.arange(0, 30, 7))


def test_galore_keeps_its_projection_between_refreshes():
    rng = np.random.default_rng(0)
    config = algorithm.Config(method="galore", rank=2, restart_period=3, optimizer="sgd", momentum=0.0)
    grads = rng.standard_normal((5, 3, 6, 4))  # (T, N, m, n)
    state = algorithm.init(np.zeros((6, 4)), rng.standard_normal((4, 2)), grads[0], config)
    bases = []
    for t in range(5):
        state, info = algorithm.step(state, grads[t], t, 0.1, config)
        basis = state.compressor.basis
        bases.append(basis)
        np.testing.assert_allclose(info.delta_hat, basis @ basis.T @ grads[t].mean(0), atol=1e-12)
    assert np.array_equal(bases[0], bases[2]) and not np.allclose(bases[2], bases[3])
    u = np.linalg.svd(grads[3].mean(0))[0][:, :2]  # refresh at t = 3: top-2 subspace
    np.testing.assert_allclose(bases[3] @ bases[3].T, u @ u.T, atol=1e-12)


def test_galore_with_tau_one_is_svd_compression_without_error_feedback():
    problem = HeterogeneousQuadratic(**QUAD)
    a = simsgd.simulate(problem, method="galore", rank=2, restart_period=1, **RUN)
    b = simsgd.simulate(problem, method="powersgd+", rank=2, restart_period=1, error_feedback="none", **RUN)
    assert _same(a, b)


def test_galore_at_full_rank_is_full_precision():
    problem = HeterogeneousQuadratic(**dict(QUAD, m=5, n=6))  # P̃ is 5×5: an orthonormal basis of R^m
    a = simsgd.simulate(problem, method="galore", rank=5, restart_period=4, **RUN)
    b = simsgd.simulate(problem, method="full", **RUN)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-9, atol=1e-9)


def test_one_power_step_is_powersgd_exactly():
    problem = HeterogeneousQuadratic(**QUAD)
    a = simsgd.simulate(problem, method="power-iteration", rank=2, power_steps=1, **RUN)
    b = simsgd.simulate(problem, method="powersgd", rank=2, **RUN)
    assert _same(a, b) and np.array_equal(a.floats_sent, b.floats_sent)


def test_many_power_steps_reach_the_optimal_rank_r_subspace():
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    v, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    mean = u[:, :6] @ np.diag([5.0, 4.0, 1.0, 0.5, 0.2, 0.1]) @ v.T
    spread = rng.standard_normal((3, 8, 6))
    deltas = mean + spread - spread.mean(0)  # node average = mean
    q0 = rng.standard_normal((6, 2))
    one = power_iteration_step(q0, deltas, 1)
    many = power_iteration_step(q0, deltas, 40)
    _, _, best = simsgd.svd_compress(deltas, 2)
    assert np.linalg.norm(many.global_hat - best) < 1e-10 < np.linalg.norm(one.global_hat - best)
    assert many.local_hat.shape == (3, 8, 6)


def test_power_steps_is_checked():
    with pytest.raises(ValueError, match="power_steps"):
        simsgd.simulate(HeterogeneousQuadratic(**QUAD), method="power-iteration", power_steps=0, **RUN)


def test_general_counterexample_smallest_case_is_psi2x2_draw_for_draw():
    run = dict(RUN, nodes=4, lr=1e-3)
    a = simsgd.simulate(GeneralCounterexample(2, 2, 1, 5.0), method="powersgd", **run)
    b = simsgd.simulate(Psi2x2(5.0, basis="aligned"), method="powersgd", **run)
    assert _same(a, b)


@pytest.mark.parametrize("basis", ["aligned", "random"])
def test_general_counterexample_constants(basis):
    problem = GeneralCounterexample(7, 6, signal_rank=3, noise_scale=2.5, basis=basis, basis_seed=4)
    x0 = problem.x0
    assert problem.loss(x0) == pytest.approx(9.0) and np.sum(problem.grad(x0) ** 2) == pytest.approx(48.0)
    assert np.einsum("kij,ij->k", problem.A, problem.B) == pytest.approx(np.zeros(3), abs=1e-12)
    assert np.linalg.matrix_rank(problem.B) == 3
    # ||∇F − ∇f||² = σ²||B||² + ||∇f||² for either sign: the variance bound is attained at X_0.
    grads = problem.stochastic_grads(x0[None], 5, simsgd.streams.NodeStreams(0, [0], range(5)).at(1))
    deviation = np.sum((grads - problem.grad(x0)) ** 2, axis=(-2, -1))
    np.testing.assert_allclose(deviation, problem.variance)
    # finite-difference gradient at a generic point
    x = np.random.default_rng(2).standard_normal((7, 6)) * 0.3
    direction = np.random.default_rng(3).standard_normal((7, 6))
    h = 1e-6
    numeric = (problem.loss(x + h * direction) - problem.loss(x - h * direction)) / (2 * h)
    assert numeric == pytest.approx(np.sum(problem.grad(x) * direction), rel=1e-6)


def test_random_basis_is_a_rotation_of_the_aligned_problem():
    aligned = GeneralCounterexample(5, 4, 2, basis="aligned")
    rotated = GeneralCounterexample(5, 4, 2, basis="random", basis_seed=7)
    u, v = rotated.U, rotated.V
    np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-12)
    assert not np.allclose(u, np.eye(5))
    x = np.random.default_rng(5).standard_normal((3, 5, 4))
    np.testing.assert_allclose(rotated.loss(u @ x @ v.T), aligned.loss(x), rtol=1e-12)
    np.testing.assert_allclose(rotated.grad(u @ x @ v.T), u @ aligned.grad(x) @ v.T, atol=1e-12)
    np.testing.assert_allclose(rotated.x0, u @ aligned.x0 @ v.T)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(m=3, signal_rank=2), "m"),
        (dict(n=1), "n"),
        (dict(signal_rank=0), "signal_rank"),
        (dict(noise_scale=-1), "noise_scale"),
        (dict(basis="paper"), "basis"),
    ],
)
def test_general_counterexample_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GeneralCounterexample(**kwargs)


def test_lock_start_freezes_powersgd_and_powersgd_plus_escapes():
    problem = GeneralCounterexample(6, 6, signal_rank=2, basis="aligned", lock_start=True)
    run = dict(RUN, nodes=4, lr=1e-3, steps=200)
    stuck = simsgd.simulate(problem, method="powersgd", rank=2, **run)
    escaped = simsgd.simulate(problem, method="powersgd+", rank=2, restart_period=10, **run)
    assert np.all(stuck.loss == problem.loss(problem.x0))
    assert escaped.loss[:, -1].max() < 1e-3 * problem.loss(problem.x0)
