"""Sweeps that test the form of Theorem 4's rate, not only its inequality.

Every sweep runs PowerSGD+ with MSGD on the heterogeneous quadratic and fits a power law
y ≈ c·x^p to a measured expectation (least squares on logarithms, a percentile bootstrap
over replicas for the interval on p), set beside the exponent the theory predicts:

- ``rate_T``: (1/T) Σ E‖∇f(X_t)‖² with Corollary 1's step size in its T → ∞ regime,
  η = √(2(1−μ)²NΔF/(L·variance·T)): predicted ∝ T^{-1/2} (Remark 1).
- ``speedup_N``: the same with N nodes at fixed T (η ∝ √N): predicted ∝ N^{-1/2}, i.e.
  linear speedup, T = O(1/(Nε²)) (Remark 1). Heterogeneity 0 and a fixed offset
  X_0 − X* keep L and ΔF the same for every N.
- ``tau``: at fixed η, the restart period τ. Lemma 3's quantity, taken in the stationary
  phase as (2/T) Σ_{t>T/2} E‖ē_t‖² (the max over t sits in the first steps, before a
  later restart can matter, so it cannot show a τ-dependence), and the excess of
  (1/T) Σ E‖∇f(X_t)‖² over uncompressed MSGD run on the same seeds (so the gradient noise
  is shared): both predicted ∝ τ² by the third term.
- ``delta``: the same two quantities against δ = r/n: predicted ∝ δ^{-2}.
"""

from __future__ import annotations

import math

import numpy as np

import simsgd
from simsgd import theory
from simsgd.stats import fit_exponent

from .problems import quadratic

__all__ = ["SWEEPS", "run"]

MU = 0.0

SWEEPS = {
    "quick": dict(
        rate_T=[200, 800, 3200],
        speedup_N=[1, 4, 16],
        tau=[1, 4, 16],
        delta=[1, 2, 3],
        N_steps=800,
        tau_steps=400,
        rate_replicas=64,
        tau_replicas=100,
    ),
    "full": dict(
        rate_T=[250, 500, 1000, 2000, 4000, 8000],
        speedup_N=[1, 2, 4, 8, 16, 32],
        tau=[1, 2, 4, 8, 16, 32],
        delta=[1, 2, 3],
        N_steps=2000,
        tau_steps=2000,
        rate_replicas=400,
        tau_replicas=400,
    ),
}


def _run(problem, *, method="powersgd+", nodes, rank=1, restart_period=4, lr, steps, replicas, seed):
    return simsgd.simulate(
        problem,
        method=method,
        nodes=nodes,
        rank=rank,
        restart_period=restart_period,
        optimizer="msgd",
        lr=lr,
        momentum=MU,
        steps=steps,
        replicas=replicas,
        seed=seed,
        progress=False,
    )


def _noise_lr(problem, nodes, steps):
    """Corollary 1's η without its compression part: √(2(1−μ)²NΔF/(L·variance·T)), capped at (1−μ)/(2L)."""
    c = theory.constants(problem, omega_sq=0.0)
    eta = math.sqrt(2 * (1 - MU) ** 2 * nodes * c.delta_f / (c.L * c.variance * steps))
    return min(eta, (1 - MU) / (2 * c.L))


def _avg_grad(trace):
    return trace.grad_norm_sq[:, :-1].mean(axis=1)


def _fit(name, quantity, xs, samples, predicted, seed):
    means = [float(np.mean(s)) for s in samples]
    entry = dict(sweep=name, quantity=quantity, x=[float(x) for x in xs], means=means, predicted=predicted)
    try:
        entry["fit"] = fit_exponent(xs, samples, seed=seed).to_dict()
    except ValueError as err:  # a non-positive mean has no logarithm: say so, do not fit
        entry["fit"] = None
        entry["why_not_fitted"] = str(err)
    return entry


def rate_T(steps_list, replicas, seed):
    problem, _ = quadratic(4, m=4, n=3, heterogeneity=0.0, start_offset=1.0)
    samples = [
        _avg_grad(_run(problem, nodes=4, lr=_noise_lr(problem, 4, T), steps=T, replicas=replicas, seed=seed))
        for T in steps_list
    ]
    return [_fit("rate_T", "(1/T)Σ E‖∇f‖², η ∝ T^-1/2", steps_list, samples, -0.5, seed)]


def speedup_N(nodes_list, steps, replicas, seed):
    samples = []
    for N in nodes_list:
        problem, _ = quadratic(N, m=4, n=3, heterogeneity=0.0, start_offset=1.0)
        samples.append(
            _avg_grad(
                _run(
                    problem,
                    nodes=N,
                    lr=_noise_lr(problem, N, steps),
                    steps=steps,
                    replicas=replicas,
                    seed=seed,
                )
            )
        )
    return [_fit("speedup_N", f"(1/T)Σ E‖∇f‖², η ∝ N^1/2, T={steps}", nodes_list, samples, -0.5, seed)]


def _compression(name, xs, runs, full, predicted, seed, label):
    err_samples = [t.error_norm_sq[:, t.steps // 2 + 1 :].mean(axis=1) for t in runs]
    base = _avg_grad(full)
    excess = [_avg_grad(t) - base for t in runs]
    return [
        _fit(name, f"(2/T)Σ_{{t>T/2}} E‖ē_t‖² ({label})", xs, err_samples, predicted, seed),
        _fit(
            name, f"(1/T)Σ E‖∇f‖² − same for MSGD without compression ({label})", xs, excess, predicted, seed
        ),
    ]


def tau_sweep(taus, steps, replicas, seed):
    problem, _ = quadratic(4)
    lr = 0.1 / problem.L
    full = _run(problem, method="full", nodes=4, lr=lr, steps=steps, replicas=replicas, seed=seed)
    runs = [
        _run(problem, nodes=4, restart_period=tau, lr=lr, steps=steps, replicas=replicas, seed=seed)
        for tau in taus
    ]
    return _compression("tau", taus, runs, full, 2.0, seed, f"r=1, η=0.1/L, T={steps}")


def delta_sweep(ranks, steps, replicas, seed):
    problem, _ = quadratic(4)
    lr = 0.1 / problem.L
    full = _run(problem, method="full", nodes=4, lr=lr, steps=steps, replicas=replicas, seed=seed)
    runs = [
        _run(problem, nodes=4, rank=r, restart_period=8, lr=lr, steps=steps, replicas=replicas, seed=seed)
        for r in ranks
    ]
    deltas = [theory.delta(r, problem.shape) for r in ranks]
    return _compression("delta", deltas, runs, full, -2.0, seed, f"τ=8, η=0.1/L, T={steps}")


def run(mode: str, seed: int):
    """All sweeps of :data:`SWEEPS` [mode]; returns a list of fit entries (dicts)."""
    s = SWEEPS[mode]
    R, Rt = s["rate_replicas"], s["tau_replicas"]
    return (
        rate_T(s["rate_T"], R, seed)
        + speedup_N(s["speedup_N"], s["N_steps"], R, seed)
        + tau_sweep(s["tau"], s["tau_steps"], Rt, seed)
        + delta_sweep(s["delta"], s["tau_steps"], Rt, seed)
    )
