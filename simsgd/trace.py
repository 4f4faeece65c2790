"""What a run of Algorithm 2 records."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trace", "Diverged"]


@dataclass
class Trace:
    """Per-step record of a vectorised run (R replicas, T steps).

    Attributes
    ----------
    grad_norm_sq : (R, T+1)
        ||∇f(X_t)||², t = 0..T. This and the next three fields are None when not
        recorded (``simulate(..., record=...)``).
    loss : (R, T+1)
        f(X_t).
    error_norm_sq : (R, T+1)
        ||(1/N) Σ_i e_t^{(i)}||² (e_0 = 0).
    momentum_norm_sq : (R, T+1)
        Column 0 is ||m_{-1}||² = 0, column t+1 is ||m_t||² (Δ̂_t for SGD, Adam's
        first moment for Adam).
    floats_sent : (T,) float
        Floats one node sends at step t (the mean over replicas where a state-dependent
        restart rule decides per replica).
    restart_steps : (T,) bool
        Steps at which the compressor restarted (PowerSGD+'s SVD-COMP; any replica, for a
        state-dependent rule).
    degenerate_count : (R,) int
        Per replica, the number of SSP steps whose P was rank-deficient relative to what it
        was made of (the test that applies the ``degenerate_qr`` convention; see
        :mod:`simsgd.orthogonalize`). Formerly ``degenerate_qr``, which still works with a
        DeprecationWarning.
    degenerate_per_step : (T,) int
        Per step, the number of replicas whose P was rank-deficient.
    x : (R, m, n)
        X_T.
    q : (R, n, r) or None
        Q_{T-1}, the basis the next step would use (None for ``"full"``).
    config : dict
        The options of the run.
    degenerate_own_scale : (R,) int
        Per replica, the SSP steps whose P was rank-deficient relative to its own size (the
        second reading; blind to a P that is all rounding noise).
    restart_residual : (R, number of restart steps) float
        ||Δ̂_t − Δ̄_t||² / ||Δ̄_t||² at each PowerSGD+ restart (Lemma 2's 1 − δ' measured;
        0 where Δ̄_t = 0; NaN where a backend did not record it).
    """

    grad_norm_sq: np.ndarray | None
    loss: np.ndarray | None
    error_norm_sq: np.ndarray | None
    momentum_norm_sq: np.ndarray | None
    floats_sent: np.ndarray
    restart_steps: np.ndarray
    degenerate_count: np.ndarray
    degenerate_per_step: np.ndarray
    x: np.ndarray
    q: np.ndarray | None
    config: dict = field(default_factory=dict)
    degenerate_own_scale: np.ndarray | None = None
    restart_residual: np.ndarray | None = None

    @property
    def degenerate_qr(self) -> np.ndarray:
        """Deprecated name of :attr:`degenerate_count` (``degenerate_qr`` is also the option)."""
        warnings.warn(
            "Trace.degenerate_qr is deprecated; use Trace.degenerate_count",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.degenerate_count

    @property
    def replicas(self) -> int:
        return self.x.shape[0]

    @property
    def steps(self) -> int:
        return self.floats_sent.shape[0]


class Diverged(FloatingPointError):
    """A non-finite gradient or iterate: a result of the run (e.g. η too large), not a bad input.

    Attributes
    ----------
    step : int
        The step t at which the values stopped being finite.
    replica_ids : ndarray of int
        The replicas (global indices) holding a NaN or inf at that step.
    replicas : int
        How many replicas the run had.
    """

    def __init__(self, message, step, replica_ids, replicas):
        super().__init__(message)
        self.step, self.replica_ids, self.replicas = step, replica_ids, replicas
