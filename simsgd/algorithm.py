"""Algorithm 2 (PowerSGD / PowerSGD+ with error feedback), written once, for any compressor.

One call of :func:`step` is one iteration t: (7a) error feedback, (7b) the compressor
(:class:`simsgd.compression.Compressor`: Algorithm 1 for PowerSGD and PowerSGD+), the error
update, and (7c) the base optimiser. It is agnostic of how nodes are held: the simulated engine
passes all N nodes in axis -3 with :data:`simsgd.ops.NUMPY`; the torch backend passes its own
node (axis of length 1) with an ``all_reduce`` ops.

:class:`Config` holds every option of Algorithm 2 and checks it when built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

from ._checks import check_choice, check_int, check_real
from .compression import Compressor
from .compressors import RESTART_KINDS
from .ops import NUMPY, Array, ArrayOps
from .optimizers import Optimizer, make_optimizer
from .options import (
    DEGENERATE_QR,
    ERROR_FEEDBACKS,
    OPTIMIZERS,
    ORTHOGONALIZATIONS,
    DegenerateQR,
    ErrorFeedback,
    OptimizerName,
    Orthogonalization,
)
from .registry import build
from .restarts import RestartRule, as_rule, is_restart

__all__ = [
    "Config",
    "State",
    "StepInfo",
    "init",
    "step",
    "is_restart",
    "floats_per_node",
    "mean_floats_per_step",
]


@dataclass(frozen=True)
class Config:
    """Every option of Algorithm 2, checked when built (by keyword): see :func:`simsgd.simulate`.

    ``method`` is a registered name (:func:`simsgd.registry.names`) or a
    :class:`~simsgd.compression.Compressor`; ``restart_period`` is τ ≥ 1 or a
    :class:`~simsgd.restarts.RestartRule`. The compressor and the base optimiser are built once,
    on first use (:attr:`compressor`, :attr:`base_optimizer`).

    Raises
    ------
    ValueError
        An option outside its range, naming it.
    """

    method: str | Compressor = "powersgd+"
    rank: int = 1
    restart_period: int | RestartRule = 10
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
    restart: str = "svd"
    restart_oversampling: int = 5
    restart_power_steps: int = 1

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("rank", check_int("rank", self.rank, 1))
        as_rule(self.restart_period)  # checks τ or the rule
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        put("momentum", check_real("momentum", self.momentum, 0.0, 1.0, high_open=True))
        try:
            betas = tuple(self.betas)
        except TypeError:
            betas = ()
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (β1, β2) in [0, 1), got {self.betas!r}")
        put(
            "betas",
            tuple(check_real(f"betas[{i}]", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas)),
        )
        put("adam_eps", check_real("adam_eps", self.adam_eps, 0.0, low_open=True))
        check_choice("error_feedback", self.error_feedback, ERROR_FEEDBACKS)
        check_choice("orthogonalization", self.orthogonalization, ORTHOGONALIZATIONS)
        put(
            "orthogonalization_epsilon",
            check_real("orthogonalization_epsilon", self.orthogonalization_epsilon, 0.0),
        )
        check_choice("degenerate_qr", self.degenerate_qr, DEGENERATE_QR)
        put("power_steps", check_int("power_steps", self.power_steps, 1))
        put("weight_decay", check_real("weight_decay", self.weight_decay, 0.0))
        if self.optimizer == "adam" and self.weight_decay != 0:
            raise ValueError(
                "weight_decay must be 0 for optimizer='adam'; use optimizer='adamw' for decoupled decay"
            )
        check_choice("restart", self.restart, tuple(RESTART_KINDS))
        put("restart_oversampling", check_int("restart_oversampling", self.restart_oversampling, 0))
        low = 0 if self.restart == "randomized" else 1
        put("restart_power_steps", check_int("restart_power_steps", self.restart_power_steps, low))
        self.compressor  # noqa: B018 (build it now: an unknown method is refused with the options)

    @classmethod
    def from_options(cls, options: dict) -> Config:
        """The Config of the entries of ``options`` that are its fields (others are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})

    def checked_for(self, shape: tuple[int, int]) -> Config:
        """Self, after checking the options that depend on X's shape (m, n): 1 ≤ rank ≤ min(m, n)."""
        check_int("rank", self.rank, 1, min(shape))
        return self

    @cached_property
    def compressor(self) -> Compressor:
        """The compressor ``method`` names (built from these options), or ``method`` itself."""
        return build(self.method, self)

    @cached_property
    def base_optimizer(self) -> Optimizer:
        """The base optimiser of (7c)."""
        return make_optimizer(self.optimizer, self.momentum, self.betas, self.adam_eps, self.weight_decay)

    def restart_at(self, t: int) -> bool | None:
        """Whether step t restarts, when t alone decides (None: the run's state decides)."""
        return self.compressor.restart_at(t)

    def describe(self) -> dict[str, Any]:
        """The options as plain values (a compressor or rule object by its ``repr``), for traces and JSON."""
        plain = (str, int, float, bool, tuple, type(None))
        return {
            f.name: v if isinstance(v, plain) else repr(v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        } | {"method": self.compressor.name}


class State(NamedTuple):
    """Per-node state of Algorithm 2 (all replicas at once).

    x : (..., m, n)             X_t (identical on every node)
    compressor : any            the compressor's state (:class:`simsgd.methods.PowerState` for PowerSGD)
    error : (..., N, m, n)      e_t^{(i)}
    opt : optimiser state (m_{t-1} for MSGD)
    """

    x: Array
    compressor: Any
    error: Array
    opt: Any

    @property
    def q(self) -> Array | None:
        """Q_{t−1} of a compressor that keeps one (None otherwise)."""
        return getattr(self.compressor, "q", None)


class StepInfo(NamedTuple):
    delta_hat: Array  # (..., m, n)  Δ̂_t
    momentum: Array  # (..., m, n)  m_t
    degenerate: Array | None  # bool (...): P rank-deficient relative to its inputs
    restart: Any  # bool, or bool (...) per replica: the step restarted
    degenerate_own_scale: Array | None = None  # bool (...): relative to P's own size


def init(x0, q0, grads_like, config: Config) -> State:
    """Algorithm 2's initialisation: e_0^{(i)} = 0, m_{-1} = 0, the compressor's state from Q_{−1}."""
    return State(x0, config.compressor.init(q0), grads_like * 0, config.base_optimizer.init(x0))


def floats_per_node(config: Config, t: int, m: int, n: int, restart: bool | None = None) -> float:
    """Floats one node sends at step t (``restart``: whether it restarts; default the schedule's).

    (m+n)r (SSP), mn + nr (SVD: the full Δ^{(i)}, then Q^{(i)}), mn (full), nr (GaLore
    between refreshes: P̃ᵀΔ^{(i)} only), K(m+n)r (K power steps). Averaged over τ steps
    GaLore sends nr + mn/τ and PowerSGD+ (m+n)r + (mn − mr)/τ (Table 2 writes
    nr + mr + mn/τ, counting the SVD step as a full SSP step plus mn). PowerSGD+'s
    lighter restarts send :func:`simsgd.compressors.restart_floats` instead.

    Raises
    ------
    ValueError
        ``restart`` not given for a step whose restart the run's state decides.
    """
    if restart is None:
        restart = config.restart_at(t)
        if restart is None:
            raise ValueError(f"step {t} restarts or not by the run's state: pass restart=True or False")
    return config.compressor.floats(t, (m, n), bool(restart))


def mean_floats_per_step(
    method: str,
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
        has no row for other methods, so these get the "sent" count.
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
    config = Config(method=method, rank=rank, restart_period=period, power_steps=power_steps)
    return sum(floats_per_node(config, t, m, n) for t in ts) / len(ts)


def step(state: State, grads, t: int, lr: float, config: Config, ops: ArrayOps = NUMPY, draws=None):
    """One iteration t of Algorithm 2.

    Parameters
    ----------
    state : State
    grads : array, shape (..., N, m, n)
        g_t^{(i)} = ∇F(X_t; ξ_t^{(i)}) of the nodes held here.
    t : int
    lr : float
        η_t.
    config : Config
    ops : ArrayOps
    draws : simsgd.compression.Draws, optional
        The step's random numbers for a randomised compressor (e.g. a lighter restart's sketch).

    Returns
    -------
    state : State
        With X_{t+1}, the compressor's state after step t, e_{t+1}, and the optimiser's state.
    info : StepInfo
    """
    compressor = config.compressor
    deltas = grads + state.error  # (7a)
    keeps_error = compressor.error_feedback and config.error_feedback != "none"
    local = keeps_error and config.error_feedback == "local"
    out, compressor_state = compressor.compress(  # (7b)
        state.compressor, deltas, t, errors=state.error, ops=ops, draws=draws, want_local=local
    )
    if local:  # e ← Δ^{(i)} − Δ̂^{(i)} (the paper's P̃ Q^{(i)ᵀ})
        error = deltas - out.local_hat
    elif keeps_error:  # e ← Δ^{(i)} − Δ̂ (PyTorch's hook)
        error = deltas - out.global_hat[..., None, :, :]
    else:
        error = state.error
    update, opt, momentum = config.base_optimizer.update(state.opt, out.global_hat, lr, state.x)  # (7c)
    new_state = State(state.x - update, compressor_state, error, opt)
    return new_state, StepInfo(
        out.global_hat, momentum, out.degenerate, out.restart, out.degenerate_own_scale
    )
