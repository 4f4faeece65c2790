"""The runs of the study: one construction, method and base optimiser, and what the lock did.

On Claim 1's lock the compressed update stays in span(B) (Remark 3: for Adam too, in the
aligned and paper bases, where B's non-zero entries share one magnitude), so AdamW's
X_{t+1} = (1 − ηλ)X_t − η·u_t with u_t ∈ span(B) gives ⟨A, X_{t+1}⟩ = (1 − ηλ)⟨A, X_t⟩
(⟨A, B⟩ = 0), i.e. ⟨A, X_t⟩ = ⟨A, X_0⟩(1 − ηλ)^t = 2(1 − ηλ)^t: decay shrinks the locked
coordinate towards weight decay's fixed point X = 0. On eq. (10) that point is the minimiser,
so the lock is released; with ψ shifted (ψ(x + 2), minimiser at ⟨A, X⟩ = −2) ψ'(2(1 − ηλ)^t + 2)
= 2 for every t and ||∇f||² stays 16.
"""

from __future__ import annotations

import numpy as np

from simsgd.lock import observe
from simsgd.problems import Psi2x2
from simsgd.stats import mean_ci

__all__ = ["CONSTRUCTIONS", "NODES", "SIGMA", "closed_form", "closed_form_bound", "run"]

CONSTRUCTIONS = (("eq. (10)", 0.0), ("shifted ψ(x + 2)", 2.0))
NODES, SIGMA = 4, 5.0


def closed_form(lr, weight_decay, steps):
    """⟨A, X_t⟩ = 2(1 − ηλ)^t, t = 0..T, on the lock from the default X_0 (⟨A, X_0⟩ = 2)."""
    return 2.0 * (1.0 - lr * weight_decay) ** np.arange(steps + 1)


def closed_form_bound(steps, dtype="float64"):
    """Largest relative gap to :func:`closed_form` that rounding explains: 4·T·eps.

    Each step rounds X_t·(1 − ηλ) as X_t − ηλX_t − η·u_t (three roundings of ≤ eps/2, relative,
    on the A-coordinate), so after T steps the relative error is at most about 1.5·T·eps.
    """
    return 4.0 * steps * float(np.finfo(dtype).eps)


def run(
    shift,
    method,
    optimizer,
    weight_decay,
    lr,
    steps,
    replicas,
    *,
    lock_start=True,
    sigma=SIGMA,
    seed=0,
    dtype="float64",
):
    """One cell: ||∇f(X_T)||², the runs that kept ||∇f(X_t)||² = 16 for every t, ⟨A, X_T⟩, and for
    a locked PowerSGD run the largest relative gap of ⟨A, X_t⟩ to :func:`closed_form`.
    """
    problem = Psi2x2(sigma, basis="aligned", lock_start=lock_start, shift=shift)
    decay = {"weight_decay": weight_decay} if optimizer == "adamw" else {}
    seen = observe(
        problem,
        method=method,
        nodes=NODES,
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        replicas=replicas,
        seed=seed,
        dtype=dtype,
        progress=False,
        **decay,
    )
    grad, inner = seen.trace.grad_norm_sq, seen.inner
    stayed = (grad == grad[:, :1]).all(axis=1)
    mean, half = mean_ci(grad[:, -1])
    row = {
        "shift": shift,
        "method": method,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "lr": lr,
        "steps": steps,
        "replicas": replicas,
        "lock_start": lock_start,
        "sigma": sigma,
        "seed": seed,
        "dtype": dtype,
        "epsilon0": problem.epsilon0(NODES),
        "final_grad_norm_sq": {
            "mean": float(mean),
            "ci95": [max(0.0, float(mean - half)), float(mean + half)],
            "min": float(grad[:, -1].min()),
            "max": float(grad[:, -1].max()),
        },
        "stayed_at_initial_all_t": int(stayed.sum()),
        "inner_T": [float(inner[:, -1].min()), float(np.median(inner[:, -1])), float(inner[:, -1].max())],
    }
    if method == "powersgd" and lock_start:
        form = closed_form(lr, weight_decay if optimizer == "adamw" else 0.0, steps)
        gap = np.abs(inner - form) / np.abs(form)
        row["closed_form"] = {
            "max_relative_gap": float(gap.max()),
            "bound": closed_form_bound(steps, dtype),
            "inner_T_predicted": float(form[-1]),
        }
    return row
