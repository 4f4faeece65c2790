"""What the theory says beside the measurement: Theorem 1's ε₀ and lock probability 2^−N, and
Theorem 4 checked on the very PowerSGD+ run a view shows (:func:`simsgd.check.check_theorem4`
with ``trace=``), or why each says nothing; and the view's numbers as a table and as text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import check, theory
from ..problems import GeneralCounterexample, Psi2x2
from ..stats import mean_ci

__all__ = ["Theory", "has_lock", "theory_of", "TABLE_HEADER", "table", "statements", "summary"]


@dataclass
class Theory:
    """What the paper says at the view's settings, or why it says nothing.

    Attributes
    ----------
    epsilon0 : float or None
        Theorem 1's ε₀ = 4ψ'(2)²/2^N for PowerSGD, where the theorem applies.
    lock_probability : float or None
        2^−N, the probability of Theorem 1's lock event (all ξ₀^{(i)} = +1), on problems with a lock.
    theorem4 : BoundCheck or None
        Theorem 4 at these settings, against PowerSGD+'s measured (1/T) Σ_{t<T} E||∇f(X_t)||².
    step_limit : float or None
        Theorem 4's largest step size (1 − μ)/(2L), where the problem carries L.
    notes : list of str
        Why a statement is absent or what limits it, one line each.
    """

    epsilon0: float | None = None
    lock_probability: float | None = None
    theorem4: check.BoundCheck | None = None
    step_limit: float | None = None
    notes: list = field(default_factory=list)


def has_lock(problem) -> bool:
    """Theorem 1's lock (X_t − X_0 ∈ span(B), ||∇f|| unchanged) is defined on the ψ problems."""
    return isinstance(problem.problem, (Psi2x2, GeneralCounterexample))


def theory_of(problem, settings, curves: dict) -> Theory:
    """The :class:`Theory` at ``settings`` beside ``curves`` (method → ``Curves``), on the
    :class:`~simsgd.explore.model.Watched` ``problem``.
    """
    out = Theory()
    inner, n = problem.problem, settings.nodes
    if has_lock(problem):
        out.lock_probability = 2.0**-n
    if isinstance(inner, Psi2x2):
        out.epsilon0 = inner.epsilon0(0) * 2.0**-n  # ε₀(N) = ε₀(0)·2^−N: 2^N overflows at N = 1024
        if settings.rank >= 2:
            out.notes.append(
                "Theorem 1: r = 2 is full rank on the 2×2 ψ (no compression): ε₀ is not a bound here"
            )
        if settings.nodes % 2 == 0 and not np.ndim(settings.sigma):
            out.notes.append(
                "Theorem 1 with even N and one σ meets P_t = 0 (a degenerate QR): the lock holds under "
                "degenerate_qr='previous', the convention used here (docs/theorem1.md)"
            )
        if inner.basis == "paper":
            out.notes.append(
                "Theorem 1 is exact arithmetic: in the paper basis rounding breaks the lock "
                "(docs/theorem1.md)"
            )
    else:
        out.notes.append("Theorem 1 (ε₀) is stated for the 2×2 ψ problem: no ε₀ for this problem")
    _theorem4(out, problem, settings, curves.get("powersgd+"))
    return out


def _theorem4(out: Theory, problem, settings, curves) -> None:
    """Theorem 4 at ``settings`` against PowerSGD+'s run, or a note saying why not."""
    L = getattr(problem, "L", None)
    if L is not None and math.isfinite(L) and L > 0:
        out.step_limit = (1.0 - settings.momentum) / (2.0 * L)
    why = None
    if curves is None:
        why = "select PowerSGD+ to check it"
    elif settings.rule != "periodic":
        why = "it assumes a restart every τ steps (rule 'periodic')"
    elif settings.restart != "svd":
        why = f"its δ = r/min(m, n) is Lemma 2's for the SVD restart, not '{settings.restart}'"
    elif out.step_limit is None:
        why = "the problem carries no smoothness constant L"
    elif settings.lr > out.step_limit:
        why = (
            f"η = {settings.lr:.3g} is outside its step-size condition "
            f"η ≤ (1 − μ)/(2L) = {out.step_limit:.3g}: no bound"
        )
    if why is not None:
        out.notes.append(f"Theorem 4: {why}")
        return
    trace, inner = curves.trace, problem.problem  # the problem's own name in what the check says
    omega_sq = None
    if getattr(inner, "omega_sq", None) is None:  # no global ω²: the run's visited region
        omega_sq = theory.visited_omega_sq(trace.grad_norm_sq)
    try:
        out.theorem4 = check.check_theorem4(
            inner,
            nodes=settings.nodes,
            rank=settings.rank,
            restart_period=settings.tau,
            momentum=settings.momentum,
            lr=settings.lr,
            steps=settings.steps,
            seed=settings.seed,
            omega_sq=omega_sq,
            paired=False,
            control=False,
            trace=trace,
            restart=settings.restart,
        )
    except ValueError as err:
        out.notes.append(f"Theorem 4: {err}")
        return
    if omega_sq is not None:
        out.notes.append("Theorem 4: ω² is max_t E‖∇f(X_t)‖² of this run (the problem has no global ω²)")


TABLE_HEADER = ("method", "final E‖∇f(X_T)‖² [95%]", "floats/step", "locked at T [Wilson 95%]")
"""The columns of :func:`table`."""


def table(view) -> list:
    """A row of strings per method, in the columns of :data:`TABLE_HEADER`: the final E||∇f||²
    with its normal 95% interval, floats one node sends per step, and the runs locked at T with
    their Wilson interval ("–" where the problem has no lock).
    """
    rows = []
    for method, c in view.curves.items():
        mean, half = mean_ci(c.trace.grad_norm_sq[:, -1])
        lock = "–"
        if c.locked is not None:
            low, high = c.locked_interval
            lock = f"{c.locked}/{c.trace.replicas} [{low:.3g}, {high:.3g}]"
        final = f"{mean:.4g} [{max(mean - half, 0.0):.3g}, {mean + half:.3g}]"
        rows.append((method, final, f"{c.floats_per_step:.4g}", lock))
    return rows


def statements(view) -> list:
    """What the theory says at the view's settings, a line each, then why it is silent where it is."""
    t, lines = view.theory, []
    if t.lock_probability is not None:
        lines.append(f"Theorem 1's lock event (all ξ₀ = +1) has probability 2^−N = {t.lock_probability:.4g}")
    if t.epsilon0 is not None:
        lines.append(f"Theorem 1: PowerSGD's E‖∇f(X_t)‖² ≥ ε₀ = 4ψ'(2)²/2^N = {t.epsilon0:.4g}")
    if t.theorem4 is not None:
        lines.append(t.theorem4.line())
        terms = ", ".join(f"{k} {v:.3g}" for k, v in t.theorem4.terms.items())
        lines.append(f"Theorem 4's terms: {terms}; step size η ≤ (1 − μ)/(2L) = {t.step_limit:.3g}")
    return lines + t.notes


def summary(view) -> str:
    """The view as text: :func:`table` in aligned columns, then :func:`statements`."""
    rows = [TABLE_HEADER, *table(view)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + statements(view))
