"""Theorem 1's lock, measured on float runs: which runs stay in Claim 1's invariant set.

A run is *locked* at t when X_t − X_0 ∈ span(B) and ||∇f(X_t)||² still equals its initial
value (both to :func:`lock_tolerance`). Used by ``python -m simsgd.counterexample``, the
studies in ``counterexamples/`` and the tests; :func:`lock_summary` is the one place a
lock table row is computed.
"""

from __future__ import annotations

import numpy as np

from .engine import simulate
from .ops import array_ops
from .stats import mean_ci, wilson_interval

__all__ = [
    "lock_tolerance",
    "at_initial_grad",
    "locked_mask",
    "simulate_lock",
    "escape_steps",
    "lock_summary",
]


def lock_tolerance(dtype) -> float:
    """Relative tolerance of the float lock test: 2¹⁰ machine epsilons of ``dtype``."""
    return 1024.0 * float(np.finfo(np.dtype(dtype)).eps)


def at_initial_grad(grad_norm_sq, dtype="float64"):
    """Where ||∇f(X_t)||² still equals its initial value (to :func:`lock_tolerance`).

    Parameters
    ----------
    grad_norm_sq : (R, T+1)

    Returns
    -------
    (R, T+1) bool
    """
    g0 = grad_norm_sq[:, :1]
    return np.abs(grad_norm_sq - g0) <= lock_tolerance(dtype) * np.maximum(g0, 1e-300)


def _in_span_b(problem, x, x0, dtype):
    """(R,) bool: X − X_0 ∈ span(B) to :func:`lock_tolerance` (relative to 1 + ||X_0|| + ||X||)."""
    x = np.asarray(array_ops(x).asnumpy(x), dtype=np.float64)  # X may be a torch tensor (CUDA too)
    # Divide by a per-replica power of two ≥ max|X|, |X_0| first: the norms of iterates beyond
    # 1e154 would overflow and make every such run look locked.
    unit = np.exp2(
        np.ceil(np.log2(np.maximum(1.0, np.maximum(np.abs(x).max(axis=(1, 2)), np.abs(x0).max()))))
    )
    moved = (x - x0) / unit[:, None, None]
    b = problem.B / np.linalg.norm(problem.B)
    off_b = moved - np.einsum("rij,ij->r", moved, b)[:, None, None] * b
    scale = (1.0 + np.linalg.norm(x0)) / unit + np.linalg.norm(x / unit[:, None, None], axis=(1, 2))
    return np.linalg.norm(off_b, axis=(1, 2)) <= lock_tolerance(dtype) * scale


def locked_mask(problem, trace, x0=None, dtype="float64"):
    """Runs locked at T: X_T − X_0 ∈ span(B) and ||∇f(X_T)||² = ||∇f(X_0)||².

    Both to a relative tolerance of :func:`lock_tolerance`.

    Returns
    -------
    (R,) bool
    """
    x0 = np.asarray(problem.x0 if x0 is None else x0, dtype=np.float64)
    return _in_span_b(problem, trace.x, x0, dtype) & at_initial_grad(trace.grad_norm_sq, dtype)[:, -1]


class _SpanWatch:
    """The problem, unchanged, except that each oracle call records whether X_t − X_0 ∈ span(B).

    The engine calls ``stochastic_grads`` once per step with X_t, so this sees every
    iterate without a second copy of the engine loop.
    """

    def __init__(self, problem, x0, steps, replicas, dtype):
        self._problem, self._x0, self._dtype = problem, x0, dtype
        self.in_span = np.ones((replicas, steps + 1), dtype=bool)

    def __getattr__(self, name):
        return getattr(self._problem, name)

    def stochastic_grads(self, x, nodes, rng):
        self.in_span[:, rng.step] = _in_span_b(self._problem, x, self._x0, self._dtype)
        return self._problem.stochastic_grads(x, nodes, rng)


def simulate_lock(problem, *, steps, replicas, dtype="float64", **options):
    """:func:`simsgd.simulate` that also says, for every t, which runs are locked.

    Parameters
    ----------
    problem : Psi2x2
    steps, replicas, dtype, **options
        As :func:`simsgd.simulate` (``x0`` is not accepted: set it on the problem).

    Returns
    -------
    trace : Trace
    locked : (R, T+1) bool
        X_t − X_0 ∈ span(B) and ||∇f(X_t)||² = ||∇f(X_0)||² (to :func:`lock_tolerance`).
    """
    x0 = np.asarray(problem.x0, dtype=np.float64)
    watch = _SpanWatch(problem, x0, steps, replicas, dtype)
    trace = simulate(watch, steps=steps, replicas=replicas, dtype=dtype, **options)
    watch.in_span[:, -1] = _in_span_b(problem, trace.x, x0, dtype)
    return trace, watch.in_span & at_initial_grad(trace.grad_norm_sq, dtype)


def escape_steps(locked):
    """First t at which a run is no longer locked; −1 where it stayed locked throughout.

    Parameters
    ----------
    locked : (R, T+1) bool, from :func:`simulate_lock` (or :func:`at_initial_grad`)

    Returns
    -------
    (R,) int
    """
    return np.where(locked.all(axis=1), -1, np.argmin(locked, axis=1))


def lock_summary(trace, locked) -> dict:
    """One row of a lock table: E||∇f(X_T)||² with its 95% interval, the locked fraction.

    Parameters
    ----------
    trace : Trace
    locked : (R, T+1) bool, from :func:`simulate_lock`

    Returns
    -------
    dict
        ``mean_grad_norm_sq_T``, ``ci95`` (normal interval clipped at 0: ||∇f||² ≥ 0),
        ``locked_runs``, ``locked_fraction``, ``locked_ci95`` (Wilson), ``median_escape_step``:
        the median, over the runs that left the lock, of the first t at which a run was no
        longer locked (:func:`escape_steps`), None when no run left.
    """
    final = trace.grad_norm_sq[:, -1]
    mean, half = mean_ci(final)
    replicas = final.shape[0]
    k = int(locked[:, -1].sum())
    escape = escape_steps(locked)
    return {
        "mean_grad_norm_sq_T": float(mean),
        "ci95": [max(0.0, float(mean - half)), float(mean + half)],
        "locked_runs": k,
        "locked_fraction": k / replicas,
        "locked_ci95": list(wilson_interval(k, replicas)),
        "median_escape_step": float(np.median(escape[escape >= 0])) if (escape >= 0).any() else None,
    }
