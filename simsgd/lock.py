"""Theorem 1's lock, measured on float runs: which runs stay in Claim 1's invariant set.

A run is *locked* at t when X_t − X_0 ∈ span(B) and ||∇f(X_t)||² still equals its initial
value (both to :func:`lock_tolerance`). :func:`observe` also records ⟨A, X_t⟩ and the
compressor's P̃_t at every step, and :func:`share` says which space P̃_t holds (the noise's:
Claim 1's lock; the signal's: a step locked onto A). Used by ``python -m
simsgd.counterexample``, the studies in ``counterexamples/`` and the tests;
:func:`lock_summary` is the one place a lock table row is computed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .algorithm import Config
from .engine import simulate
from .ops import array_ops
from .recorder import takes_grad
from .stats import mean_ci, wilson_interval

__all__ = [
    "lock_tolerance",
    "at_initial_grad",
    "locked_mask",
    "Observation",
    "observe",
    "simulate_lock",
    "lock_spaces",
    "share",
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


class _Watch:
    """The problem, unchanged, except that each oracle call records X_t's lock coordinates:
    whether X_t − X_0 ∈ span(B), and ⟨A, X_t⟩ (ψ's argument without its shift).

    The engine calls ``stochastic_grads`` once per step with X_t, so this sees every
    iterate without a second copy of the engine loop.
    """

    def __init__(self, problem, x0, steps, replicas, dtype, inner):
        self._problem, self._x0, self._dtype = problem, x0, dtype
        self._forward_grad = takes_grad(problem)
        self.in_span = np.ones((replicas, steps + 1), dtype=bool)
        self.inner = [None] * (steps + 1) if inner else None

    def __getattr__(self, name):
        return getattr(self._problem, name)

    def see(self, x, t):
        self.in_span[:, t] = _in_span_b(self._problem, x, self._x0, self._dtype)
        if self.inner is not None:
            inner = self._problem._inner(x)
            self.inner[t] = np.asarray(array_ops(inner).asnumpy(inner), dtype=np.float64)

    def stochastic_grads(self, x, nodes, rng, grad=None):
        self.see(x, rng.step)
        if self._forward_grad:  # ∇f(X_t) the recorder computed anyway: the oracle need not again
            return self._problem.stochastic_grads(x, nodes, rng, grad=grad)
        return self._problem.stochastic_grads(x, nodes, rng)


class _Probe:
    """The compressor, unchanged, except that each step's P̃_t, degeneracy and restart are kept.

    Delegates every member of :class:`simsgd.compression.Compressor` to the compressor it wraps.
    """

    def __init__(self, compressor):
        self._compressor = compressor
        self.bases, self.degenerate, self.restart = [], [], []

    def __getattr__(self, name):
        return getattr(self._compressor, name)

    def compress(self, state, deltas, t, *, ops, **options):
        out, new_state = self._compressor.compress(state, deltas, t, ops=ops, **options)
        replicas = deltas.shape[0]
        basis = getattr(new_state, "basis", None)
        self.bases.append(None if basis is None else _host(basis, ops, np.float64))
        flags = out.degenerate
        self.degenerate.append(np.zeros(replicas, bool) if flags is None else _host(flags, ops, bool))
        self.restart.append(np.broadcast_to(_host(out.restart, ops, bool), (replicas,)))
        return out, new_state


def _host(value, ops, dtype):
    """``value`` (an array of ``ops``, or a Python scalar) as a NumPy array of ``dtype``, copied."""
    return np.array(value if isinstance(value, (bool, int, float)) else ops.asnumpy(value), dtype=dtype)


class Observation(NamedTuple):
    """A run and what :func:`observe` saw of it, step by step.

    Attributes
    ----------
    trace : Trace
    locked : (R, T+1) bool
        X_t − X_0 ∈ span(B) and ||∇f(X_t)||² = ||∇f(X_0)||² (to :func:`lock_tolerance`).
    in_span : (R, T+1) bool
        X_t − X_0 ∈ span(B) alone (the iterate has not moved along A).
    inner : (R, T+1) or (R, T+1, k) or None
        ⟨A, X_t⟩ (ψ's argument less the problem's shift; one per A_j for the general
        counterexample). None without ``details``.
    bases : (R, T, m, r) or None
        P̃_t, the basis step t used (None for a compressor without one, e.g. ``"full"``, and
        without ``details``).
    degenerate : (R, T) bool or None
        Steps whose P was degenerate relative to its inputs (the QR(0) convention applied).
    restart : (R, T) bool or None
        Steps at which the compressor restarted (PowerSGD+'s restart compressor).
    """

    trace: object
    locked: np.ndarray
    in_span: np.ndarray
    inner: np.ndarray | None
    bases: np.ndarray | None
    degenerate: np.ndarray | None
    restart: np.ndarray | None


def observe(
    problem, *, steps, replicas, dtype="float64", method="powersgd+", details=True, **options
) -> Observation:
    """:func:`simsgd.simulate` that also records, for every t, the lock coordinates of X_t and
    (with ``details``) ⟨A, X_t⟩ and the compressor's P̃_t, degeneracy and restarts.

    Parameters
    ----------
    problem : Psi2x2 or GeneralCounterexample
    steps, replicas, dtype, method, **options
        As :func:`simsgd.simulate` (``x0`` is not accepted: set it on the problem).
    details : bool
        Record ⟨A, X_t⟩ (``problem._inner``) and wrap the compressor to record P̃_t (R·T·m·r
        more floats); False runs the compressor itself and records only the lock.

    Returns
    -------
    Observation
    """
    x0 = np.asarray(problem.x0, dtype=np.float64)
    watch = _Watch(problem, x0, steps, replicas, dtype, inner=details)
    probe = _Probe(Config.from_options({**options, "method": method}).compressor) if details else None
    trace = simulate(watch, method=probe or method, steps=steps, replicas=replicas, dtype=dtype, **options)
    watch.see(trace.x, steps)
    locked = watch.in_span & at_initial_grad(trace.grad_norm_sq, dtype)
    if probe is None:
        return Observation(trace, locked, watch.in_span, None, None, None, None)
    return Observation(
        trace,
        locked,
        watch.in_span,
        np.stack(watch.inner, axis=1),
        None if probe.bases[0] is None else np.stack(probe.bases, axis=1),
        np.stack(probe.degenerate, axis=1),
        np.stack(probe.restart, axis=1),
    )


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
    seen = observe(problem, steps=steps, replicas=replicas, dtype=dtype, details=False, **options)
    return seen.trace, seen.locked


def lock_spaces(problem):
    """Orthonormal bases (m, k) of the column spaces of the noise B and of the signal A.

    P̃ spans the first in Theorem 1's lock (P̃ = C, the "B-lock") and the second where an SSP
    step is locked onto the signal (the "A-lock", what a restart that picks A leads to).

    Parameters
    ----------
    problem : Psi2x2 (k = 1) or GeneralCounterexample (k = ``signal_rank``)

    Returns
    -------
    noise, signal : (m, k) arrays
    """
    k = getattr(problem, "signal_rank", 1)
    signal = np.asarray(problem.A).reshape(-1, *problem.shape).sum(axis=0)  # the A_j are orthogonal
    return np.linalg.svd(problem.B)[0][:, :k], np.linalg.svd(signal)[0][:, :k]


def share(bases, space):
    """How much of ``space`` the basis holds: ||P̃ᵀU||_F² / k in [0, 1] (1: span(P̃) ⊇ span(U)).

    Parameters
    ----------
    bases : (..., m, r)
        Orthonormal columns (P̃_t).
    space : (m, k)
        Orthonormal columns (from :func:`lock_spaces`).

    Returns
    -------
    (...) array
    """
    overlap = np.einsum("...mr,mk->...rk", bases, space)
    return (overlap**2).sum(axis=(-2, -1)) / space.shape[1]


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
