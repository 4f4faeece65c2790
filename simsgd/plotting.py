"""Plot helpers shared by the CLI, the figures and the notebook (matplotlib imported lazily)."""

from __future__ import annotations

import numpy as np

from .stats import mean_band

__all__ = ["plot_mean_band"]


def plot_mean_band(ax, values, label, color, floor=1e-300, linestyle="-"):
    """Plot the replica mean of ``values`` (R, T+1) against t with its 95% bootstrap band.

    Values ≤ 0 are clipped at ``floor`` so that a log axis can show them.
    """
    mean, lower, upper = mean_band(values)
    t = np.arange(mean.size)
    ax.fill_between(t, np.maximum(lower, floor), np.maximum(upper, floor), color=color, alpha=0.25, lw=0)
    ax.plot(t, np.maximum(mean, floor), color=color, label=label, lw=1.6, linestyle=linestyle)
