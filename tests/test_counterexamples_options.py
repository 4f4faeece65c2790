"""Issue 12: per-node noise scales, the degeneracy test relative to P's inputs, AdamW and
PowerSGD+'s lighter restarts (Remark 2). Every check has a control that fails it."""

import numpy as np
import pytest

import simsgd
from simsgd.compressors import restart_floats
from simsgd.exact import run_exact
from simsgd.orthogonalize import orthogonalize_checked
from simsgd.problems import GeneralCounterexample, Psi2x2

LOCK = dict(method="powersgd", rank=1, optimizer="msgd", lr=5e-4, momentum=0.9, seed=0, progress=False)


# ------------------------------------------------------------------ per-node σ


def test_equal_per_node_scales_are_the_scalar_draw_for_draw():
    a = simsgd.simulate(Psi2x2(5.0, basis="paper", lock_start=True), nodes=2, steps=60, replicas=20, **LOCK)
    b = simsgd.simulate(
        Psi2x2([5.0, 5.0], basis="paper", lock_start=True), nodes=2, steps=60, replicas=20, **LOCK
    )
    np.testing.assert_array_equal(a.grad_norm_sq, b.grad_norm_sq)


@pytest.mark.parametrize(
    "value, match",
    [
        ([5.0, float("nan")], r"noise_scale\[1\]"),
        ([5.0, -1.0], r"noise_scale\[1\]"),
        (float("inf"), "noise_scale"),
        (1e200, "noise_scale"),  # 4σ² + 16 would overflow
        ([], "non-empty"),
    ],
)
def test_bad_noise_scales_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        Psi2x2(value)
    with pytest.raises(ValueError, match=match):
        GeneralCounterexample(4, 4, 2, noise_scale=value)


def test_per_node_scales_fix_the_number_of_nodes():
    problem = Psi2x2([5.0, 10.0])
    assert problem.variance == 4 * 10.0**2 + 16 and problem.nodes == 2
    with pytest.raises(ValueError, match="nodes must equal"):
        simsgd.simulate(problem, nodes=3, steps=2, replicas=2, progress=False)


def test_unequal_scales_repair_the_even_n_construction_in_exact_arithmetic():
    """Paper basis, LAPACK's QR(0) = e₁: σ = (5, 5) breaks Claim 1, σ = (5, 10) keeps it."""
    common = dict(basis="paper", degenerate_qr="native", lr="1/1000", momentum="9/10")
    for replica in range(4):
        equal = run_exact(5, 2, 40, replica=replica, **common)
        assert equal.outcome == "broken" and equal.degenerate_steps  # the control
        unequal = run_exact(["5", "10"], 2, 40, replica=replica, **common)
        assert unequal.outcome == "held" and not unequal.degenerate_steps
    with pytest.raises(ValueError, match="noise_scale must have nodes = 3"):
        run_exact([5, 10], 3, 5)


# ------------------------------------------------------------------ degeneracy


def test_balanced_steps_are_flagged_in_the_paper_basis():
    """N = 4, σ = 25, LAPACK QR, lock forced: the first 10 steps are flagged as often as exact
    zeros give (0 + 3/8 + 8·0.609)/10 = 0.525; the reading relative to P's own size sees
    almost none of them (the control: the old test)."""
    problem = Psi2x2(25.0, basis="paper", lock_start=True)
    trace = simsgd.simulate(problem, nodes=4, steps=10, replicas=2000, orthogonalization="lapack", **LOCK)
    flagged = trace.degenerate_per_step.sum() / (2000 * 10)
    own = trace.degenerate_own_scale.sum() / (2000 * 10)
    p = 6 / 16
    expected = (0 + p + 8 * (1 - (1 - p) ** 2)) / 10
    assert abs(flagged - expected) < 0.02
    assert own < 0.1
    assert np.all(trace.grad_norm_sq == 16.0)  # "previous" now keeps the lock


def test_previous_keeps_the_good_columns_for_rank_above_one():
    rng = np.random.default_rng(0)
    good = rng.standard_normal(5)
    p = np.stack([good, 2 * good, rng.standard_normal(5)], axis=-1)[None]  # column 1 ∈ span(column 0)
    previous = np.linalg.qr(rng.standard_normal((1, 5, 3)))[0]
    out = orthogonalize_checked(p, method="lapack", previous=previous, degenerate_qr="previous")
    basis = out.basis[0]
    assert bool(out.degenerate[0])
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    # the column space of P (rank 2) is kept: both good directions lie in span(P̃)
    for v in (good, p[0, :, 2]):
        np.testing.assert_allclose(basis @ (basis.T @ v), v, atol=1e-12)
    # the control: the whole-basis replacement would lose them
    assert np.linalg.norm(previous[0] @ (previous[0].T @ good) - good) > 1e-3


# ------------------------------------------------------------------ AdamW


def test_adamw_leaves_the_lock_and_adam_does_not():
    """Aligned basis, lock forced: Adam's X stays in X_0 + span(B) (||∇f||² = 16); AdamW's
    decay shrinks ⟨A, X_t⟩ = (1 − ηλ)^t·2, so ||∇f|| → 0."""
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    common = dict(method="powersgd", nodes=4, lr=1e-2, steps=3000, replicas=16, seed=0, progress=False)
    adam = simsgd.simulate(problem, optimizer="adam", **common)
    adamw = simsgd.simulate(problem, optimizer="adamw", weight_decay=0.2, **common)
    assert np.all(adam.grad_norm_sq[:, -1] == 16.0)
    inner = 2 * (1 - 1e-2 * 0.2) ** 3000
    np.testing.assert_allclose(adamw.grad_norm_sq[:, -1], 4 * (2 * inner) ** 2, rtol=1e-6)
    assert adamw.grad_norm_sq[:, -1].max() < 0.1
    same = simsgd.simulate(problem, optimizer="adamw", weight_decay=0.0, **common)  # λ = 0 is Adam
    np.testing.assert_array_equal(same.grad_norm_sq, adam.grad_norm_sq)


def test_adam_refuses_weight_decay():
    with pytest.raises(ValueError, match="weight_decay"):
        simsgd.simulate(Psi2x2(), optimizer="adam", weight_decay=0.1, steps=1, replicas=1, progress=False)


# ------------------------------------------------------------------ lighter restarts


@pytest.mark.parametrize("restart", ["svd", "randomized", "random", "power"])
def test_every_restart_leaves_the_lock(restart):
    """ψ, aligned basis, lock forced, η = 5e-3, τ = 10, T = 1000: PowerSGD stays at 16 in every
    run (the control). PowerSGD+ leaves it with every restart; the random and power restarts
    (whose basis always has a component along A) free all runs, the SVD restart (which picks
    the strong noise direction B while the error along A is smaller) leaves ~40% at 16."""
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    common = dict(nodes=4, lr=5e-3, momentum=0.9, steps=1000, replicas=32, seed=0, progress=False)
    trace = simsgd.simulate(problem, method="powersgd+", restart_period=10, restart=restart, **common)
    final = trace.grad_norm_sq[:, -1]
    assert final.mean() < 0.7 * 16
    if restart in ("random", "power"):
        assert np.mean(final < 1e-3) > 0.9
    assert trace.floats_sent[0] == restart_floats(trace_config(trace), 2, 2)
    again = simsgd.simulate(problem, method="powersgd+", restart_period=10, restart=restart, **common)
    np.testing.assert_array_equal(again.grad_norm_sq, trace.grad_norm_sq)  # seeded


def test_powersgd_keeps_the_lock():
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    stuck = simsgd.simulate(
        problem, method="powersgd", nodes=4, lr=5e-3, steps=1000, replicas=32, progress=False
    )
    assert np.all(stuck.grad_norm_sq[:, -1] == 16.0)


def trace_config(trace):
    return simsgd.Config(
        **{
            k: trace.config[k]
            for k in ("method", "rank", "restart_period", "optimizer", "momentum", "restart")
            + ("restart_oversampling", "restart_power_steps")
        }
    )


def test_restart_floats():
    from dataclasses import replace

    cfg = simsgd.Config(
        method="powersgd+", rank=2, restart_period=10, optimizer="msgd", momentum=0.9, restart="randomized"
    )
    m, n, width = 12, 10, 7  # ℓ = r + p = 7, K = 1
    assert restart_floats(cfg, m, n) == m * width + (m + n) * width + n * width + n * 2
    assert restart_floats(replace(cfg, restart="random"), m, n) == n * 2
    assert restart_floats(replace(cfg, restart="power"), m, n) == (m + n) * 2
    assert restart_floats(replace(cfg, restart="svd"), m, n) == m * n + n * 2


def test_random_restart_contracts_only_in_expectation():
    """Lemma 2's residual ||Δ̂ − Δ̄||²/||Δ̄||² at restarts: 0 ≤ · ≤ 1 for every compressor (a
    projector), near 0 for the SVD on a rank-r Δ̄, and about 1 − r/m for a random basis."""
    problem = GeneralCounterexample(16, 16, 1, noise_scale=5.0, basis="random")
    common = dict(
        method="powersgd+", nodes=4, rank=1, restart_period=5, lr=1e-3, steps=200, replicas=64, seed=0
    )
    svd = simsgd.simulate(problem, restart="svd", progress=False, **common).restart_residual
    rnd = simsgd.simulate(problem, restart="random", progress=False, **common).restart_residual
    assert np.all((svd >= 0) & (svd <= 1 + 1e-12)) and np.all((rnd >= 0) & (rnd <= 1 + 1e-12))
    assert np.mean(svd) < np.mean(rnd)
    assert np.mean(rnd) > 0.8  # δ' ≈ r/m = 1/16 at best: not the SVD's guarantee


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--N", "3", "--sigma", "5,10"], "--sigma: must be one value or --N = 3"),
        (["--N", "2", "--sigma", "5,-1"], "--sigma"),
        (["--N", "2", "--sigma", "5,nan"], "--sigma"),
    ],
)
def test_cli_sigma_list_errors_are_one_line(argv, match, capsys):
    from simsgd import cli
    from simsgd.counterexample import main

    assert cli.run(main, argv + ["--steps", "2", "--replicas", "2"]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
