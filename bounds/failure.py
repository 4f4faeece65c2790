"""Where the bound must fail: PowerSGD without restart on the aligned ψ counterexample.

Theorem 1 keeps E‖∇f(X_t)‖² ≥ ε₀ = 16·2^{-N} for PowerSGD (in the aligned basis the lock
of Claim 1 survives floating point), while Theorem 4's right-hand side falls like 1/T to
its η-dependent floor. So for T large enough PowerSGD's (1/T) Σ E‖∇f(X_t)‖² must exceed
the right-hand side that PowerSGD+ with the same η, μ, r, N obeys. The right-hand side is
evaluated at τ = 1, its smallest value over τ (it grows like τ²); for every check where
PowerSGD's violation is confident (its lower confidence bound exceeds the bound) we also report τ_c, the largest τ whose right-hand side is still below
PowerSGD's lower confidence bound. PowerSGD+ (τ = 1 and τ = 4, each against its own
right-hand side) runs on the same seeds as the control: the check is the same, only the
restart differs. Prefix averages of one run give every T (the theorem holds for each T).
"""

from __future__ import annotations

import math

import simsgd
from simsgd import theory
from simsgd.stats import mean_bounds

from .problems import psi
from .report import Row

__all__ = ["SETTINGS", "run"]

SETTINGS = dict(nodes=1, rank=1, momentum=0.0, lr=6e-4, noise_scale=1.0)
STEPS = {"quick": [1000, 2000, 4000], "full": [1000, 2000, 4000, 8000, 16000, 32000]}


def critical_tau(c, measured_lower, *, lr, momentum, delta, nodes, steps) -> int:
    """Largest τ ≥ 0 with Theorem 4's right-hand side(τ) < ``measured_lower`` (0 if none)."""
    t1 = theory.theorem4_terms(
        c, lr=lr, momentum=momentum, restart_period=1, delta=delta, nodes=nodes, steps=steps
    )
    room = measured_lower - t1.optimization - t1.noise
    return max(0, math.ceil(math.sqrt(room / t1.compression)) - 1) if room > 0 else 0


def run(mode: str, seed: int, replicas: int):
    """The failure study; returns a list of Row (PowerSGD, then the PowerSGD+ controls, per T)."""
    s = SETTINGS
    problem, label = psi("aligned", s["noise_scale"])
    c = theory.constants(problem)
    d = theory.delta(s["rank"], problem.shape)
    steps = STEPS[mode]
    common = dict(
        nodes=s["nodes"],
        rank=s["rank"],
        optimizer="msgd",
        lr=s["lr"],
        momentum=s["momentum"],
        steps=steps[-1],
        replicas=replicas,
        seed=seed,
        progress=False,
    )
    traces = {("powersgd", 1): simsgd.simulate(problem, method="powersgd", **common)}
    for tau in (1, 4):
        traces[("powersgd+", tau)] = simsgd.simulate(
            problem, method="powersgd+", restart_period=tau, **common
        )
    rows = []
    for T in steps:
        for (method, tau), trace in traces.items():
            terms = theory.theorem4_terms(
                c, lr=s["lr"], momentum=s["momentum"], restart_period=tau, delta=d, nodes=s["nodes"], steps=T
            )
            est = mean_bounds(trace.grad_norm_sq[:, :T].mean(axis=1))
            name = "PowerSGD (no restart)" if method == "powersgd" else f"PowerSGD+ τ={tau}"
            notes = ""
            if method == "powersgd" and est.lower > terms.total:
                tau_c = critical_tau(
                    c, est.lower, lr=s["lr"], momentum=s["momentum"], delta=d, nodes=s["nodes"], steps=T
                )
                notes = f"exceeds RHS(τ) for every τ ≤ {tau_c}"
            rows.append(
                Row(
                    study="failure",
                    statement=f"Theorem 4 RHS(τ={tau}) for {name}",
                    problem=label,
                    params=dict(
                        method=method, N=s["nodes"], r=s["rank"], τ=tau, μ=s["momentum"], η=s["lr"], T=T
                    ),
                    measured=est,
                    bound=terms.total,
                    terms=terms._asdict(),
                    notes=notes,
                    constants=c.to_dict(),
                )
            )
    return rows
