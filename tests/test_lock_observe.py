"""ψ's shift, and what :func:`simsgd.lock.observe` records (P̃_t, ⟨A, X_t⟩, degenerate steps, restarts)."""

import numpy as np
import pytest

import simsgd
from simsgd.lock import lock_spaces, observe, share, simulate_lock
from simsgd.problems import GeneralCounterexample, Psi2x2
from simsgd.problems.psi import psi, psi_prime

RUN = dict(nodes=4, optimizer="msgd", lr=5e-4, momentum=0.9, seed=0, progress=False)


def test_shift_zero_is_eq_10_bit_for_bit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2, 2)) * 3
    plain, zero = Psi2x2(5.0), Psi2x2(5.0, shift=0.0)
    inner = np.einsum("ij,rij->r", plain.A, x)
    assert np.array_equal(zero.loss(x), psi(inner)) and np.array_equal(zero.grad(x), plain.grad(x))


def test_shifted_minimiser_and_constants():
    problem = Psi2x2(5.0, shift=2.0)
    at_min = -0.5 * problem.A  # ⟨A, A⟩ = 4, so ⟨A, X⟩ = −2
    assert problem.loss(at_min) == 0 and np.all(problem.grad(at_min) == 0)
    assert np.sum(problem.grad(problem.x0) ** 2) == 16.0  # ψ'(2 + 2) = 2
    assert problem.epsilon0(4) == 1.0
    assert (problem.L, problem.omega_sq, problem.variance) == (8.0, 16.0, 4 * 25 + 16)
    # control: X = 0, weight decay's fixed point, is eq. (10)'s minimiser but not the shifted one's
    zero = np.zeros((2, 2))
    assert Psi2x2(5.0).loss(zero) == 0 and problem.loss(zero) == psi(2.0) == 3.0
    assert Psi2x2(5.0, shift=-2.0).epsilon0(4) == 4 * psi_prime(0.0) ** 2 / 16 == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "2"])
def test_shift_must_be_a_finite_real(bad):
    with pytest.raises(ValueError, match="shift"):
        Psi2x2(5.0, shift=bad)


def test_adamw_keeps_the_shifted_lock_and_follows_the_closed_form():
    """⟨A, X_t⟩ = 2(1 − ηλ)^t on the lock; ||∇f||² stays 16 shifted, falls on eq. (10)."""
    lr, decay, steps = 1e-2, 0.2, 400
    form = 2.0 * (1 - lr * decay) ** np.arange(steps + 1)
    runs = {}
    for shift in (2.0, 0.0):
        problem = Psi2x2(5.0, basis="aligned", lock_start=True, shift=shift)
        runs[shift] = observe(
            problem,
            method="powersgd",
            optimizer="adamw",
            weight_decay=decay,
            lr=lr,
            nodes=4,
            steps=steps,
            replicas=4,
            progress=False,
        )
        gap = np.abs(runs[shift].inner - form) / form
        assert gap.max() <= 4 * steps * np.finfo(float).eps
    assert np.all(runs[2.0].trace.grad_norm_sq == 16.0)
    final = runs[0.0].trace.grad_norm_sq[:, -1]  # the control: decay releases eq. (10)'s lock
    assert np.allclose(final, 16 * form[-1] ** 2, rtol=1e-12) and np.all(final < 16)


def test_observe_records_the_locked_basis_and_matches_simulate_lock():
    """``details`` add records, never change the run: simulate_lock (no probe) gives the same trace."""
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    seen = observe(problem, method="powersgd", steps=60, replicas=8, **RUN)
    noise, signal = lock_spaces(problem)
    assert seen.bases.shape == (8, 60, 2, 1) and seen.degenerate.shape == seen.restart.shape == (8, 60)
    assert np.all(share(seen.bases, noise) == 1) and np.all(share(seen.bases, signal) == 0)
    assert np.all(seen.inner == 2.0) and seen.locked.all() and not seen.restart.any()
    # N = 4: Σξ = 0 makes P = 0 (and Q = 0 the step after); the convention was applied there
    assert 0 < seen.degenerate.mean() < 1
    trace, locked = simulate_lock(problem, method="powersgd", steps=60, replicas=8, **RUN)
    assert np.array_equal(locked, seen.locked) and np.array_equal(trace.x, seen.trace.x)


def test_observe_sees_the_svd_restart_pick_the_signal():
    """Claim 1's lock forced: the SVD at t = 10 picks A; PowerSGD (the control) never does."""
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    plus = observe(problem, method="powersgd+", restart_period=10, steps=30, replicas=8, **RUN)
    plain = observe(problem, method="powersgd", steps=30, replicas=8, **RUN)
    signal = lock_spaces(problem)[1]
    assert np.array_equal(plus.restart[0], np.arange(30) % 10 == 0)
    assert np.all(share(plus.bases[:, 10], signal) > 0.5) and np.all(plus.inner[:, :11] == 2.0)
    assert np.all(plus.inner[:, 11] < 2.0) and not plus.in_span[:, 11].any()
    assert np.all(share(plain.bases, signal) == 0) and plain.in_span.all()


def test_observe_without_a_basis_and_on_the_general_counterexample():
    problem = GeneralCounterexample(8, 6, signal_rank=2, noise_scale=5.0, lock_start=True)
    seen = observe(problem, method="powersgd", rank=2, steps=20, replicas=4, **RUN)
    noise, signal = lock_spaces(problem)
    assert noise.shape == signal.shape == (8, 2) and np.allclose(noise.T @ signal, 0)
    # rank 2: ||P̃ᵀU||² is a sum of products of rounded orthonormal columns, 1 to a few eps
    assert seen.inner.shape == (4, 21, 2) and np.all(
        np.abs(share(seen.bases, noise) - 1) <= 8 * np.finfo(float).eps
    )
    full = observe(Psi2x2(5.0), method="full", steps=5, replicas=2, **RUN)
    assert full.bases is None and not full.degenerate.any()


def test_torch_asnumpy_reads_bfloat16():
    torch = pytest.importorskip("torch")
    from simsgd.torch_ops import TorchOps

    x = torch.tensor([1.0, 1.0 + 2.0**-7, 3.0], dtype=torch.bfloat16)
    out = TorchOps.asnumpy(x)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 1.0 + 2.0**-7, 3.0]


def test_adam_keeps_the_lock_on_both_constructions():
    """Remark 3 (Adam, aligned basis): no decay, no release, shifted or not."""
    for shift in (0.0, 2.0):
        problem = Psi2x2(5.0, basis="aligned", lock_start=True, shift=shift)
        trace = simsgd.simulate(
            problem, method="powersgd", optimizer="adam", lr=1e-2, steps=200, replicas=4, progress=False
        )
        assert np.all(trace.grad_norm_sq == 16.0)
