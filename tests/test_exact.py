"""Claim 1 (Appendix A) in exact rational arithmetic: simsgd.exact."""

import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import simsgd
from simsgd.exact import INVARIANTS, ExactPsi, run_exact
from simsgd.problems import Psi2x2

rationals = st.fractions(min_value=-3, max_value=3, max_denominator=7)
# Q_{-1} must not be orthogonal to C = (1, 1)/√2 in the paper basis (see test_q_orthogonal_to_c).
q_inits = st.tuples(st.integers(-5, 5), st.integers(-5, 5)).filter(lambda q: q[0] + q[1] != 0)


@given(
    x0=st.tuples(rationals, rationals, rationals, rationals),
    sigma=st.fractions(min_value=Fraction(1, 10), max_value=20, max_denominator=10),
    q_init=q_inits,
    nodes=st.integers(1, 5),
    optimizer=st.sampled_from(["sgd", "msgd", "adam"]),
    lr=st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(1, 2), max_denominator=1000),
    seed=st.integers(0, 10_000),
)
def test_claim1_invariants_hold_exactly(x0, sigma, q_init, nodes, optimizer, lr, seed):
    """From ξ_0 ≡ 1, with P̃_{t-1} kept on a degenerate step, every invariant holds at every
    step, and ||∇f(X_t)||² = 4ψ'(⟨A, X_0⟩)² exactly, for any X_0, σ > 0, Q_{-1}, N, η."""
    run = run_exact(
        sigma,
        nodes,
        25,
        x0=x0,
        q_init=q_init,
        lr=lr,
        optimizer=optimizer,
        seed=seed,
        degenerate_qr="previous",
    )
    assert run.outcome == "held", (run.broken_invariant, run.broken_at)
    assert run.steps_run == 25
    s = x0[0] - x0[1] - x0[2] + x0[3]
    assert run.target == 4 * (2 * min(max(s, -1), 1)) ** 2
    if optimizer != "adam":
        assert all(g == run.target for g in run.grad_norm_sq)
        moved = np.array(run.x, dtype=object) - np.array(x0, dtype=object)
        assert moved[0] == moved[1] == moved[2] == moved[3]  # X_T − X_0 ∈ span(B)


@pytest.mark.parametrize("basis", ["paper", "aligned", "pythagorean"])
def test_exact_problem_data(basis):
    p = ExactPsi(basis)
    A, B, c = p.A, p.B, p.c
    assert sum(a * a for a in A) == 4 and sum(b * b for b in B) == 4
    assert sum(a * b for a, b in zip(A, B)) == 0
    # B = 2 C Cᵀ with C = c/||c||
    cc = c[0] ** 2 + c[1] ** 2
    assert B == tuple(2 * u * v / cc for u in c for v in c)


def _xi_with_balanced_step(nodes, steps, at):
    xi = np.ones((steps, nodes), dtype=int)
    xi[1::2] = -1  # some noise, Σ_i ξ_t^{(i)} ≠ 0 off step `at`
    xi[at] = [1, -1] * (nodes // 2)  # Σ_i ξ_at^{(i)} = 0  ->  P_at = 0
    return xi


@pytest.mark.parametrize("nodes", [2, 4])
def test_degenerate_step_under_each_convention(nodes):
    xi = _xi_with_balanced_step(nodes, 20, at=3)
    common = dict(xi=xi, q_init=(1, 2), lr="1/100")
    prev = run_exact(5, nodes, 20, degenerate_qr="previous", **common)
    assert prev.outcome == "held" and 3 in prev.degenerate_steps
    # Σξ_3 = 0 makes Q_3 = 0, so P_4 = Δ_4 Q_3 = 0 as well: degenerate steps come in pairs.
    assert 4 in prev.degenerate_steps

    lapack = run_exact(5, nodes, 20, degenerate_qr="native", **common)
    assert (lapack.outcome, lapack.broken_invariant, lapack.broken_at) == ("broken", INVARIANTS[0], 3)
    # ... and the rest of the run leaves the lock: X moves off span(B) at once
    go_on = run_exact(5, nodes, 20, degenerate_qr="native", stop_on=(INVARIANTS[4],), **common)
    assert go_on.broken_invariant == INVARIANTS[0] and go_on.outcome == "broken"
    assert go_on.steps_run == 4  # stopped on X − X_0 ∉ span(B) at t = 3

    # LAPACK's e₁ is C itself in the aligned basis: there the lock survives.
    assert run_exact(5, nodes, 20, degenerate_qr="native", basis="aligned", **common).outcome == "held"

    zero = run_exact(5, nodes, 20, degenerate_qr="zero", **common)
    assert (zero.broken_invariant, zero.broken_at, zero.frozen_from) == (INVARIANTS[2], 3, 3)
    # P̃ = 0 puts σβB into the error and Q = 0 from then on: X freezes, the conclusion holds.
    frozen = run_exact(5, nodes, 20, degenerate_qr="zero", stop_on=(INVARIANTS[5],), **common)
    assert frozen.conclusion_broken_at is None and frozen.steps_run == 20
    assert all(g == frozen.target for g in frozen.grad_norm_sq)

    torch_like = run_exact(5, nodes, 20, degenerate_qr="raise", **common)
    assert (torch_like.outcome, torch_like.broken_at) == ("undefined", 3)


@pytest.mark.parametrize("q_init, sigma", [((1, -1), 5), ((2, 3), 0)])
def test_claim1_fails_when_p0_is_zero(q_init, sigma):
    """P_0 = σ B Q_{-1} = 0 when Q_{-1} ⊥ C or σ = 0: Claim 1's P̃_0 = C has no ground."""
    run = run_exact(sigma, 3, 10, q_init=q_init, degenerate_qr="previous")
    assert run.degenerate_steps[:1] == [0]
    assert (run.broken_invariant, run.broken_at) == (INVARIANTS[0], 0)


def test_adam_leaves_span_b_in_a_rotated_basis():
    """Adam's elementwise √v̂ is not rotation-equivariant (Remark 3 needs B's entries equal)."""
    assert run_exact(5, 4, 30, optimizer="adam", basis="paper").outcome == "held"
    run = run_exact(5, 4, 30, optimizer="adam", basis="pythagorean")
    assert (run.broken_invariant, run.broken_at) == (INVARIANTS[4], 0)
    assert run_exact(5, 4, 30, optimizer="msgd", basis="pythagorean").outcome == "held"


def test_matches_the_float_engine_in_the_aligned_basis():
    """Same seed and replica: same ξ, same degenerate steps, same X_T up to rounding."""
    steps, nodes = 60, 4
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    for replica in (0, 1):
        trace = simsgd.simulate(
            problem,
            method="powersgd",
            nodes=nodes,
            optimizer="msgd",
            lr=1e-3,
            momentum=0.9,
            steps=steps,
            replica_ids=np.array([replica]),
            seed=3,
        )
        run = run_exact(5, nodes, steps, basis="aligned", lr="0.001", seed=3, replica=replica)
        assert run.outcome == "held"
        assert np.flatnonzero(trace.degenerate_per_step).tolist() == run.degenerate_steps
        np.testing.assert_allclose(trace.x[0].ravel(), [float(v) for v in run.x], rtol=1e-12, atol=1e-12)


def test_budget_stops_the_run():
    run = run_exact(5, 4, 1000, max_bits=64)
    assert run.outcome == "budget" and 0 < run.steps_run < 1000 and "bits" in run.note
    assert run.stopped_by == "bits"


def test_time_bound_counts_the_noise_and_draws_only_what_is_used():
    # T = 10⁶ steps: drawing every ξ_t up front took about 0.2 s per 1000 steps before the
    # first step, outside the time bound; now a run stopped after 0.2 s returns within it.
    start = time.monotonic()
    run = run_exact(5, 4, 10**6, basis="aligned", max_seconds=0.2)
    assert time.monotonic() - start < 1.0
    assert run.outcome == "budget" and run.stopped_by == "seconds" and len(run.xi) == run.steps_run
    done = run_exact(5, 4, 30, basis="aligned")  # control: a run that ends is not "stopped"
    assert done.outcome == "held" and done.stopped_by is None and len(done.xi) == 30


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(noise_scale=-1), "noise_scale"),
        (dict(nodes=0), "nodes"),
        (dict(steps=0), "steps"),
        (dict(optimizer="lion"), "optimizer"),
        (dict(degenerate_qr="pivot"), "degenerate_qr"),
        (dict(basis="random"), "basis"),
        (dict(momentum=1), "momentum"),
        (dict(lr=0), "lr"),
        (dict(x0=[1, 2, 3]), "x0"),
        (dict(q_init=[1]), "q_init"),
        (dict(xi=np.ones((3, 3))), "xi"),
        (dict(stop_on=("nope",)), "stop_on"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    base = dict(noise_scale=5, nodes=2, steps=5)
    with pytest.raises(ValueError, match=name):
        run_exact(**{**base, **kwargs})


def test_decoupled_weight_decay_leaves_the_lock_exactly():
    """MSGD with decoupled decay λ: ⟨A, X_t⟩ = 2(1 − ηλ)^t exactly while every basis invariant
    holds (X_t − (1 − ηλ)^t X_0 ∈ span(B)), so ||∇f||² first drops below 16 at the first t
    with (1 − ηλ)^{t+1} < 1/2: t = 138 for η = 1/100, λ = 1/2. Without decay it stays at 16."""
    common = dict(lr="1/100", optimizer="msgd", degenerate_qr="native", stop_on=(INVARIANTS[5],))
    decayed = run_exact(5, 3, 150, weight_decay="1/2", **common)
    t = next(t for t in range(1000) if Fraction(199, 200) ** (t + 1) < Fraction(1, 2))
    assert decayed.broken_invariant == INVARIANTS[5] and decayed.broken_at == t == 138
    assert decayed.grad_norm_sq[-1] < 16
    assert run_exact(5, 3, 150, weight_decay=0, **common).outcome == "held"
    with pytest.raises(ValueError, match="weight_decay"):
        run_exact(5, 3, 5, weight_decay="1/2", optimizer="adam")


def test_exact_step_is_pure():
    from simsgd.exact import ExactState, Invariant, _Options, exact_step

    assert tuple(i.value for i in Invariant) == INVARIANTS
    problem = ExactPsi("paper")
    zero4 = (Fraction(0),) * 4
    state = ExactState(problem.x0, zero4, zero4, (zero4, zero4), (Fraction(1), Fraction(2)))
    options = _Options((Fraction(5), Fraction(10)), Fraction(9, 10), "msgd", "native", Fraction(0))
    first = exact_step(problem, state, (1, -1), Fraction(1, 1000), options)
    again = exact_step(problem, state, (1, -1), Fraction(1, 1000), options)
    assert first == again and state.x == problem.x0 and not first.degenerate
