"""The restart on a locked run, swept over the step size: does the first restart free the run,
which direction does it pick, and do the freed runs then converge?

Problem: ψ (eq. 10), aligned basis, Claim 1's lock forced (ξ_0 ≡ 1), N = 4, τ = 10, MSGD μ = 0.9.
Every run is locked until the first restart after t = 0 (t = τ); the question is what that
restart and the ones after it do.

The mechanism, measured per run: between restarts the SSP steps are locked (onto the noise, or
onto the signal after a restart that picked A) and the untransmitted part of every gradient
piles up in the error memory. A restart releases that pile at once, and momentum spreads it
over the next 1/(1 − μ) steps: in ψ's quadratic zone (|⟨A, X⟩| < 1) a burst accumulated over τ
steps moves s = ⟨A, X⟩ by about g·s with g = 8ητ/(1 − μ) (= ⟨A, A⟩ = 4 times η/(1 − μ) times
the τ·ψ'(s) = 2sτ it holds). The cycle multiplies s by 1 − g: |1 − g| > 1 (g > 2) overshoots
past the optimum by more than s itself and the run never settles; the linearised edge is
η = (1 − μ)/(4τ). ``gain`` below is g measured per A-picking restart in the quadratic zone:
g = 1 − s_{t+τ}/s_t.
"""

from __future__ import annotations

import numpy as np

from simsgd.lock import lock_spaces, observe, share
from simsgd.problems import Psi2x2
from simsgd.stats import mean_band, wilson_interval

__all__ = ["KINDS", "ETAS", "TAU", "MU", "NODES", "CONVERGED", "cell", "predicted_gain", "edge_lr"]

KINDS = (
    ("svd", dict(restart="svd")),
    ("randomized p=5 K=1", dict(restart="randomized", restart_oversampling=5, restart_power_steps=1)),
    ("random", dict(restart="random")),
    ("power K=1", dict(restart="power", restart_power_steps=1)),
)
ETAS = ((5e-3, 1), (1.6e-3, 1), (5e-4, 1), (1.6e-4, 1), (1.6e-4, 10))
"""(η, T multiple): T = multiple × the base T (the last row: T × 10 at the smallest η)."""
TAU, MU, NODES = 10, 0.9, 4
CONVERGED = 1e-3
"""A run converged when ||∇f(X_T)||² ≤ CONVERGED · ||∇f(X_0)||² (16 here)."""


def predicted_gain(lr, tau=TAU, mu=MU):
    """The gain g = 8ητ/(1 − μ): the linearised move of s = ⟨A, X⟩, as a multiple of s, per burst."""
    return 8.0 * lr * tau / (1.0 - mu)


def edge_lr(tau=TAU, mu=MU):
    """The η where the linearised burst overshoots by s itself (g = 2): (1 − μ)/(4τ)."""
    return (1.0 - mu) / (4.0 * tau)


def _quantiles(values, qs):
    return [float(v) for v in np.quantile(values, qs)]


def _gains(inner, signal_share, steps):
    """The gains g = 1 − s_{t+τ}/s_t at every restart t ≥ τ that picked A with 0 < |s_t| < 1."""
    gains = []
    for t in range(TAU, steps - TAU + 1, TAU):
        s = inner[:, t]
        zone = (signal_share[:, t] > 0.5) & (np.abs(s) < 1) & (s != 0)
        gains.append(1.0 - inner[zone, t + TAU] / s[zone])
    return np.concatenate(gains)


def cell(kind, options, lr, steps, replicas, *, sigma=5.0, seed=0, dtype="float64", method="powersgd+"):
    """One cell of the sweep: the first restart, the later ones, and where the runs end.

    Returns
    -------
    dict
        ``freed_by_first_restart`` (share of runs whose ⟨A, X⟩ has moved by t = τ + 1, with its
        Wilson interval), ``freed_at_first_restart`` (unchanged up to t = τ and moved at
        t = τ + 1), ``first_move_quartiles`` (the first t at which ⟨A, X_t⟩ ≠ ⟨A, X_0⟩; a
        restart at t = 0 that is not the SVD frees a run at once),
        ``first_restart_picked_signal`` (share of runs whose P̃_τ is mostly along A: its A-share
        > 1/2) and the mean A-share, ``restarts_picking_signal`` (over
        all restarts t ≥ τ), ``converged`` (||∇f(X_T)||² ≤ 1e-3·16, Wilson), ``below_1e-6``,
        E||∇f(X_T)||² with its 95% band, the 10/50/90% quantiles of ⟨A, X_T⟩, and ``gain``:
        the median and quartiles of g, the share of bursts with g > 2 (amplifying), and the
        linearised prediction 8ητ/(1 − μ); ``off_axes``: the share of steps whose P̃_t lies
        along neither A nor B (its A-share strictly between 1e-12 and 1 − 1e-12; exactly 0 for
        an exact SVD in this basis, whose zeros stay exact).
    """
    problem = Psi2x2(sigma, basis="aligned", lock_start=True)
    seen = observe(
        problem,
        method=method,
        nodes=NODES,
        optimizer="msgd",
        lr=lr,
        momentum=MU,
        restart_period=TAU,
        steps=steps,
        replicas=replicas,
        seed=seed,
        dtype=dtype,
        progress=False,
        **options,
    )
    inner, grad = seen.inner, seen.trace.grad_norm_sq
    moved = np.abs(inner - inner[:, :1]) > 1024 * np.finfo(dtype).eps * np.abs(inner[:, :1])
    freed = moved[:, : TAU + 2].any(axis=1)
    first_move = np.where(moved.any(axis=1), moved.argmax(axis=1), steps + 1)
    signal = share(seen.bases, lock_spaces(problem)[1]) if seen.bases is not None else None
    final = grad[:, -1]
    converged = int((final <= CONVERGED * grad[:, 0]).sum())
    mean, lo, hi = (float(v[-1]) for v in mean_band(grad[:, -1:]))
    row = {
        "kind": kind,
        "lr": lr,
        "steps": steps,
        "replicas": replicas,
        "sigma": sigma,
        "seed": seed,
        "dtype": dtype,
        "method": method,
        "freed_by_first_restart": float(freed.mean()),
        "freed_wilson95": list(wilson_interval(int(freed.sum()), replicas)),
        "freed_at_first_restart": float((first_move == TAU + 1).mean()),
        "first_move_quartiles": _quantiles(first_move, [0.25, 0.5, 0.75]),
        "converged": converged,
        "converged_wilson95": list(wilson_interval(converged, replicas)),
        "below_1e-6": float((final < 1e-6).mean()),
        "final_grad_norm_sq": mean,
        "final_band95": [lo, hi],
        "inner_T_quantiles_10_50_90": _quantiles(inner[:, -1], [0.1, 0.5, 0.9]),
    }
    if signal is None:
        return row
    gains = _gains(inner, signal, steps)
    restarts = signal[:, TAU::TAU]
    row.update(
        first_restart_picked_signal=float((signal[:, TAU] > 0.5).mean()),
        first_restart_signal_share=float(signal[:, TAU].mean()),
        restarts_picking_signal=float((restarts > 0.5).mean()),
        off_axes=float(((signal > 1e-12) & (signal < 1 - 1e-12)).mean()),
        gain={
            "bursts": int(gains.size),
            "quartiles": _quantiles(gains, [0.25, 0.5, 0.75]) if gains.size else None,
            "amplifying": float((gains > 2).mean()) if gains.size else None,
            "predicted": predicted_gain(lr),
        },
    )
    return row
