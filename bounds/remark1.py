"""Remark 1: at Corollary 1's step size, τ stops mattering as T → ∞.

For each τ and T, PowerSGD+ and uncompressed MSGD (``method="full"``) run on the same
seeds at Corollary 1's η for that T; the ratio of their (1/T) Σ E||∇f(X_t)||² has a
paired-bootstrap interval. Remark 1 holds on the instance if the ratio tends to 1 for
every τ (its interval at the largest T contains 1, or is closer to 1 than at the smallest).
"""

from __future__ import annotations

import simsgd
from simsgd import theory
from simsgd.stats import mean_bounds, ratio_bounds

from . import problems

__all__ = ["SPEC", "run"]

SPEC = {"family": "quadratic", "m": 6, "n": 4, "heterogeneity": 0.5}
SETTING = dict(nodes=4, rank=1, momentum=0.5)


def run(taus, steps, replicas: int, seed: int, alpha: float = 0.05) -> dict:
    """The Remark 1 table: one entry per (τ, T), and a verdict per τ."""
    N, r, mu = SETTING["nodes"], SETTING["rank"], SETTING["momentum"]
    problem = problems.make(SPEC, N)
    c = theory.constants(problem, problems.grad_norm_sq_at_start(problem))  # ω² ≥ its t = 0 value
    d = theory.delta(r, problem.shape)
    rows = []
    for tau in taus:
        for T in steps:
            lr = theory.corollary1_lr(c, momentum=mu, restart_period=tau, delta=d, nodes=N, steps=T)
            kw = dict(
                nodes=N, rank=r, optimizer="msgd", lr=lr, momentum=mu, steps=T, replicas=replicas, seed=seed
            )
            kw["progress"] = False
            plus = simsgd.simulate(problem, method="powersgd+", restart_period=tau, **kw)
            full = simsgd.simulate(problem, method="full", **kw)
            y, z = plus.grad_norm_sq[:, :T].mean(axis=1), full.grad_norm_sq[:, :T].mean(axis=1)
            rows.append(
                dict(
                    tau=tau,
                    T=T,
                    lr=lr,
                    powersgd_plus=mean_bounds(y, alpha).to_dict(),
                    msgd=mean_bounds(z, alpha).to_dict(),
                    ratio=ratio_bounds(y, z, alpha, seed=seed).to_dict(),
                )
            )
    verdicts = {}
    for tau in taus:
        mine = [row["ratio"] for row in rows if row["tau"] == tau]
        first, last = mine[0], mine[-1]
        if last["lower"] <= 1.0 <= last["upper"]:
            verdicts[tau] = f"tends to 1: interval at T = {steps[-1]} contains 1"
        elif abs(last["mean"] - 1.0) < abs(first["mean"] - 1.0):
            verdicts[tau] = (
                f"approaching 1 ({first['mean']:.4g} → {last['mean']:.4g}), not yet within the interval"
            )
        else:
            verdicts[tau] = f"not approaching 1 ({first['mean']:.4g} → {last['mean']:.4g})"
    return dict(
        problem=problems.label(SPEC), spec=SPEC, **SETTING, rows=rows, verdicts=verdicts, replicas=replicas
    )
