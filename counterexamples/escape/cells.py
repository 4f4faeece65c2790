"""One cell of the escape map: R runs started in Claim 1's lock, and when each left it.

Three escape criteria, each the first t at which it fires (a run that never fires by T has
not escaped):

``span``   X_t − X_0 ∉ span(B) or ||∇f(X_t)||² ≠ ||∇f(X_0)||², to 2¹⁰ machine epsilons
           (:func:`simsgd.lock.observe`; float64 and float32 only: bfloat16's own rounding of X
           moves it off span(B) at once);
``x1e-3``  max_j |⟨A_j, X_t − X_0⟩| > 1e-3 (the independent analyst's criterion);
``x1e-1``  the same above 1e-1 (coarse enough for bfloat16);
``subspace`` P̃_t holds less than 3/4 of the noise space (|sin ∠(P̃_t, C)| > 1/2 for r = 1).

Per cell also the share of steps whose P was flagged degenerate (the QR(0) convention
applied) and max_t ||ē_t||² (ē the node-averaged error memory) over the whole run, and its maximum and
mean over three windows, [0, T/10], (T/10, T/2] and (T/2, T]: inside the lock ē grows like t
(the untransmitted gradient piles up); after an escape a bounded ē keeps the last window's
mean near the middle one's.
"""

from __future__ import annotations

import numpy as np

from simsgd.lock import escape_steps, lock_spaces, observe, share
from simsgd.problems import GeneralCounterexample, Psi2x2

from .implementations import BF16

__all__ = ["LR", "MU", "CRITERIA", "problem_for", "measure", "summary"]

LR, MU = 5e-4, 0.9
CRITERIA = ("span", "x1e-3", "x1e-1", "subspace")


def problem_for(basis, sigma, rank=1, shape=(2, 2)):
    """ψ (2×2, rank 1), or the general counterexample of ``shape`` with k = ``rank``, lock forced."""
    if shape == (2, 2) and rank == 1:
        return Psi2x2(sigma, basis=basis, lock_start=True)
    return GeneralCounterexample(*shape, signal_rank=rank, noise_scale=sigma, basis=basis, lock_start=True)


def _escapes(seen, problem):
    inner = seen.inner if seen.inner.ndim == 3 else seen.inner[..., None]
    moved = np.abs(inner - inner[:, :1]).max(axis=-1)
    noise_share = share(seen.bases, lock_spaces(problem)[0])
    return {
        "span": escape_steps(seen.locked),
        "x1e-3": escape_steps(moved <= 1e-3),
        "x1e-1": escape_steps(moved <= 1e-1),
        "subspace": escape_steps(noise_share >= 0.75),
    }


def summary(steps):
    """Escaped share, quartiles of the escape step over the runs that escaped (None: none did)."""
    hit = steps[steps >= 0]
    return {
        "escaped": int(hit.size),
        "runs": int(steps.size),
        "quartiles": None if hit.size == 0 else [float(v) for v in np.percentile(hit, [25, 50, 75])],
    }


def measure(
    basis,
    sigma,
    nodes,
    steps,
    replicas,
    *,
    rank=1,
    shape=(2, 2),
    seed=0,
    precision="float64",
    lr=LR,
    **options,
):
    """One cell: the escape summary under each criterion, the flagged share and max ||ē||².

    Parameters
    ----------
    basis : {"paper", "aligned", "random"}
    sigma, nodes, steps, replicas, seed, lr
    precision : {"float64", "float32", "bfloat16"}
        bfloat16 runs on the ``"torch-bf16"`` backend (:mod:`.implementations`); its ``span``
        criterion is None (X's own rounding leaves span(B) at once).
    rank : int
        Signal rank k of the problem, compressed at r = k.
    shape : (m, n)
        (2, 2) with k = 1: ψ; else the general counterexample of this shape.
    **options
        More :func:`simsgd.simulate` options: ``orthogonalization``, ``degenerate_qr``,
        ``backend`` (``"numpy-blas"``, ``"torch-bf16"``), ...
    """
    problem = problem_for(basis, sigma, rank, shape)
    if precision == "bfloat16":
        options = {**options, "backend": BF16}
    seen = observe(
        problem,
        method="powersgd",
        nodes=nodes,
        rank=rank,
        optimizer="msgd",
        lr=lr,
        momentum=MU,
        steps=steps,
        replicas=replicas,
        seed=seed,
        dtype="float32" if precision == "bfloat16" else precision,
        progress=False,
        **options,
    )
    escapes = _escapes(seen, problem)
    if precision == "bfloat16":
        escapes["span"] = None
    errors = seen.trace.error_norm_sq
    cuts = (0, steps // 10 + 1, steps // 2 + 1, steps + 1)
    return {
        "basis": basis,
        "sigma": sigma,
        "nodes": nodes,
        "rank": rank,
        "shape": list(shape),
        "steps": steps,
        "replicas": replicas,
        "seed": seed,
        "precision": precision,
        "lr": lr,
        **{k: v for k, v in options.items() if k != "backend"},
        "backend": options.get("backend", "numpy"),
        **{name: None if escapes[name] is None else summary(escapes[name]) for name in CRITERIA},
        "flagged_share": float(seen.degenerate.mean()),
        "max_error_norm_sq": float(errors.max()),
        "max_error_norm_sq_first_tenth": float(errors[:, : cuts[1]].max()),
        "max_error_norm_sq_windows": [
            float(errors[:, a:b].max()) if b > a else None for a, b in zip(cuts[:-1], cuts[1:])
        ],
        "mean_error_norm_sq_windows": [
            float(errors[:, a:b].mean()) if b > a else None for a, b in zip(cuts[:-1], cuts[1:])
        ],
    }
