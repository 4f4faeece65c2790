"""Lemmas 3, 4 and Theorem 4 of PowerSGD+ (MSGD) against Monte Carlo measurement."""

from __future__ import annotations

import simsgd
from simsgd import theory
from simsgd.stats import max_mean_bounds, mean_bounds

from .problems import psi, quadratic
from .report import Row

__all__ = ["GRID", "make_problem", "check_run", "corollary_run", "run"]

# (problem factory args, N, r, τ, μ): several τ, r, N, μ per problem.
GRID = {
    "quick": [
        (("psi", "paper"), 4, 1, 4, 0.5),
        (("psi", "paper"), 2, 1, 16, 0.0),
        (("psi", "paper"), 8, 2, 1, 0.9),
        (("psi", "aligned"), 4, 1, 4, 0.5),
        (("psi", "aligned"), 3, 1, 8, 0.9),
        (("psi", "aligned"), 1, 1, 2, 0.0),
        (("quadratic",), 4, 1, 4, 0.5),
        (("quadratic",), 2, 2, 8, 0.0),
        (("quadratic",), 8, 3, 1, 0.9),
    ],
}
GRID["full"] = GRID["quick"] + [
    (("psi", "paper"), 5, 1, 32, 0.9),
    (("psi", "aligned"), 16, 2, 4, 0.5),
    (("quadratic",), 4, 1, 32, 0.0),
    (("quadratic",), 16, 2, 2, 0.5),
]


def make_problem(spec, nodes):
    """(problem, label) for a GRID entry: ψ in the named basis, or the quadratic with N nodes."""
    return psi(spec[1]) if spec[0] == "psi" else quadratic(nodes)


def check_run(
    problem, label, *, nodes, rank, restart_period, momentum, steps, replicas, seed, lr=None, alpha=0.05
):
    """Run PowerSGD+ with MSGD once and set Lemma 3, Lemma 4 and Theorem 4 beside their bounds.

    The step size defaults to the largest Theorem 4 allows, η = (1 − μ)/(2L).

    Returns
    -------
    list of Row
        Lemma 3 (max_t E||mean e_t||², t = 0..T), Lemma 4 (max_t E||m_t||², t = 0..T−1)
        and Theorem 4 ((1/T) Σ_{t<T} E||∇f(X_t)||²), in that order.
    """
    L = float(problem.L)
    lr = (1.0 - momentum) / (2.0 * L) if lr is None else lr
    trace = simsgd.simulate(
        problem,
        method="powersgd+",
        nodes=nodes,
        rank=rank,
        restart_period=restart_period,
        optimizer="msgd",
        lr=lr,
        momentum=momentum,
        steps=steps,
        replicas=replicas,
        seed=seed,
        progress=False,
    )
    omega_sq = (
        None
        if isinstance(problem, simsgd.problems.Psi2x2)
        else theory.visited_omega_sq(trace.grad_norm_sq, alpha)
    )
    c = theory.constants(problem, omega_sq)
    d = theory.delta(rank, problem.shape)
    note = "ω² visited" if c.omega_sq_source == "visited" else ""
    params = dict(N=nodes, r=rank, δ=round(d, 4), τ=restart_period, μ=momentum, η=lr, T=steps)
    terms = theory.theorem4_terms(
        c, lr=lr, momentum=momentum, restart_period=restart_period, delta=d, nodes=nodes, steps=steps
    )
    common = dict(study="checks", problem=label, params=params, notes=note, constants=c.to_dict())
    return [
        Row(
            statement="Lemma 3: max_t E‖ē_t‖² ≤ 45τ²G²/δ²",
            measured=max_mean_bounds(trace.error_norm_sq, alpha),
            bound=theory.lemma3_bound(restart_period, c.G_sq, d),
            **common,
        ),
        Row(
            statement="Lemma 4: max_t E‖m_t‖² ≤ 92τ²G²/((1−μ)²δ²)",
            measured=max_mean_bounds(trace.momentum_norm_sq[:, 1:], alpha),
            bound=theory.lemma4_bound(restart_period, c.G_sq, d, momentum),
            **common,
        ),
        Row(
            statement="Theorem 4: (1/T)Σ E‖∇f(X_t)‖² ≤ RHS",
            measured=mean_bounds(trace.grad_norm_sq[:, :steps].mean(axis=1), alpha),
            bound=terms.total,
            terms=terms._asdict(),
            **common,
        ),
    ]


def corollary_run(
    problem, label, *, nodes, rank, restart_period, momentum, steps, replicas, seed, alpha=0.05
):
    """PowerSGD+ at Corollary 1's step size against Corollary 1's rate (one Row)."""
    c = theory.constants(problem)
    d = theory.delta(rank, problem.shape)
    kw = dict(momentum=momentum, restart_period=restart_period, delta=d, nodes=nodes, steps=steps)
    lr = theory.corollary1_lr(c, **kw)
    trace = simsgd.simulate(
        problem,
        method="powersgd+",
        nodes=nodes,
        rank=rank,
        restart_period=restart_period,
        optimizer="msgd",
        lr=lr,
        momentum=momentum,
        steps=steps,
        replicas=replicas,
        seed=seed,
        progress=False,
    )
    rate = theory.corollary1_rate(c, **kw)
    return Row(
        study="checks",
        statement="Corollary 1: (1/T)Σ E‖∇f(X_t)‖² ≤ rate at its η",
        problem=label,
        params=dict(N=nodes, r=rank, δ=round(d, 4), τ=restart_period, μ=momentum, η=lr, T=steps),
        measured=mean_bounds(trace.grad_norm_sq[:, :steps].mean(axis=1), alpha),
        bound=rate.total,
        terms=rate._asdict(),
        constants=c.to_dict(),
    )


def run(mode: str, seed: int, steps: int, replicas: int):
    """All of :data:`GRID` [mode], as a list of Row."""
    rows = []
    for spec, nodes, rank, tau, mu in GRID[mode]:
        problem, label = make_problem(spec, nodes)
        if spec[0] == "quadratic":
            label = f"{label} N={nodes}"
        rows += check_run(
            problem,
            label,
            nodes=nodes,
            rank=rank,
            restart_period=tau,
            momentum=mu,
            steps=steps,
            replicas=replicas,
            seed=seed,
        )
    problem, label = psi("paper")
    rows.append(
        corollary_run(
            problem,
            label,
            nodes=4,
            rank=1,
            restart_period=4,
            momentum=0.5,
            steps=steps,
            replicas=replicas,
            seed=seed,
        )
    )
    return rows
