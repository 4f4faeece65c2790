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

__all__ = ["INSTANCES", "run"]

# (spec, N, r, μ): a quadratic, and ψ with the lock forced (PowerSGD+ then moves along the
# signal only at restarts, so compression matters most; ξ_0 = 1 is outside Assumption 2 at t = 0).
INSTANCES = [
    ({"family": "quadratic", "m": 6, "n": 4, "heterogeneity": 0.5}, 4, 1, 0.5),
    ({"family": "psi", "basis": "aligned", "noise_scale": 1.0, "lock_start": True}, 1, 1, 0.0),
]


def run(instance, taus, steps, replicas: int, seed: int, alpha: float = 0.05) -> dict:
    """The Remark 1 table of one instance: one entry per (τ, T), and a verdict per τ."""
    spec, N, r, mu = instance
    problem = problems.make(spec, N)
    own = getattr(problem, "omega_sq", None)  # the quadratic's ω²: its t = 0 value, ≤ the visited max
    c = theory.constants(problem, None if own is not None else problems.grad_norm_sq_at_start(problem))
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
                f"approaching 1 ({first['mean']:.6g} → {last['mean']:.6g}), not yet within the interval"
            )
        else:
            verdicts[tau] = f"not approaching 1 ({first['mean']:.6g} → {last['mean']:.6g})"
    return dict(
        problem=problems.label(spec),
        spec=spec,
        nodes=N,
        rank=r,
        momentum=mu,
        rows=rows,
        verdicts=verdicts,
        replicas=replicas,
    )
