"""Theorem 1's lock in floating point: kept in the aligned (and paper) basis, broken by rounding
in a random one."""

import numpy as np
import pytest

import simsgd
from simsgd.lock import escape_steps, locked_mask, simulate_lock
from simsgd.problems import Psi2x2
from simsgd.stats import wilson_interval

RUN = dict(method="powersgd", nodes=4, optimizer="msgd", lr=5e-4, momentum=0.9, seed=0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_aligned_basis_lock_holds_for_2000_steps(dtype):
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    trace = simsgd.simulate(problem, steps=2000, replicas=32, dtype=dtype, **RUN)
    assert np.all(trace.grad_norm_sq == 16.0)
    assert locked_mask(problem, trace, dtype=dtype).all()
    moved = trace.x - problem.x0  # span(B) = span(diag(1, 0)) here: exact zeros
    assert np.all(moved[:, 0, 1] == 0) and np.all(moved[:, 1, 0] == 0) and np.all(moved[:, 1, 1] == 0)
    # Σξ = 0 (p = 6/16) and the step after it (Q = 0) are degenerate: 1 − (1 − p)² ≈ 0.61
    p = 6 / 16
    assert abs(trace.degenerate_count.mean() / 2000 - (1 - (1 - p) ** 2)) < 0.03


@pytest.mark.parametrize("basis", ["paper", "aligned"])
def test_paper_and_aligned_bases_keep_the_lock(basis):
    """With the core's rank-1 Householder (P̃ = P/β, equal entries stay equal) both hold."""
    problem = Psi2x2(5.0, basis=basis, lock_start=True)
    trace, locked = simulate_lock(problem, steps=300, replicas=32, **RUN)
    assert locked.all() and np.all(trace.grad_norm_sq == 16.0)


def test_random_basis_rounding_breaks_the_lock():
    """The same runs written in a random orthonormal basis all leave the lock within tens of steps."""
    problem = Psi2x2(5.0, basis="random", lock_start=True)
    trace, locked = simulate_lock(problem, steps=300, replicas=64, **RUN)
    escape = escape_steps(locked)
    assert np.all(escape > 0) and np.median(escape) < 20
    grad_escape = escape_steps(np.abs(trace.grad_norm_sq - 16.0) <= 1e-3)
    assert np.all(grad_escape > 0) and np.median(grad_escape) < 100
    assert not locked_mask(problem, trace).any()
    assert np.array_equal(locked[:, -1], locked_mask(problem, trace))


def test_random_start_locked_fraction_matches_2_to_minus_n():
    """From a random ξ_0 the lock catches the runs with ξ_0 ≡ 1, probability 2^(−N)."""
    nodes, replicas = 3, 4000
    problem = Psi2x2(5.0, basis="aligned")
    trace = simsgd.simulate(problem, steps=200, replicas=replicas, **{**RUN, "nodes": nodes})
    k = int(locked_mask(problem, trace).sum())
    low, high = wilson_interval(k, replicas)
    assert low <= 2.0**-nodes <= high


def test_powersgd_plus_converges_where_powersgd_stays_locked():
    """Theorem 4's regime (η ≤ (1 − μ)/(2L) = 1/160): PowerSGD+ drives E||∇f||² towards 0."""
    problem = Psi2x2(5.0, basis="aligned")
    plus = simsgd.simulate(
        problem, steps=600, replicas=300, restart_period=10, **{**RUN, "method": "powersgd+"}
    )
    plain = simsgd.simulate(problem, steps=600, replicas=300, **RUN)
    assert plus.grad_norm_sq[:, -1].mean() < 1e-2
    assert not locked_mask(problem, plus).any()
    assert locked_mask(problem, plain).mean() > 0.03  # 2^-4 = 0.0625 expected
