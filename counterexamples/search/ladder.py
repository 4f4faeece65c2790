"""Each method's floor on the step-size ladder η_k = η₀·10^{−k} of one instance: :func:`run_ladder`."""

from __future__ import annotations

from dataclasses import dataclass

from .floors import C0, SPAN, horizon, measure, step_size

METHODS = ("powersgd", "powersgd+", "full")


@dataclass(frozen=True)
class Settings:
    """What every ladder of a study shares.

    Attributes
    ----------
    replicas : int
        R runs per (method, η), on seeds (seed, 0..R−1): the methods are paired (same ξ, Q_{−1}).
    span : float
        Relaxation times per run (:func:`~counterexamples.search.floors.horizon`).
    decades : tuple of int
        The k of η_k = c₀(1 − μ)/(2L)·10^{−k}.
    c0 : float
    """

    replicas: int
    span: float = SPAN
    decades: tuple = (0, 1, 2)
    c0: float = C0

    def etas(self, momentum: float, lipschitz: float, decades=None) -> list:
        return [step_size(momentum, k, lipschitz, self.c0) for k in decades or self.decades]


def run_ladder(
    problem, options, settings: Settings, methods=METHODS, decades=None, seed=0, span=None, **extra
):
    """Run every method at every step size of the ladder.

    Parameters
    ----------
    problem
        A problem object with ``L``.
    options : dict
        ``nodes``, ``rank``, ``momentum``.
    settings : Settings
    methods : sequence of str
    decades : sequence of int, optional
        Instead of ``settings.decades``.
    seed : int
    span : float, optional
        Instead of ``settings.span``.
    **extra
        Passed to :func:`~counterexamples.search.floors.measure` (``x0``, ``dtype`` …).

    Returns
    -------
    dict
        method -> list of :class:`~counterexamples.search.floors.Floor`, one per decade.
    """
    momentum, span = options["momentum"], settings.span if span is None else span
    etas = settings.etas(momentum, problem.L, decades)
    steps = [horizon(eta, momentum, problem.L, span) for eta in etas]
    return {
        method: [
            measure(problem, options, method, eta, t, settings.replicas, seed, **extra)
            for eta, t in zip(etas, steps)
        ]
        for method in methods
    }
