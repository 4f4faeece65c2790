"""What the engines and the theory ask of a problem, as ``typing.Protocol`` s.

Nothing needs to inherit from these: any object with the members below is a problem
(``isinstance(obj, Problem)`` checks that they exist, not their shapes).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..streams import StepDraws

__all__ = ["Problem", "ProblemWithConstants"]


@runtime_checkable
class Problem(Protocol):
    """A gradient oracle: f(X) = (1/N) Σ_i f_i(X) on m×n matrices X.

    Attributes
    ----------
    shape : (m, n)
    x0 : (m, n) array
        The default X_0.
    """

    shape: tuple[int, int]
    x0: np.ndarray

    def loss(self, x: np.ndarray) -> np.ndarray:
        """f(X): ``(..., m, n) -> (...)``."""
        ...

    def grad(self, x: np.ndarray) -> np.ndarray:
        """∇f(X): ``(..., m, n) -> (..., m, n)``."""
        ...

    def stochastic_grads(self, x: np.ndarray, nodes: int, rng: StepDraws) -> np.ndarray:
        """g_t^{(i)} = ∇F_i(X_t; ξ_t^{(i)}) of the nodes held: ``(R, m, n) -> (R, N_local, m, n)``.

        Called once per step t with X_t of R replicas. ``nodes`` is N; ``rng`` is
        :class:`simsgd.streams.StepDraws`, whose draws have shape (R, N_local, ...);
        ``rng.node_ids`` names the nodes held (all N in simulation, one per process in
        the torch backend) and ``rng.step`` is t. Draw only from ``rng``: that keeps a
        replica's numbers independent of R and of how the nodes are split over processes.
        """
        ...


@runtime_checkable
class ProblemWithConstants(Problem, Protocol):
    """A problem that also carries the constants of Assumptions 1–3 (what
    :func:`simsgd.theory.constants` reads).

    Attributes
    ----------
    L : float
        Smoothness of every f_i (Assumption 1).
    variance : float
        σ² of Assumption 2: E||∇F_i(X; ξ) − ∇f_i(X)||² ≤ σ².
    f_star : float
        inf f.
    omega_sq : float or None
        ω² = sup ||∇f_i||² of Assumption 3, or None where it is unbounded (the caller
        then gives a bound over the visited region).
    """

    L: float
    variance: float
    f_star: float
    omega_sq: float | None
