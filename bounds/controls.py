"""Compressors that make a check fail on purpose: each claim's negative control.

:class:`Silent` sends nothing, so X_t ≡ X_0 and every non-vacuous Theorem 4 bound (< ||∇f(X_0)||²)
must fail. :class:`Kick` breaks Lemma 1 (||Δ̂|| > ||Δ̄||) while keeping Lemma 3: it adds ±z in
turn, so its error memory is ē = ∓z (||ē||² = ||z||², chosen below Lemma 3's bound) but it applies
ḡ_t ± 2z, and at μ = 0 its momentum ||m_t||² ≈ 4||z||² exceeds Lemma 4's bound — the only way
Lemma 4 can fail once Lemma 3 holds (see :func:`simsgd.check.check_lemma4`).
"""

from __future__ import annotations

import numpy as np

from simsgd import check, theory
from simsgd.compression import Compression

from . import problems

__all__ = ["Silent", "Kick", "run"]


class Silent:
    """A compressor that sends nothing and keeps no error memory: X never moves."""

    name, error_feedback, period = "silent", False, None

    def basis_shape(self, shape):
        return None

    def init(self, q0):
        return ()

    def restart_at(self, t):
        return False

    def floats(self, t, shape, restart):
        return 0.0

    def compress(self, state, deltas, t, *, errors, ops, draws, want_local):
        return Compression(ops.zeros_like(deltas[..., 0, :, :]), None), state


class Kick:
    """Δ̂_t^{(i)} = Δ_t^{(i)} + (−1)^t z with ||z||² = ``size_sq`` (z ∝ the all-ones matrix).

    With local error feedback e_{t+1}^{(i)} = −(−1)^t z on every node, so ||ē_t||² = ||z||² for t ≥ 1.
    """

    name, error_feedback, period = "kick", True, None

    def __init__(self, size_sq: float):
        self.size_sq = float(size_sq)

    def basis_shape(self, shape):
        return None

    def init(self, q0):
        return ()

    def restart_at(self, t):
        return False

    def floats(self, t, shape, restart):
        return float(shape[0] * shape[1])

    def compress(self, state, deltas, t, *, errors, ops, draws, want_local):
        m, n = deltas.shape[-2:]
        z = ops.asarray(np.full((m, n), (-1.0) ** t * np.sqrt(self.size_sq / (m * n))), like=deltas)
        local = deltas + z
        return Compression(ops.node_mean(local), local if want_local else None), state


def run(share, lemma, seed: int, alpha: float, steps: int = 200) -> dict:
    """The negative controls that need their own runs.

    ``silent``: :class:`Silent` on the first row of the :class:`bounds.rows.Setting` ``share``
    (Theorem 4 must fail: X_t ≡ X_0 scores ||∇f(X_0)||² > bound). ``kick``: :class:`Kick` with
    ||z||² = 0.8 × Lemma 3's bound on ``lemma`` = (spec, N, r, τ, lr) at μ = 0 for ``steps`` steps:
    Lemma 3 holds, Lemma 4 fails.
    """
    problem = problems.make(share.spec, share.nodes)
    kw = dict(
        nodes=share.nodes, rank=share.rank, restart_period=share.restart_period, momentum=share.momentum
    )
    silent = check.check_theorem4(
        problem,
        method=Silent(),
        paired=False,
        control=False,
        steps=share.horizons[0],
        lr=share.lr,
        replicas=share.replicas,
        seed=seed,
        alpha=alpha,
        **kw,
    )
    spec, nodes, rank, tau, lr = lemma
    problem = problems.make(spec, nodes)
    c = theory.constants(problem)
    size_sq = 0.8 * theory.lemma3_bound(tau, c.G_sq, theory.delta(rank, problem.shape))
    kw = dict(
        nodes=nodes, rank=rank, restart_period=tau, momentum=0.0, lr=lr, steps=steps, replicas=32, seed=seed
    )
    kick = {
        name: fn(problem, method=Kick(size_sq), control=False, alpha=alpha, **kw).to_dict()
        for name, fn in (("lemma3", check.check_lemma3), ("lemma4", check.check_lemma4))
    }
    return dict(silent=silent.to_dict(), kick=dict(kick, size_sq=size_sq))
