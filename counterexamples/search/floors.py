"""A method's stationary floor at one step size: :func:`measure`, on the ladder η_k = η₀·10^{−k}.

The step sizes are η_k = c₀(1 − μ)/(2L)·10^{−k} (c₀ = 1: the largest η Theorem 4 admits). The
horizon T_k covers ``span`` relaxation times of uncompressed MSGD on the quadratic part of f
(curvature L): T = span/(−ln ρ), rounded up to a multiple of 4, with ρ the spectral radius of
heavy ball, the larger root modulus of λ² − (1 + μ − ηL)λ + μ. Where MSGD is well overdamped
(ηL ≪ (1 − √μ)²: k = 2 for every μ ≤ 0.9, k = 1 for μ below ~0.8) −ln ρ ≈ ηL/(1 − μ), so
T ∝ 1/η with T·η ≈ span·(1 − μ)/L; where it is underdamped (ηL > (1 − √μ)²: k = 0 for μ > 0.11,
k = 1 for μ > 0.82) the momentum caps the rate at −ln √μ and T is longer than 1/η scaling would
give (T·η is stated per run). The floor is the
mean of ||∇f(X_t)||² over the replicas and the last half of the run, t ∈ (T/2, T]; the run is
stationary when the mean over the last quarter is within a factor 2 of the mean over the third.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import simsgd
from simsgd.stats import mean_bounds
from simsgd.verdict import RESOLUTION_FACTOR, grad_norm_sq_resolution

C0 = 1.0
SPAN = 30.0
STATIONARY = 2.0  # the last quarter's mean within this factor of the third quarter's
RESTART_PERIOD = 10


def step_size(momentum: float, decade: int, lipschitz: float, c0: float = C0) -> float:
    """η_k = c₀(1 − μ)/(2L)·10^{−k}."""
    return c0 * (1 - momentum) / (2 * lipschitz) * 10.0**-decade


def relaxation_rate(eta: float, momentum: float, curvature: float) -> float:
    """−ln ρ: heavy ball's rate on a quadratic of this curvature (ρ the spectral radius)."""
    roots = np.roots([1.0, -(1.0 + momentum - eta * curvature), momentum])
    return float(-np.log(np.abs(roots).max()))


def horizon(eta: float, momentum: float, lipschitz: float, span: float = SPAN) -> int:
    """T = span/(−ln ρ), rounded up to a multiple of 4 (so that it has quarters)."""
    return 4 * math.ceil(span / relaxation_rate(eta, momentum, lipschitz) / 4)


@dataclass(frozen=True)
class Floor:
    """One method's run at one step size.

    Attributes
    ----------
    method : str
    eta : float
    steps : int
    replica_means : (R,) array or None
        Per replica, the mean of ||∇f(X_t)||² over t ∈ (T/2, T]; None if the run diverged.
    q4_over_q3 : float
        Mean over replicas and the last quarter over the same for the third quarter (NaN when
        the third quarter's mean is 0).
    resolution : float
        2¹⁰·(L·u·max_r ||X_T||)²: a floor at or below it is rounding, not a floor.
    max_error : (R,) array or None
        max_t ||ē_t||, ē = (1/N) Σ_i e^{(i)} (the lock diagnostic; 0 without error feedback).
    """

    method: str
    eta: float
    steps: int
    replica_means: np.ndarray | None
    q4_over_q3: float
    resolution: float
    max_error: np.ndarray | None

    @property
    def floor(self) -> float:
        return math.inf if self.replica_means is None else float(self.replica_means.mean())

    @property
    def status(self) -> str:
        """One of "diverged", "rounding", "decaying", "growing", "stationary"."""
        if self.replica_means is None:
            return "diverged"
        if self.floor <= self.resolution:
            return "rounding"
        if self.q4_over_q3 < 1 / STATIONARY:
            return "decaying"
        return "growing" if self.q4_over_q3 > STATIONARY else "stationary"

    def summary(self) -> dict:
        """The floor with its 95% bootstrap interval, the checks and the lock diagnostic."""
        out = {"eta": self.eta, "steps": self.steps, "T_eta": self.eta * self.steps, "status": self.status}
        if self.replica_means is None:
            return out
        est = mean_bounds(self.replica_means, alpha=0.025, method="bootstrap")
        return {
            **out,
            "floor": est.mean,
            "floor_ci95": [est.lower, est.upper],
            "q4_over_q3": self.q4_over_q3,
            "resolution": self.resolution,
            "max_error_norm": {
                "median": float(np.median(self.max_error)),
                "max": float(np.max(self.max_error)),
            },
        }


def measure(problem, options: dict, method: str, eta: float, steps: int, replicas: int, seed: int, **extra):
    """Run ``method`` at step size ``eta`` for ``steps`` steps and return its :class:`Floor`.

    Parameters
    ----------
    problem
        A problem object with ``L`` (:mod:`simsgd.problems`).
    options : dict
        ``nodes``, ``rank``, ``momentum`` (MSGD).
    method : {"powersgd", "powersgd+", "full"}
    eta : float > 0
    steps : int, a multiple of 4
    replicas : int ≥ 2
    seed : int ≥ 0
    **extra
        Any other option of :func:`simsgd.simulate` (``x0``, ``degenerate_qr``, ``dtype`` …).

    Returns
    -------
    Floor
    """
    try:
        trace = simsgd.simulate(
            problem,
            method=method,
            optimizer="msgd",
            lr=eta,
            steps=steps,
            replicas=replicas,
            seed=seed,
            restart_period=RESTART_PERIOD,
            progress=False,
            record=("grad_norm_sq", "error_norm_sq"),
            **options,
            **extra,
        )
    except simsgd.Diverged:
        return Floor(method, eta, steps, None, math.nan, math.nan, None)
    g = trace.grad_norm_sq[:, 1:]  # t = 1..T
    half, quarter = steps // 2, steps // 4
    q3, q4 = g[:, half : half + quarter].mean(), g[:, half + quarter :].mean()
    x_norm = float(np.sqrt((trace.x**2).sum(axis=(1, 2))).max())
    resolution = RESOLUTION_FACTOR * grad_norm_sq_resolution(problem.L, x_norm, trace.x.dtype)
    return Floor(
        method,
        eta,
        steps,
        g[:, half:].mean(axis=1),
        float(q4 / q3) if q3 > 0 else math.nan,
        resolution,
        np.sqrt(trace.error_norm_sq.max(axis=1)),
    )
