"""The problems of the studies, built from JSON-able specs (a row or a saved worst case names its problem)."""

from __future__ import annotations

import numpy as np

import simsgd
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2

__all__ = ["make", "label", "epsilon0", "grad_norm_sq_at_start", "FAMILIES"]

FAMILIES = ("psi", "general", "quadratic")


def make(spec: dict, nodes: int):
    """The problem of ``spec`` for N = ``nodes``.

    Parameters
    ----------
    spec : dict
        ``{"family": "psi", "basis", "noise_scale", "lock_start"}``,
        ``{"family": "general", "m", "n", "k", "noise_scale", "basis", "lock_start"}`` or
        ``{"family": "quadratic", "m", "n", "heterogeneity", "noise", "at_optimum"}``
        (missing keys take the defaults below; ``at_optimum`` starts at X* so that ΔF = 0).
    nodes : int
        N (the quadratic draws one local problem per node).
    """
    family = spec["family"]
    if family == "psi":
        return Psi2x2(
            noise_scale=spec.get("noise_scale", 1.0),
            basis=spec.get("basis", "aligned"),
            lock_start=spec.get("lock_start", False),
        )
    if family == "general":
        return GeneralCounterexample(
            m=spec.get("m", 4),
            n=spec.get("n", 4),
            signal_rank=spec.get("k", 1),
            noise_scale=spec.get("noise_scale", 1.0),
            basis=spec.get("basis", "aligned"),
            lock_start=spec.get("lock_start", False),
        )
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
    """A short name: ``ψ aligned σ=1``, ``general 4×4 k=1 σ=1``, ``quadratic 6×4 h=0.5``."""
    lock = " lock forced" if spec.get("lock_start") else ""
    if spec["family"] == "psi":
        return f"ψ {spec.get('basis', 'aligned')} σ={spec.get('noise_scale', 1.0):g}{lock}"
    if spec["family"] == "general":
        return (
            f"general {spec.get('m', 4)}×{spec.get('n', 4)} k={spec.get('k', 1)} "
            f"{spec.get('basis', 'aligned')} σ={spec.get('noise_scale', 1.0):g}{lock}"
        )
    start = " X₀=X*" if spec.get("at_optimum") else ""
    return f"quadratic {spec.get('m', 6)}×{spec.get('n', 4)} h={spec.get('heterogeneity', 0.5):g}{start}"


def epsilon0(problem, nodes: int) -> float | None:
    """Theorem 1's ε₀ (PowerSGD's floor on E||∇f(X_t)||²) where the problem states one, else None.

    The general counterexample shares ψ's lock (one sign per node for all k noise
    directions); its floor, 16k·2^(−N) for r ≤ k, is not proved in the paper, so it is not
    claimed here.
    """
    if isinstance(problem, Psi2x2) and not problem.lock_start:
        return float(problem.epsilon0(nodes))
    return None


def grad_norm_sq_at_start(problem) -> float:
    """||∇f(X_0)||²: what X_t ≡ X_0 (doing nothing) scores on Theorem 4's left-hand side."""
    g = problem.grad(np.asarray(problem.x0, dtype=np.float64))
    return float(np.sum(g**2))


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
