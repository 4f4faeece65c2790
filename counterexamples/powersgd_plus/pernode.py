"""Per-node noise scales σ_i and degenerate steps: which method, which steps.

In Claim 1's lock (P̃ = C, the "B-lock") an SSP step's P is proportional to Σ_i σ_i ξ_i: it
vanishes only where a signed sum of the σ_i does, never for σ = (5, 10). But PowerSGD+'s restarts
can move the compressor onto the signal (P̃ ∝ A's column, the "A-lock"), and there P is
proportional to Σ_i (1 − ξ_i)ψ'(⟨A, X⟩), which vanishes when every ξ_i = +1 — at that step or
the one before (then Q_{t−1} = 0) — whatever the σ_i: probability 1 − (1 − 2^{−N})² per A-locked
step (0.44 for N = 2).

Each step t is classified by the basis it started from, P̃_{t−1} (P̃ of step 0 is Q_{-1}'s): B-lock
(all of P̃ in the noise space), A-lock (all in the signal space), or neither; and by its run's
history: before or after the run, having been in the B-lock, first left it.
"""

from __future__ import annotations

import numpy as np

from simsgd.lock import lock_spaces, observe, share
from simsgd.problems import Psi2x2

__all__ = ["CONFIGS", "measure", "expected_a_lock_share"]

CONFIGS = ((5.0, 10.0), (5.0, 10.0, 5.0, 10.0), (5.0, 10.0, 15.0), (5.0, 5.0))
"""σ_i: the README's example, two with a vanishing signed sum (5 − 10 − 5 + 10, 5 + 10 − 15), and
one common σ (the construction's even-N gap, the control)."""


def expected_a_lock_share(nodes):
    """1 − (1 − 2^{−N})²: the share of A-locked SSP steps with P = 0 (ξ ≡ +1 now or one step earlier)."""
    return 1.0 - (1.0 - 2.0**-nodes) ** 2


def _split(mask, degenerate):
    """{"steps", "degenerate", "share"} over the steps where ``mask`` holds."""
    steps, hits = int(mask.sum()), int((degenerate & mask).sum())
    return {"steps": steps, "degenerate": hits, "share": hits / steps if steps else None}


def measure(sigmas, method, steps, replicas, *, lr=5e-4, seed=0, dtype="float64"):
    """Degenerate steps of one run set, split by step kind, compressor state and lock history.

    Returns
    -------
    dict
        ``degenerate_share`` of all replica-steps (what ``python -m simsgd.counterexample``
        prints), and ``by_state`` / ``by_history``: {"steps", "degenerate", "share"} for SSP steps
        in the B-lock, in the A-lock and in neither, for restart steps, and for SSP steps before
        and after the run first left the B-lock.
    """
    problem = Psi2x2(list(sigmas), basis="aligned")
    seen = observe(
        problem,
        method=method,
        nodes=len(sigmas),
        optimizer="msgd",
        lr=lr,
        momentum=0.9,
        restart_period=10,
        steps=steps,
        replicas=replicas,
        seed=seed,
        dtype=dtype,
        progress=False,
    )
    noise, signal = lock_spaces(problem)
    before = seen.bases[:, :-1]  # P̃_{t−1} for t ≥ 1
    b_lock = np.ones(seen.degenerate.shape, bool)
    a_lock = np.zeros(seen.degenerate.shape, bool)
    b_lock[:, 1:] = share(before, noise) == 1.0
    a_lock[:, 1:] = share(before, signal) == 1.0
    b_lock[:, 0] = False  # step 0 starts from Q_{-1}, not from a P̃
    been_in = np.cumsum(b_lock, axis=1) > 0
    after = np.cumsum(been_in & ~b_lock, axis=1) > 0  # was in the B-lock, then left it
    ssp, degenerate = ~seen.restart, seen.degenerate
    return {
        "sigmas": list(sigmas),
        "nodes": len(sigmas),
        "method": method,
        "steps": steps,
        "replicas": replicas,
        "lr": lr,
        "seed": seed,
        "dtype": dtype,
        "degenerate_share": float(degenerate.mean()),
        "by_state": {
            "SSP in B-lock": _split(ssp & b_lock, degenerate),
            "SSP in A-lock": _split(ssp & a_lock, degenerate),
            "SSP elsewhere": _split(ssp & ~a_lock & ~b_lock, degenerate),
            "restart": _split(seen.restart, degenerate),
        },
        "by_history": {
            "SSP before leaving the B-lock": _split(ssp & ~after, degenerate),
            "SSP after leaving the B-lock": _split(ssp & after, degenerate),
        },
        "expected_a_lock_share": expected_a_lock_share(len(sigmas)),
        "final_grad_norm_sq": float(seen.trace.grad_norm_sq[:, -1].mean()),
    }
