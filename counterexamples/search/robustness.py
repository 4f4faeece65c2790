"""The most extreme instance under perturbations, each of which changes exactly one thing.

* ``fresh seeds``: the run seed (new ξ and Q_{−1}); the instance and X_0 unchanged;
* ``X0 perturbed``: X_0 + D with ||D||_F = :data:`X0_PERTURBATION`·||X_0||_F, D a seeded
  Gaussian direction; the seeds unchanged;
* ``rotation j``: X ↦ R_m X R_nᵀ (Haar R_m, R_n from seed j) applied to A_j, B, H_i and X_0
  (:meth:`~counterexamples.search.problem.SearchProblem.rotated`): an orthogonally equivalent
  instance; the seeds unchanged (so Q_{−1} is not rotated with it).

Each row reruns PowerSGD and PowerSGD+ on the whole ladder.
"""

from __future__ import annotations

import numpy as np

from .analysis import instance_summary
from .ladder import run_ladder
from .problem import SearchProblem

X0_PERTURBATION = 1e-3
FRESH_SEED = 1000
METHODS = ("powersgd", "powersgd+")


def perturbed_x0(x0, seed: int, size: float = X0_PERTURBATION):
    """X_0 + D, D Gaussian with ||D||_F = size·||X_0||_F."""
    d = np.random.default_rng([seed, 3]).standard_normal(x0.shape)
    return x0 + size * np.linalg.norm(x0) * d / np.linalg.norm(d)


def robustness_ladders(problem_kw, options, settings, rotations: int) -> dict:
    """Row name -> (what it perturbs, ladder); see the module docstring."""
    problem = SearchProblem(**problem_kw)
    x0 = perturbed_x0(problem.x0, 0)
    rows = {
        "fresh seeds": (
            f"the run seed ({FRESH_SEED} instead of 0): new ξ and Q_-1",
            run_ladder(problem, options, settings, METHODS, seed=FRESH_SEED),
        ),
        "X0 perturbed": (
            f"X_0 + D, ||D|| = {X0_PERTURBATION:g}·||X_0|| = {np.linalg.norm(x0 - problem.x0):.3g}, "
            f"||∇f(X_0 + D)||² = {float(np.sum(problem.grad(x0) ** 2)):.4g} "
            f"(was {float(np.sum(problem.grad(problem.x0) ** 2)):.4g})",
            run_ladder(problem, options, settings, METHODS, x0=x0),
        ),
    }
    for j in range(rotations):
        rows[f"rotation {j}"] = (
            f"X -> R_m X R_n^T (Haar, seed {j}) applied to A_j, B, H_i and X_0",
            run_ladder(problem.rotated(j), options, settings, METHODS),
        )
    return rows


def summarise(rows: dict) -> dict:
    """Per row: what it perturbs, the ratio at each η and the shrink verdicts."""
    out = {}
    for name, (what, ladder) in rows.items():
        summary = instance_summary(ladder)
        out[name] = {
            "perturbs": what,
            "ratio": summary["ratio"],
            "shrink": {m: s["verdict"] for m, s in summary["shrink"].items()},
            "floors": {m: [f.get("floor") for f in fs] for m, fs in summary["floors"].items()},
        }
    return out
