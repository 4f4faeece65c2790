"""The problems the studies use, with a short label each."""

from __future__ import annotations

import numpy as np

from simsgd.problems import HeterogeneousQuadratic, Psi2x2

__all__ = ["psi", "quadratic"]


def psi(basis: str, noise_scale: float = 5.0):
    """The ψ example (10) in the paper's or the aligned basis."""
    return Psi2x2(noise_scale=noise_scale, basis=basis), f"ψ {basis} σ={noise_scale:g}"


def quadratic(
    nodes: int, m: int = 6, n: int = 4, heterogeneity: float = 0.5, start_offset: float | None = None
):
    """HeterogeneousQuadratic (noise a = b = 1, seed 0).

    With ``start_offset`` = s, X_0 = X* + s·1 (all ones), so that ΔF = ½ s² 1ᵀH1 does not
    change with the number of nodes when heterogeneity is 0 (H = I); used by the sweeps in N.
    """
    problem = HeterogeneousQuadratic(
        m=m, n=n, nodes=nodes, heterogeneity=heterogeneity, noise=1.0, lowrank_noise=1.0, seed=0
    )
    if start_offset is not None:
        problem = HeterogeneousQuadratic(
            m=m,
            n=n,
            nodes=nodes,
            heterogeneity=heterogeneity,
            noise=1.0,
            lowrank_noise=1.0,
            seed=0,
            x0=problem.x_star + start_offset * np.ones((m, n)),
        )
    return problem, f"quadratic {m}×{n} h={heterogeneity:g}"
