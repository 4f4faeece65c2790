"""The problems of the studies, built from JSON-able specs (a row or a saved worst case names its problem)."""

from __future__ import annotations

import numpy as np

import simsgd
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2

__all__ = ["make", "label", "grad_norm_sq_at_start", "omega_sq_for", "control_scope", "OffSpan", "FAMILIES"]

FAMILIES = ("psi", "general", "quadratic")


class OffSpan(Psi2x2):
    """ψ (eq. 10) with every stochastic gradient perturbed by ε·ξ'·E, E a unit matrix orthogonal to
    A and B and ξ' an independent sign: unbiased, variance + ε², f unchanged.

    In the aligned basis PowerSGD+'s iterates stay in span{A, B} exactly, as in exact arithmetic;
    ε = 10⁻¹² off that span shows whether what is measured there survives a perturbation.
    """

    def __init__(self, *args, transverse: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.transverse = float(transverse)
        c, d = np.array([1.0, 1.0]) / np.sqrt(2.0), np.array([1.0, -1.0]) / np.sqrt(2.0)
        e = self.U @ np.outer(c, d) @ self.V.T  # A ∝ ddᵀ and B ∝ ccᵀ in the paper's frame
        self.E = e - self.A * np.sum(self.A * e) / 4.0 - self.B * np.sum(self.B * e) / 4.0
        self.variance += self.transverse**2

    def stochastic_grads(self, x, nodes, rng, grad=None):
        g = super().stochastic_grads(x, nodes, rng, grad)
        return g + self.transverse * rng.rademacher()[..., None, None] * self.E


def _scaled(problem, spec, build):
    """The problem again with X_0 = ``x0_scale`` × its default X_0 (⟨A_j, X_0⟩ = 2·scale)."""
    scale = spec.get("x0_scale", 1.0)
    return problem if scale == 1.0 else build(x0=scale * problem.x0)


def make(spec: dict, nodes: int):
    """The problem of ``spec`` for N = ``nodes``.

    Parameters
    ----------
    spec : dict
        ``{"family": "psi", "basis", "basis_seed", "noise_scale", "lock_start", "x0_scale", "transverse"}``,
        ``{"family": "general", "m", "n", "k", "noise_scale", "basis", "lock_start", "x0_scale"}`` or
        ``{"family": "quadratic", "m", "n", "heterogeneity", "noise", "at_optimum"}``
        (missing keys take the defaults below; ``x0_scale`` = 0.5 starts at ⟨A_j, X_0⟩ = 1, the
        edge of ψ's quadratic region, where ||∇f(X_0)||² is still 16 per direction but ΔF = 1;
        ``transverse`` = ε perturbs ψ off span{A, B} (:class:`OffSpan`); ``at_optimum`` starts the
        quadratic at X* so that ΔF = 0).
    nodes : int
        N (the quadratic draws one local problem per node).
    """
    family = spec["family"]
    if family == "psi":

        def build(x0=None):
            extra = {"transverse": spec["transverse"]} if spec.get("transverse") else {}
            return (OffSpan if extra else Psi2x2)(
                **extra,
                noise_scale=spec.get("noise_scale", 1.0),
                basis=spec.get("basis", "aligned"),
                basis_seed=spec.get("basis_seed", 0),
                lock_start=spec.get("lock_start", False),
                x0=x0,
            )

        return _scaled(build(), spec, build)
    if family == "general":

        def build(x0=None):
            return GeneralCounterexample(
                m=spec.get("m", 4),
                n=spec.get("n", 4),
                signal_rank=spec.get("k", 1),
                noise_scale=spec.get("noise_scale", 1.0),
                basis=spec.get("basis", "aligned"),
                lock_start=spec.get("lock_start", False),
                x0=x0,
            )

        return _scaled(build(), spec, build)
    if family == "quadratic":
        kw = dict(
            m=spec.get("m", 6),
            n=spec.get("n", 4),
            nodes=nodes,
            heterogeneity=spec.get("heterogeneity", 0.5),
            noise=spec.get("noise", 1.0),
            lowrank_noise=spec.get("noise", 1.0),
            seed=spec.get("seed", 0),
        )
        problem = HeterogeneousQuadratic(**kw)
        return HeterogeneousQuadratic(**kw, x0=problem.x_star) if spec.get("at_optimum") else problem
    raise ValueError(f"spec family must be one of {FAMILIES}, got {family!r}")


def label(spec: dict) -> str:
    """A short name: ``ψ aligned σ=5 X₀/2``, ``general 4×4 k=1 aligned σ=1``, ``quadratic 6×4 h=0.5``."""
    lock = " lock forced" if spec.get("lock_start") else ""
    lock += f" + {spec['transverse']:g} off-span" if spec.get("transverse") else ""
    start = f" X₀×{spec['x0_scale']:g}" if spec.get("x0_scale", 1.0) != 1.0 else ""
    if spec["family"] == "psi":
        return f"ψ {spec.get('basis', 'aligned')} σ={spec.get('noise_scale', 1.0):g}{start}{lock}"
    if spec["family"] == "general":
        return (
            f"general {spec.get('m', 4)}×{spec.get('n', 4)} k={spec.get('k', 1)} "
            f"{spec.get('basis', 'aligned')} σ={spec.get('noise_scale', 1.0):g}{start}{lock}"
        )
    start = " X₀=X*" if spec.get("at_optimum") else ""
    return f"quadratic {spec.get('m', 6)}×{spec.get('n', 4)} h={spec.get('heterogeneity', 0.5):g}{start}"


def grad_norm_sq_at_start(problem) -> float:
    """||∇f(X_0)||²: what X_t ≡ X_0 (doing nothing) scores on Theorem 4's left-hand side."""
    g = problem.grad(np.asarray(problem.x0, dtype=np.float64))
    return float(np.sum(g**2))


def omega_sq_for(problem) -> float | None:
    """None for a problem with a global ω² (ψ, the general counterexample); for the quadratic,
    whose ||∇f|| is unbounded, ||∇f(X_0)||²: ≤ max_t E||∇f(X_t)||², so the bound it enters can only
    be smaller than with the visited maximum (a pass is not bought with an inflated G²).
    """
    return None if getattr(problem, "omega_sq", None) is not None else grad_norm_sq_at_start(problem)


def control_scope(spec: dict) -> str:
    """Where Theorem 1's floor ε₀ on PowerSGD (the control) holds in floating point.

    The floor is proved in exact arithmetic. In the aligned basis the lock's zeros are exact in
    floating point, so the prediction carries over; in the paper's or a random basis the lock
    survives only while rounding keeps the lock direction exact (an independent implementation
    of the paper basis escapes it), so a predicted violation there is rounding-dependent.
    """
    if spec["family"] != "psi" or spec.get("lock_start"):
        return "no floor stated"
    return "exact" if spec.get("basis", "aligned") == "aligned" else "rounding-dependent"


def run_msgd(problem, method: str, p: dict, replicas: int, seed: int):
    """``simsgd.simulate`` with MSGD on instance ``p`` (nodes, rank, restart_period, lr, momentum, steps)."""
    return simsgd.simulate(
        problem,
        method=method,
        nodes=p["nodes"],
        rank=p["rank"],
        restart_period=p["restart_period"],
        optimizer="msgd",
        lr=p["lr"],
        momentum=p["momentum"],
        steps=p["steps"],
        replicas=replicas,
        seed=seed,
        progress=False,
    )
