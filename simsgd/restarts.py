"""When PowerSGD+ (and GaLore) restart: the restart rules.

Algorithm 2 restarts at t mod τ = 0 (t from 0, so step 0 is a restart): :class:`Periodic`.
A rule is any object with the members of :class:`RestartRule`; it decides either from t alone
(a schedule: :meth:`RestartRule.at` answers True/False, the same for every replica and node)
or from the state of the run (:meth:`RestartRule.at` answers None and :meth:`RestartRule.decide`
returns a per-replica mask computed with node means, so every node of a distributed run takes
the same decision). How a restart finds its basis is the compressor's business
(:data:`simsgd.compressors.RESTART_KINDS`).

Built in: :class:`Periodic` (the paper's), :class:`Never` (τ = ∞, PowerSGD), :class:`Geometric`
(restarts that thin out: t = 0, a, a·g, a·g², …) and :class:`ErrorGrowth` (restart when the
error-feedback memory outgrows the gradients, a state-dependent safeguard).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._checks import check_int, check_real
from .ops import Array, ArrayOps

__all__ = ["RestartRule", "Periodic", "Never", "Geometric", "ErrorGrowth", "is_restart", "as_rule"]


def is_restart(t: int, restart_period: int | None) -> bool:
    """Whether step t is a restart of the paper's schedule: t mod τ = 0, t counting from 0 (so step 0
    is one); ``restart_period=None`` (τ = ∞, PowerSGD) never restarts. The one definition of it.
    """
    return restart_period is not None and t % restart_period == 0


@runtime_checkable
class RestartRule(Protocol):
    """When to restart: a schedule in t, or a predicate on the run's state.

    Attributes
    ----------
    period : int or None
        The schedule repeats every ``period`` steps (a compiled engine runs blocks of that
        length); None when it does not, or when the rule depends on the state.
    floats : int
        Extra floats one node sends per step to take the decision (0 for a schedule).
    """

    period: int | None
    floats: int

    def at(self, t: int) -> bool | None:
        """Whether step t restarts when t alone decides; None when :meth:`decide` must."""
        ...

    def decide(self, t: int, deltas: Array, errors: Array, ops: ArrayOps) -> Array:
        """Per-replica bool mask (...) at step t from Δ_t^{(i)} and e_t^{(i)} (..., N, m, n).

        Only called where :meth:`at` is None. Any quantity it uses must be a node mean
        (``ops.node_mean``) so that all nodes agree.
        """
        ...


@dataclass(frozen=True)
class Periodic:
    """The paper's schedule: restart at t mod τ = 0."""

    tau: int

    def __post_init__(self):
        check_int("tau", self.tau, 1)

    @property
    def period(self) -> int:
        return self.tau

    floats = 0

    def at(self, t: int) -> bool:
        return is_restart(t, self.tau)

    def decide(self, t, deltas, errors, ops):
        raise TypeError("Periodic is a schedule; call at(t)")


@dataclass(frozen=True)
class Never:
    """No restart at all (τ = ∞): PowerSGD+ becomes PowerSGD started from Q_{−1}."""

    period = None
    floats = 0

    def at(self, t: int) -> bool:
        return False

    def decide(self, t, deltas, errors, ops):
        raise TypeError("Never is a schedule; call at(t)")


@dataclass(frozen=True)
class Geometric:
    """Restarts at t = 0 and t = ⌊first·growth^k⌋ (k = 0, 1, …): frequent early, rare late.

    Parameters
    ----------
    first : int ≥ 1
        The second restart's step.
    growth : float > 1
        The ratio between consecutive restart steps (for a fixed period use :class:`Periodic`).
    """

    first: int
    growth: float = 2.0

    def __post_init__(self):
        check_int("first", self.first, 1)
        check_real("growth", self.growth, 1.0, 1e6, low_open=True)

    period = None
    floats = 0

    def at(self, t: int) -> bool:
        if t == 0:
            return True
        if t < self.first:
            return False
        k = round(math.log(t / self.first, self.growth))
        return any(math.floor(self.first * self.growth**j) == t for j in (k - 1, k, k + 1) if j >= 0)

    def decide(self, t, deltas, errors, ops):
        raise TypeError("Geometric is a schedule; call at(t)")


@dataclass(frozen=True)
class ErrorGrowth:
    """Restart where the error memory has outgrown the gradients (and at t = 0):
    mean_i ||e_t^{(i)}||² > ``ratio`` · mean_i ||g_t^{(i)}||², per replica.

    A safeguard that does not need τ: when SSP locks onto a wrong subspace (Theorem 1), the
    untransmitted signal piles up in e_t^{(i)} while g_t^{(i)} stays bounded, so the rule fires
    after a number of steps that grows with the ratio. Each step all-reduces the two node-local
    norms (2 floats per node).

    Parameters
    ----------
    ratio : float > 0
    """

    ratio: float = 4.0

    def __post_init__(self):
        check_real("ratio", self.ratio, 0.0, low_open=True)

    period = None
    floats = 2

    def at(self, t: int) -> bool | None:
        return True if t == 0 else None

    def decide(self, t, deltas, errors, ops):
        e_sq = ops.node_mean(ops.sqnorm(errors)[..., None, None])[..., 0, 0]
        g_sq = ops.node_mean(ops.sqnorm(deltas - errors)[..., None, None])[..., 0, 0]
        return e_sq > self.ratio * g_sq


def as_rule(restart_period) -> RestartRule:
    """A restart rule from ``restart_period``: an int τ ≥ 1 (:class:`Periodic`), None (:class:`Never`)
    or a rule object (returned as it is).

    Raises
    ------
    ValueError
        Anything else, naming ``restart_period``.
    """
    if restart_period is None:
        return Never()
    if isinstance(restart_period, RestartRule) and not isinstance(restart_period, (bool, int)):
        return restart_period
    return Periodic(check_int("restart_period", restart_period, 1))
