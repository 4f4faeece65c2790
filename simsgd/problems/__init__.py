"""Problems: gradient oracles for the engines.

A problem is any object with the members of :class:`~simsgd.problems.base.Problem`:

``shape``                      (m, n)
``x0``                         (m, n) array, the default X_0
``loss(X)``                    (...,)       for X of shape (..., m, n)
``grad(X)``                    (..., m, n)
``stochastic_grads(X, nodes, rng)``  (R, N_local, m, n), called once per step with
                               X of shape (R, m, n) and ``rng`` a
                               :class:`simsgd.streams.StepDraws` whose draws have shape
                               (R, N_local, ...); ``rng.node_ids`` names the nodes
                               held (all N in simulation, one in the torch backend)
                               and ``rng.step`` is t.

Oracles compute with ``xp = simsgd.ops.array_ops(X)`` so one source serves NumPy and torch.
Optionally, an oracle passes the operands it broadcasts to (R, N, m, n) through
``xp.node_layout`` (as :class:`Psi2x2` does): the result then comes in the layout the NumPy
engine holds per-node arrays in, and the broadcasting runs faster; values are unchanged.
An oracle that takes a keyword ``grad`` (∇f(X), shape (R, m, n)) gets the one the engine has
computed to record ‖∇f(X_t)‖², instead of computing it again.

Built-in problems also carry the constants the theory needs
(:class:`~simsgd.problems.base.ProblemWithConstants`: ``L``, ``variance``, ``f_star``,
``omega_sq``).
"""

from .base import Problem, ProblemWithConstants
from .general import GeneralCounterexample
from .psi import Psi2x2, psi, psi_prime
from .quadratic import HeterogeneousQuadratic

__all__ = [
    "Problem",
    "ProblemWithConstants",
    "Psi2x2",
    "HeterogeneousQuadratic",
    "psi",
    "psi_prime",
    "GeneralCounterexample",
]
