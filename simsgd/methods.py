"""The paper's compressors as :class:`simsgd.compression.Compressor` objects.

:class:`PowerSGD` (SSP-COMP every step; with K > 1 power steps, eq. (8)), :class:`PowerSGDPlus`
(Algorithm 2: a restart compressor when its rule says so, SSP-COMP otherwise), :class:`GaLore`
(P̃ from an SVD at restarts, kept fixed in between, no error feedback) and :class:`Uncompressed`
(plain averaging). Each is a frozen dataclass (hashable, so a compiled engine can key on it);
:mod:`simsgd.registry` builds them from :func:`simsgd.simulate`'s options by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ._checks import check_choice, check_int, check_real
from .compression import Compression
from .compressors import RESTART_KINDS, power_iteration_step, project, restart_floats, restart_step, svd_step
from .ops import Array
from .options import DEGENERATE_QR, ORTHOGONALIZATIONS
from .restarts import Periodic, RestartRule, as_rule

__all__ = ["PowerState", "PowerSGD", "PowerSGDPlus", "GaLore", "Uncompressed", "select"]


class PowerState(NamedTuple):
    """The state of the power-iteration compressors (all replicas at once).

    q : (..., n, r)                Q_{t−1}
    basis : (..., m, r) | None     P̃_{t−1} (for ``degenerate_qr="previous"``)
    q_negligible : (...) | None    where Q_{t−1} is rounding noise (degeneracy test)
    """

    q: Array
    basis: Array | None = None
    q_negligible: Array | None = None


def select(mask, a, b, ops):
    """``a`` where the per-replica ``mask`` (...) is true, else ``b`` (arrays (..., *trailing));
    None stays None.
    """
    if a is None or b is None:
        return None if a is None and b is None else a if b is None else b
    while mask.ndim < a.ndim:
        mask = mask[..., None]
    return ops.where(mask, a, b)


def _select_state(mask, a: PowerState, b: PowerState, ops) -> PowerState:
    negligible_a = a.q_negligible if a.q_negligible is not None else ops.zeros_like(mask)
    negligible_b = b.q_negligible if b.q_negligible is not None else ops.zeros_like(mask)
    return PowerState(
        select(mask, a.q, b.q, ops),
        select(mask, a.basis, b.basis, ops),
        select(mask, negligible_a, negligible_b, ops),
    )


@dataclass(frozen=True)
class _PowerOptions:
    """The options of SSP-COMP that PowerSGD and PowerSGD+ share (see :func:`simsgd.simulate`)."""

    rank: int = 1
    orthogonalization: str = "householder"
    orthogonalization_epsilon: float = 0.0
    degenerate_qr: str = "previous"

    def __post_init__(self):
        check_int("rank", self.rank, 1)
        check_choice("orthogonalization", self.orthogonalization, ORTHOGONALIZATIONS)
        check_real("orthogonalization_epsilon", self.orthogonalization_epsilon, 0.0)
        check_choice("degenerate_qr", self.degenerate_qr, DEGENERATE_QR)

    error_feedback = True

    def basis_shape(self, shape):
        return (shape[1], self.rank)

    def init(self, q0):
        return PowerState(q0)

    def _power(self, state: PowerState, deltas, power_steps, ops, want_local):
        out = power_iteration_step(
            state.q,
            deltas,
            power_steps,
            previous_basis=state.basis,
            orthogonalization=self.orthogonalization,
            orthogonalization_epsilon=self.orthogonalization_epsilon,
            degenerate_qr=self.degenerate_qr,
            want_local=want_local,
            q_negligible=state.q_negligible,
            ops=ops,
        )
        compressed = Compression(
            out.global_hat, out.local_hat, False, out.degenerate, out.degenerate_own_scale
        )
        return compressed, PowerState(out.q, out.basis, out.q_negligible)


@dataclass(frozen=True)
class PowerSGD(_PowerOptions):
    """PowerSGD: SSP-COMP (Algorithm 1) every step, warm-started from Q_{t−1}; with
    ``power_steps`` = K > 1, K steps of power iteration (8) per iteration.

    Sends K (m + n) r floats per node and step.
    """

    power_steps: int = 1
    name: str = "powersgd"

    def __post_init__(self):
        super().__post_init__()
        check_int("power_steps", self.power_steps, 1)

    period = None

    def restart_at(self, t):
        return False

    def floats(self, t, shape, restart=False):
        return self.power_steps * (shape[0] + shape[1]) * self.rank

    def compress(self, state, deltas, t, *, errors=None, ops, draws=None, want_local=True):
        return self._power(state, deltas, self.power_steps, ops, want_local)


@dataclass(frozen=True)
class PowerSGDPlus(_PowerOptions):
    """PowerSGD+ (Algorithm 2): the restart compressor ``restart`` where ``rule`` says so, SSP-COMP
    otherwise.

    Parameters
    ----------
    rule : RestartRule
        When to restart (default :class:`~simsgd.restarts.Periodic` (10), the paper's τ).
    restart : str
        How: a key of :data:`simsgd.compressors.RESTART_KINDS` — "svd" (the paper's SVD-COMP),
        "randomized", "random", "power" (Remark 2's lighter ones).
    restart_oversampling, restart_power_steps : int
        p and K of the randomised restarts.

    Notes
    -----
    A state-dependent rule decides per replica: both the SSP step and the restart are computed
    and each replica keeps the one its rule chose.
    """

    rule: RestartRule = field(default_factory=lambda: Periodic(10))
    restart: str = "svd"
    restart_oversampling: int = 5
    restart_power_steps: int = 1
    name: str = "powersgd+"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "rule", as_rule(self.rule))
        check_choice("restart", self.restart, tuple(RESTART_KINDS))
        check_int("restart_oversampling", self.restart_oversampling, 0)
        check_int("restart_power_steps", self.restart_power_steps, 0 if self.restart == "randomized" else 1)

    @property
    def period(self):
        return self.rule.period

    def restart_at(self, t):
        return self.rule.at(t)

    def floats(self, t, shape, restart):
        m, n = shape
        return (restart_floats(self, m, n) if restart else (m + n) * self.rank) + self.rule.floats

    def _restart(self, deltas, ops, draws, want_local):
        shape = RESTART_KINDS[self.restart].sketch_shape(self, *deltas.shape[-2:])
        sketch = None if shape is None else draws.shared("normal", shape, like=deltas)
        out = restart_step(deltas, self, sketch, want_local=want_local, ops=ops)
        return Compression(out.global_hat, out.local_hat, True), PowerState(
            out.q, out.basis, out.q_negligible
        )

    def compress(self, state, deltas, t, *, errors, ops, draws=None, want_local=True):
        restart = self.rule.at(t)
        if restart is True:
            return self._restart(deltas, ops, draws, want_local)
        if restart is False:
            return self._power(state, deltas, 1, ops, want_local)
        mask = self.rule.decide(t, deltas, errors, ops)
        (ssp, ssp_state), (fresh, fresh_state) = (
            self._power(state, deltas, 1, ops, want_local),
            self._restart(deltas, ops, draws, want_local),
        )
        never = ops.zeros_like(mask)
        compressed = Compression(
            select(mask, fresh.global_hat, ssp.global_hat, ops),
            select(mask, fresh.local_hat, ssp.local_hat, ops),
            mask,
            select(mask, never, ssp.degenerate, ops),
            select(mask, never, ssp.degenerate_own_scale, ops),
        )
        return compressed, _select_state(mask, fresh_state, ssp_state, ops)


@dataclass(frozen=True)
class GaLore:
    """GaLore's projection (Table 2): P̃ = the top-r left singular vectors of the node-averaged Δ at
    restarts (an all-reduce of mn floats, then Q: nr), fixed in between, where nodes send only
    P̃ᵀΔ^{(i)} (nr floats); no error feedback. Step 0 always restarts (there is no P̃ before it).
    """

    rank: int = 1
    rule: RestartRule = field(default_factory=lambda: Periodic(10))
    name: str = "galore"

    def __post_init__(self):
        check_int("rank", self.rank, 1)
        object.__setattr__(self, "rule", as_rule(self.rule))

    error_feedback = False

    @property
    def period(self):
        return self.rule.period

    def basis_shape(self, shape):
        return (shape[1], self.rank)

    def init(self, q0):
        return PowerState(q0)

    def restart_at(self, t):
        return True if t == 0 else self.rule.at(t)

    def floats(self, t, shape, restart):
        m, n = shape
        return (m * n + n * self.rank if restart else n * self.rank) + self.rule.floats

    def _refresh(self, deltas, ops):
        out = svd_step(deltas, self.rank, want_local=False, ops=ops)
        return Compression(out.global_hat, None, True), PowerState(out.q, out.basis)

    def _project(self, state, deltas, ops):
        q, _, global_hat = project(state.basis, deltas, want_local=False, ops=ops)
        return Compression(global_hat, None, False), PowerState(q, state.basis)

    def compress(self, state, deltas, t, *, errors, ops, draws=None, want_local=False):
        restart = self.restart_at(t)
        if restart is True:
            return self._refresh(deltas, ops)
        if restart is False:
            return self._project(state, deltas, ops)
        mask = self.rule.decide(t, deltas, errors, ops)
        (fresh, fresh_state), (kept, kept_state) = (
            self._refresh(deltas, ops),
            self._project(state, deltas, ops),
        )
        compressed = Compression(select(mask, fresh.global_hat, kept.global_hat, ops), None, mask)
        state = PowerState(
            select(mask, fresh_state.q, kept_state.q, ops), select(mask, fresh_state.basis, state.basis, ops)
        )
        return compressed, state


@dataclass(frozen=True)
class Uncompressed:
    """Plain averaging of Δ^{(i)} (an all-reduce of mn floats): the MSGD/Adam baseline."""

    name: str = "full"
    error_feedback = False
    period = None

    def basis_shape(self, shape):
        return None

    def init(self, q0):
        return ()

    def restart_at(self, t):
        return False

    def floats(self, t, shape, restart=False):
        return shape[0] * shape[1]

    def compress(self, state, deltas, t, *, errors=None, ops, draws=None, want_local=False):
        return Compression(ops.node_mean(deltas), None), state
