"""Algorithm 2 (PowerSGD / PowerSGD+ with error feedback), written once.

One call of :func:`step` is one iteration t: (7a) error feedback, (7b) Algorithm 1,
the error update, and (7c) the base optimiser. It is agnostic of how nodes are held:
the simulated engine passes all N nodes in axis -3 with :data:`simsgd.ops.NUMPY`;
the torch backend passes its own node (axis of length 1) with an ``all_reduce`` ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from ._checks import check_choice
from .compressors import power_iteration_step, project, restart_floats, restart_step, svd_step
from .ops import NUMPY, Array, ArrayOps
from .optimizers import make_optimizer
from .options import (
    ERROR_FEEDBACKS,
    METHODS,
    DegenerateQR,
    ErrorFeedback,
    Method,
    OptimizerName,
    Orthogonalization,
    Restart,
)

__all__ = [
    "Config",
    "State",
    "StepInfo",
    "METHODS",
    "ERROR_FEEDBACKS",
    "init",
    "step",
    "is_restart",
    "floats_per_node",
    "mean_floats_per_step",
]

_RESTARTING = ("powersgd+", "galore")  # the methods with a restart period τ


def is_restart(t: int, restart_period: int | None) -> bool:
    """Whether step t is a restart: t mod τ = 0, with t counting from 0 (so step 0 is one).

    PowerSGD+ runs SVD-COMP at a restart and GaLore refreshes its P̃; ``restart_period=None``
    (τ = ∞, PowerSGD) never restarts. The one definition of the schedule.
    """
    return restart_period is not None and t % restart_period == 0


@dataclass(frozen=True)
class Config:
    """Options of Algorithm 2 (checked by :func:`simsgd.engine.make_config`)."""

    method: Method = "powersgd+"
    rank: int = 1
    restart_period: int = 10
    optimizer: OptimizerName = "msgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    error_feedback: ErrorFeedback = "local"
    orthogonalization: Orthogonalization = "householder"
    orthogonalization_epsilon: float = 0.0
    degenerate_qr: DegenerateQR = "previous"
    power_steps: int = 1
    weight_decay: float = 0.0
    restart: Restart = "svd"
    restart_oversampling: int = 5
    restart_power_steps: int = 1

    def is_svd_step(self, t: int) -> bool:
        """Whether step t restarts: :func:`is_restart` for PowerSGD+ and GaLore, never otherwise."""
        return self.method in _RESTARTING and is_restart(t, self.restart_period)

    def base_optimizer(self):
        return make_optimizer(self.optimizer, self.momentum, self.betas, self.adam_eps, self.weight_decay)


class State(NamedTuple):
    """Per-node state of Algorithm 2 (all replicas at once).

    x : (..., m, n)             X_t (identical on every node)
    q : (..., n, r)             Q_{t-1}
    basis : (..., m, r) | None  P̃_{t-1} (for degenerate_qr="previous")
    error : (..., N, m, n)      e_t^{(i)}
    opt : optimiser state (m_{t-1} for MSGD)
    q_negligible : (...) | None where Q_{t-1} is rounding noise (degeneracy test)
    """

    x: Array
    q: Array
    basis: Array | None
    error: Array
    opt: object  # the base optimiser's state
    q_negligible: Array | None = None


class StepInfo(NamedTuple):
    delta_hat: Array  # (..., m, n)  Δ̂_t
    momentum: Array  # (..., m, n)  m_t
    degenerate: Array | None  # bool (...): P rank-deficient relative to its inputs
    svd_step: bool
    degenerate_own_scale: Array | None = None  # bool (...): relative to P's own size


def init(x0, q0, grads_like, config: Config) -> State:
    """Algorithm 2's initialisation: e_0^{(i)} = 0, m_{-1} = 0, Q = Q_{-1}."""
    return State(x0, q0, None, grads_like * 0, config.base_optimizer().init(x0))


def floats_per_node(config: Config, t: int, m: int, n: int) -> int:
    """Floats one node sends at step t.

    (m+n)r (SSP), mn + nr (SVD: the full Δ^{(i)}, then Q^{(i)}), mn (full), nr (GaLore
    between refreshes: P̃ᵀΔ^{(i)} only), K(m+n)r (K power steps). Averaged over τ steps
    GaLore sends nr + mn/τ and PowerSGD+ (m+n)r + (mn − mr)/τ (Table 2 writes
    nr + mr + mn/τ, counting the SVD step as a full SSP step plus mn). PowerSGD+'s
    lighter restarts send :func:`simsgd.compressors.restart_floats` instead.
    """
    if config.method == "full":
        return m * n
    if config.is_svd_step(t):
        return restart_floats(config, m, n) if config.method == "powersgd+" else m * n + n * config.rank
    if config.method == "galore":
        return n * config.rank
    if config.method == "power-iteration":
        return config.power_steps * (m + n) * config.rank
    return (m + n) * config.rank


def mean_floats_per_step(
    method: Method,
    m: int,
    n: int,
    rank: int,
    restart_period: int | None,
    *,
    steps: int | None = None,
    power_steps: int = 1,
    formula: Literal["sent", "table2"] = "sent",
) -> float:
    """Floats one node sends per step, averaged, for comparisons with Table 2.

    Parameters
    ----------
    method, rank, power_steps
        As in :class:`Config`; ``restart_period=None`` is τ = ∞ (one restart, at t = 0).
    m, n : int
        The shape of the compressed matrix.
    steps : int, optional
        T: the mean of :func:`floats_per_node` over t = 0..T−1, which is what
        ``Trace.floats_sent.mean()`` measures (⌈T/τ⌉ restarts). Default: the long-run
        mean, over one period of τ steps (τ = ∞: no restart at all).
    formula : {"sent", "table2"}
        ``"sent"``: what this toolkit sends (:func:`floats_per_node`); PowerSGD+ averages
        (m+n)r + (mn − mr)/τ. ``"table2"``: the paper's Table 2, PowerSGD (m+n)r, GaLore
        nr + mn/τ, PowerSGD+ nr + mr + mn/τ (τ = ∞: mn/τ = 0, whatever ``steps``); Table 2
        has no row for ``"full"`` or ``"power-iteration"``, so these get the "sent" count.
    """
    check_choice("formula", formula, ("sent", "table2"))
    if formula == "table2" and method in ("powersgd", "powersgd+", "galore"):
        per_restart = 0.0 if restart_period is None else m * n / restart_period
        return float(
            {
                "powersgd": (m + n) * rank,
                "powersgd+": (m + n) * rank + per_restart,
                "galore": n * rank + per_restart,
            }[method]
        )
    if steps is not None:
        period, ts = restart_period or steps, range(steps)  # τ = ∞ over T steps: one restart, t = 0
    elif restart_period is not None:
        period, ts = restart_period, range(restart_period)  # one period of τ steps
    else:
        period, ts = 2, range(1, 2)  # τ = ∞ in the long run: any step that is not a restart
    config = Config(method, rank, period, power_steps=power_steps)
    return sum(floats_per_node(config, t, m, n) for t in ts) / len(ts)


def step(state: State, grads, t: int, lr: float, config: Config, ops: ArrayOps = NUMPY, sketch=None):
    """One iteration t of Algorithm 2.

    Parameters
    ----------
    state : State
    grads : array, shape (..., N, m, n)
        g_t^{(i)} = ∇F(X_t; ξ_t^{(i)}) of the nodes held here.
    t : int
    lr : float
        η_t.
    sketch : array (..., a, b) or None
        The random matrix of a lighter PowerSGD+ restart at this step
        (:func:`simsgd.engine.restart_sketch`); None otherwise.

    Returns
    -------
    state : State
        With X_{t+1}, Q_t, P̃_t, e_{t+1}, and the optimiser's state.
    info : StepInfo
    """
    deltas = grads + state.error  # (7a)
    local = config.error_feedback == "local"
    if config.method == "full":
        delta_hat, error = ops.node_mean(deltas), state.error
        q, basis, degenerate, own, svd = state.q, state.basis, None, None, False
    elif config.method == "galore":  # no error feedback
        svd = config.is_svd_step(t)
        if svd:
            out = svd_step(deltas, config.rank, want_local=False, ops=ops)
            q, basis, delta_hat = out.q, out.basis, out.global_hat
        else:
            basis = state.basis
            q, _, delta_hat = project(basis, deltas, want_local=False, ops=ops)
        error, degenerate, own = state.error, None, None
    else:
        svd = config.is_svd_step(t)
        if svd:  # (7b) PowerSGD+ restart
            out = restart_step(deltas, config, sketch, want_local=local, ops=ops)
        else:  # (7b) SSP, or (8) with K steps
            power_steps = config.power_steps if config.method == "power-iteration" else 1
            out = power_iteration_step(
                state.q,
                deltas,
                power_steps,
                previous_basis=state.basis,
                orthogonalization=config.orthogonalization,
                orthogonalization_epsilon=config.orthogonalization_epsilon,
                degenerate_qr=config.degenerate_qr,
                want_local=local,
                q_negligible=state.q_negligible,
                ops=ops,
            )
        q, basis, degenerate, delta_hat = out.q, out.basis, out.degenerate, out.global_hat
        own = out.degenerate_own_scale
        if local:  # e ← Δ^{(i)} − P̃ Q^{(i)ᵀ}
            error = deltas - out.local_hat
        elif config.error_feedback == "global":  # e ← Δ^{(i)} − Δ̂
            error = deltas - delta_hat[..., None, :, :]
        else:
            error = state.error
    update, opt, momentum = config.base_optimizer().update(state.opt, delta_hat, lr, state.x)  # (7c)
    negligible = out.q_negligible if config.method not in ("full", "galore") else None
    new_state = State(state.x - update, q, basis, error, opt, negligible)
    return new_state, StepInfo(delta_hat, momentum, degenerate, svd, own)
