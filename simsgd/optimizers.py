"""Base optimisers of Algorithm 2, step (7c), as pure ``init``/``update`` pairs.

``update(state, delta_hat, lr)`` returns ``(step, state, momentum)``: the caller sets
X_{t+1} = X_t − step, and ``momentum`` is the m_t the trace records (for SGD, which
has none, m_t = Δ̂_t, i.e. MSGD with μ = 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .options import OPTIMIZERS

__all__ = ["Optimizer", "sgd", "msgd", "adam", "make_optimizer", "OPTIMIZERS"]


class Optimizer(NamedTuple):
    init: Callable
    update: Callable


def sgd() -> Optimizer:
    """X ← X − η Δ̂_t."""

    def init(x):
        return ()

    def update(state, delta_hat, lr):
        return lr * delta_hat, state, delta_hat

    return Optimizer(init, update)


def msgd(momentum: float) -> Optimizer:
    """(7c) exactly: m_t = μ m_{t-1} + Δ̂_t, X ← X − η m_t (no dampening, no Nesterov)."""

    def init(x):
        return x * 0

    def update(m, delta_hat, lr):
        m = momentum * m + delta_hat
        return lr * m, m, m

    return Optimizer(init, update)


class AdamState(NamedTuple):
    count: int
    m: object
    v: object


def adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Bias-corrected Adam applied to Δ̂_t: X ← X − η m̂_t / (√v̂_t + ε)."""

    def init(x):
        return AdamState(0, x * 0, x * 0)

    def update(state, delta_hat, lr):
        count = state.count + 1
        m = b1 * state.m + (1 - b1) * delta_hat
        v = b2 * state.v + (1 - b2) * delta_hat * delta_hat
        m_hat = m / (1 - b1**count)
        v_hat = v / (1 - b2**count)
        return lr * m_hat / (v_hat**0.5 + eps), AdamState(count, m, v), m

    return Optimizer(init, update)


def make_optimizer(name: str, momentum: float = 0.9, betas=(0.9, 0.999), eps: float = 1e-8) -> Optimizer:
    """The base optimiser called ``name`` ("sgd" | "msgd" | "adam")."""
    if name == "sgd":
        return sgd()
    if name == "msgd":
        return msgd(momentum)
    if name == "adam":
        return adam(*betas, eps)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {name!r}")
