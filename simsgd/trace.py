"""What a run of Algorithm 2 records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trace"]


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
    floats_sent : (T,)
        Floats one node sends at step t.
    restart_steps : (T,) bool
        Steps that ran SVD-COMP.
    degenerate_qr : (R,) int
        Per replica, the number of SSP steps whose P was rank-deficient.
    degenerate_per_step : (T,) int
        Per step, the number of replicas whose P was rank-deficient.
    x : (R, m, n)
        X_T.
    q : (R, n, r) or None
        Q_{T-1}, the basis the next step would use (None for ``"full"``).
    config : dict
        The options of the run.
    """

    grad_norm_sq: np.ndarray | None
    loss: np.ndarray | None
    error_norm_sq: np.ndarray | None
    momentum_norm_sq: np.ndarray | None
    floats_sent: np.ndarray
    restart_steps: np.ndarray
    degenerate_qr: np.ndarray
    degenerate_per_step: np.ndarray
    x: np.ndarray
    q: np.ndarray | None
    config: dict = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        return self.x.shape[0]

    @property
    def steps(self) -> int:
        return self.floats_sent.shape[0]
