"""Theorem 4, Corollary 1, Lemmas 3–4 of PowerSGD+ (MSGD) where they can fail, each with a control.

One setting (problem, N, r, τ, μ, T) makes three runs on the same seeds (common random
numbers): PowerSGD+ at Corollary 1's step size for T (or a fraction of it), PowerSGD (no
restart: the negative control) and uncompressed MSGD (the baseline) at the same η. Theorem 4
holds for every T at a fixed η, so prefix averages of one run give its rows at several T;
Corollary 1's row is the full length T, where η is its own. Lemmas 3–4 are the max over
t ≤ T of the run.

What makes a row able to fail: its bound must lie below what doing nothing scores
(``trivial_bound``: ||∇f(X_0)||², which is also sup ||∇f||² on the ψ examples). That needs
small η and long T (the 4(1−μ)ΔF/(ηT) term) and small σ (the third term grows with G²).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import simsgd
from simsgd import theory
from simsgd.stats import max_mean_bounds, mean_bounds

from . import problems
from .rows import Control, Row

__all__ = ["Setting", "run_setting"]

PREFIXES = (0.2, 0.5, 1.0)  # Theorem 4 rows at these fractions of T


@dataclass(frozen=True)
class Setting:
    """One problem and schedule: η = ``lr_scale`` × Corollary 1's step size for T = ``steps``."""

    spec: dict
    nodes: int
    rank: int
    restart_period: int
    momentum: float
    steps: int
    lr_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def _constants(problem, c0, trace=None, alpha=0.05):
    """Constants; for a problem without a global ω², ω² = max(||∇f(X_0)||², the run's visited LCB).

    ||∇f(X_0)||² is E||∇f(X_0)||² exactly (X_0 is deterministic), so it never exceeds the true
    max_t E||∇f(X_t)||²: both choices can only make the bound smaller, never inflate it.
    """
    if c0.omega_sq_source != "visited" or trace is None:
        return c0
    return theory.constants(problem, max(c0.omega_sq, theory.visited_omega_sq(trace.grad_norm_sq, alpha)))


def run_setting(s: Setting, replicas: int, seed: int, alpha: float = 0.05) -> list:
    """The rows of one setting: Theorem 4 at each prefix T, Corollary 1 (if ``lr_scale`` = 1), Lemmas 3–4.

    Returns
    -------
    list of Row
    """
    problem = problems.make(s.spec, s.nodes)
    start = problems.grad_norm_sq_at_start(problem)
    own = getattr(problem, "omega_sq", None)
    c0 = theory.constants(problem, None if own is not None else start)
    d = theory.delta(s.rank, problem.shape)
    kw = dict(momentum=s.momentum, restart_period=s.restart_period, delta=d, nodes=s.nodes)
    lr = s.lr_scale * theory.corollary1_lr(c0, steps=s.steps, **kw)
    run = dict(
        nodes=s.nodes,
        rank=s.rank,
        optimizer="msgd",
        lr=lr,
        momentum=s.momentum,
        steps=s.steps,
        replicas=replicas,
        seed=seed,
        progress=False,
    )
    plus = simsgd.simulate(problem, method="powersgd+", restart_period=s.restart_period, **run)
    c = _constants(problem, c0, plus, alpha)
    plain = simsgd.simulate(problem, method="powersgd", **run)
    full = simsgd.simulate(problem, method="full", **run)
    sums = {k: np.cumsum(t.grad_norm_sq[:, : s.steps], axis=1) for k, t in (("+", plus), ("-", full))}
    sums["0"] = np.cumsum(plain.grad_norm_sq[:, : s.steps], axis=1)
    label, eps0 = problems.label(s.spec), problems.epsilon0(problem, s.nodes)
    params = dict(
        N=s.nodes, r=s.rank, δ=d, τ=s.restart_period, μ=s.momentum, η=lr, replicas=replicas, seed=seed
    )
    common = dict(problem=label, spec=dict(s.spec), constants=c.to_dict())
    notes = "ω² = max(||∇f(X₀)||², visited LCB)" if c.omega_sq_source == "visited" else ""

    def lhs(key, T):
        return mean_bounds(sums[key][:, T - 1] / T, alpha)

    def expected(bound):
        return "violated" if eps0 is not None and eps0 > bound else ""

    rows = []
    for frac in PREFIXES:
        T = max(1, int(round(frac * s.steps)))
        terms = theory.theorem4_terms(c, lr=lr, steps=T, **kw)
        rows.append(
            Row(
                statement="Theorem 4",
                params=dict(params, T=T),
                bound=terms.total,
                terms=terms._asdict(),
                measured=lhs("+", T),
                trivial_bound=start,
                control=Control("PowerSGD (no restart)", lhs("0", T), terms.total, expected(terms.total)),
                baseline=lhs("-", T),
                notes=notes,
                **common,
            )
        )
    if s.lr_scale == 1.0 and c.omega_sq == c0.omega_sq:
        rate = theory.corollary1_rate(c, steps=s.steps, **kw)
        rows.append(
            Row(
                statement="Corollary 1",
                params=dict(params, T=s.steps),
                bound=rate.total,
                terms=rate._asdict(),
                measured=lhs("+", s.steps),
                trivial_bound=start,
                control=Control("PowerSGD (no restart)", lhs("0", s.steps), rate.total, expected(rate.total)),
                baseline=lhs("-", s.steps),
                notes=notes,
                **common,
            )
        )
    lemmas = (
        ("Lemma 3", "error_norm_sq", slice(None), theory.lemma3_bound(s.restart_period, c.G_sq, d)),
        (
            "Lemma 4",
            "momentum_norm_sq",
            slice(1, None),
            theory.lemma4_bound(s.restart_period, c.G_sq, d, s.momentum),
        ),
    )
    for statement, name, cols, bound in lemmas:
        ctrl = max_mean_bounds(getattr(plain, name)[:, cols], alpha)
        rows.append(
            Row(
                statement=statement,
                params=dict(params, T=s.steps),
                bound=bound,
                measured=max_mean_bounds(getattr(plus, name)[:, cols], alpha),
                trivial_bound=ctrl.mean,
                control=Control("PowerSGD (no restart)", ctrl, bound),
                baseline=None,
                notes=notes,
                **common,
            )
        )
    return rows
