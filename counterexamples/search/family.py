"""Random instances of the search family (:mod:`counterexamples.search.problem`), run with MSGD.

Instance ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])``, each parameter
independently (uniform unless said):

* m, n ∈ {2, …, 8}; signal/noise rank k ∈ {1, …, ⌊min(m, n)/2⌋}; compression rank r ∈ {1, …, k};
* σ log-uniform on [0.1, 100], per-node σ_i = σ (1 + 0.9·spread·ℓ_i) with ℓ_i evenly spaced in
  [−1, 1] and spread ∈ [0, 1];
* kink κ ∈ [0.25, 4] of φ_κ (ψ is κ = 1); noise ξ Rademacher, normal or uniform;
  heterogeneity ∈ [0, 2]; the basis seed (a Haar-random rotation);
* nodes N ∈ {1, …, 8}; momentum μ ∈ [0, 0.9] (the paper's 0.9 at the top);
* X_0 = s Σ_j u_{k+j} v_{k+j}ᵀ + ν G with s ∈ [κ/4, 5κ/2] (⟨A_j, X_0⟩ = 2s before the
  perturbation) and ν ∈ [0, κ/2], G standard normal. X_0 is kept away from stationarity:
  ||∇f(X_0)||² ≥ :data:`X0_FRACTION`·ω² (ω² = 16κ²k, Assumption 3); a draw below it redraws G.

The optimiser is MSGD (Theorem 4's), so that the step size η is the one variable the floor
is measured against (Adam's steps do not scale with η in the same way).
"""

from __future__ import annotations

import numpy as np

from .problem import NOISES, SearchProblem

X0_FRACTION = 0.25
MAX_REDRAWS = 100


def _x0_ok(problem) -> bool:
    return float(np.sum(problem.grad(problem.x0) ** 2)) >= X0_FRACTION * problem.omega_sq


def draw(seed: int, index: int):
    """Instance ``index`` of the family for ``seed``.

    Parameters
    ----------
    seed, index : int ≥ 0

    Returns
    -------
    problem_kw : dict
        Keyword arguments of :class:`~counterexamples.search.problem.SearchProblem`.
    options : dict
        ``nodes``, ``rank``, ``momentum`` of the run.

    Raises
    ------
    RuntimeError
        If no X_0 meets the constraint in :data:`MAX_REDRAWS` draws of G (cannot happen for
        s ≥ κ/4: the unperturbed X_0 meets it, and G is redrawn with ν shrinking to 0).
    """
    rng = np.random.default_rng([seed, index])
    m, n = (int(v) for v in rng.integers(2, 9, size=2))
    k = int(rng.integers(1, min(m, n) // 2 + 1))
    nodes = int(rng.integers(1, 9))
    sigma = 10 ** rng.uniform(-1, 2)
    spread = rng.uniform(0, 1) * np.linspace(-1, 1, nodes) if nodes > 1 else np.zeros(1)
    kink = rng.uniform(0.25, 4)
    problem_kw = dict(
        m=m,
        n=n,
        k=k,
        sigmas=[float(s) for s in sigma * (1 + 0.9 * spread)],
        kink=float(kink),
        noise=NOISES[int(rng.integers(0, 3))],
        heterogeneity=float(rng.uniform(0, 2)),
        basis_seed=int(rng.integers(0, 2**31)),
        x0_scale=float(kink * rng.uniform(0.25, 2.5)),
    )
    options = dict(nodes=nodes, rank=int(rng.integers(1, k + 1)), momentum=float(rng.uniform(0, 0.9)))
    noise, x0_seed = float(kink * rng.uniform(0, 0.5)), int(rng.integers(0, 2**31))
    for redraw in range(MAX_REDRAWS):
        kw = {**problem_kw, "x0_noise": noise * (1 - redraw / MAX_REDRAWS), "x0_seed": x0_seed + redraw}
        if _x0_ok(SearchProblem(**kw)):
            return kw, options
    raise RuntimeError(f"no X_0 with ||∇f(X_0)||² ≥ {X0_FRACTION}·ω² for instance {index}")
