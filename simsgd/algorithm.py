"""Algorithm 2 (PowerSGD / PowerSGD+ with error feedback), written once.

One call of :func:`step` is one iteration t: (7a) error feedback, (7b) Algorithm 1,
the error update, and (7c) the base optimiser. It is agnostic of how nodes are held:
the simulated engine passes all N nodes in axis -3 with :data:`simsgd.ops.NUMPY`;
the torch backend passes its own node (axis of length 1) with an ``all_reduce`` ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .compressors import power_iteration_step, project, restart_floats, restart_step, svd_step
from .ops import NUMPY
from .optimizers import make_optimizer

__all__ = ["Config", "State", "StepInfo", "METHODS", "ERROR_FEEDBACKS", "init", "step", "floats_per_node"]

METHODS = ("powersgd", "powersgd+", "full", "galore", "power-iteration")
"""PowerSGD (SSP-COMP every step), PowerSGD+ (SVD-COMP when t mod τ = 0), uncompressed
averaging, and two baselines of Table 2: GaLore (P̃ from an SVD of the averaged Δ when
t mod τ = 0, kept fixed in between, nodes send P̃ᵀΔ^{(i)}, never error feedback) and
PowerSGD with K = ``power_steps`` power-iteration steps (8) per iteration."""
ERROR_FEEDBACKS = ("local", "global", "none")


@dataclass(frozen=True)
class Config:
    """Options of Algorithm 2 (checked by :func:`simsgd.engine.make_config`)."""

    method: str = "powersgd+"
    rank: int = 1
    restart_period: int = 10
    optimizer: str = "msgd"
    momentum: float = 0.9
    betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8
    error_feedback: str = "local"
    orthogonalization: str = "householder"
    orthogonalization_epsilon: float = 0.0
    degenerate_qr: str = "previous"
    power_steps: int = 1
    weight_decay: float = 0.0
    restart: str = "svd"
    restart_oversampling: int = 5
    restart_power_steps: int = 1

    def is_svd_step(self, t: int) -> bool:
        """PowerSGD+ restarts with SVD-COMP, and GaLore refreshes its P̃, when t mod τ = 0
        (t counts from 0).
        """
        return self.method in ("powersgd+", "galore") and t % self.restart_period == 0

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

    x: object
    q: object
    basis: object
    error: object
    opt: object
    q_negligible: object = None


class StepInfo(NamedTuple):
    delta_hat: object  # (..., m, n)  Δ̂_t
    momentum: object  # (..., m, n)  m_t
    degenerate: object  # bool (...) or None: P rank-deficient relative to its inputs
    svd_step: bool
    degenerate_own_scale: object = None  # bool (...) or None: relative to P's own size


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


def step(state: State, grads, t: int, lr: float, config: Config, ops=NUMPY, sketch=None):
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
