"""Base optimisers of Algorithm 2, step (7c), as pure ``init``/``update`` pairs.

``update(state, delta_hat, lr, x)`` returns ``(step, state, momentum)``: the caller sets
X_{t+1} = X_t − step, and ``momentum`` is the m_t the trace records (for SGD, which
has none, m_t = Δ̂_t, i.e. MSGD with μ = 0). ``x`` = X_t is read only by decoupled
weight decay (λ > 0): X_{t+1} = (1 − ηλ) X_t − η·(the optimiser's direction), as
PyTorch's ``AdamW`` (and ``SGD`` with decoupled decay) do. Plain arithmetic only, so
torch tensors work as NumPy arrays do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .options import OPTIMIZERS

__all__ = ["Optimizer", "sgd", "msgd", "adam", "adamw", "make_optimizer", "OPTIMIZERS"]


class Optimizer(NamedTuple):
    init: Callable
    update: Callable


def _decayed(step, x, lr, weight_decay):
    """``step`` plus the decoupled weight decay ηλX_t (none for λ = 0)."""
    return step if weight_decay == 0 else step + (lr * weight_decay) * x


def sgd(weight_decay: float = 0.0) -> Optimizer:
    """X ← X − η Δ̂_t (− ηλX with decoupled weight decay λ)."""

    def init(x):
        return ()

    def update(state, delta_hat, lr, x=None):
        return _decayed(lr * delta_hat, x, lr, weight_decay), state, delta_hat

    return Optimizer(init, update)


def msgd(momentum: float, weight_decay: float = 0.0) -> Optimizer:
    """(7c) exactly: m_t = μ m_{t-1} + Δ̂_t, X ← X − η m_t (no dampening, no Nesterov), and
    X ← X − ηλX_t with decoupled weight decay λ.
    """

    def init(x):
        return x * 0

    def update(m, delta_hat, lr, x=None):
        m = momentum * m + delta_hat
        return _decayed(lr * m, x, lr, weight_decay), m, m

    return Optimizer(init, update)


class AdamState(NamedTuple):
    count: int
    m: object
    v: object


def adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Bias-corrected Adam applied to Δ̂_t: X ← X − η m̂_t / (√v̂_t + ε)."""
    return adamw(b1, b2, eps, 0.0)


def adamw(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-2) -> Optimizer:
    """AdamW (Loshchilov & Hutter): X ← (1 − ηλ) X − η m̂_t / (√v̂_t + ε), as ``torch.optim.AdamW``.

    The decay is decoupled from Δ̂_t, so it reaches every direction of X, also the ones
    the compressor never transmits (Theorem 1's lock: ⟨A, X_t⟩ = (1 − ηλ)^t ⟨A, X_0⟩ → 0).
    """

    def init(x):
        return AdamState(0, x * 0, x * 0)

    def update(state, delta_hat, lr, x=None):
        count = state.count + 1
        m = b1 * state.m + (1 - b1) * delta_hat
        v = b2 * state.v + (1 - b2) * delta_hat * delta_hat
        m_hat = m / (1 - b1**count)
        v_hat = v / (1 - b2**count)
        step = _decayed(lr * m_hat / (v_hat**0.5 + eps), x, lr, weight_decay)
        return step, AdamState(count, m, v), m

    return Optimizer(init, update)


def make_optimizer(
    name: str, momentum: float = 0.9, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
) -> Optimizer:
    """The base optimiser called ``name`` ("sgd" | "msgd" | "adam" | "adamw").

    ``weight_decay`` λ is decoupled (applied to X_t, not added to Δ̂_t); Adam takes none
    (Adam with decoupled decay is "adamw").
    """
    if name == "adam" and weight_decay != 0:
        raise ValueError(
            "weight_decay must be 0 for optimizer='adam'; use optimizer='adamw' for decoupled decay"
        )
    if name == "sgd":
        return sgd(weight_decay)
    if name == "msgd":
        return msgd(momentum, weight_decay)
    if name == "adam":
        return adam(*betas, eps)
    if name == "adamw":
        return adamw(*betas, eps, weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {name!r}")
