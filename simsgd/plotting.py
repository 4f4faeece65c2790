"""Plot helpers for the figures, the notebook and the studies (matplotlib is imported lazily).

:func:`plot_mean_band` draws a replica mean with its 95% band; :func:`save_figure` is the one
way a figure is written: whole or not at all, without the matplotlib version in the PNG's
metadata (so that a rerun gives the same bytes), and closed afterwards.
"""

from __future__ import annotations

import os

import numpy as np

from .output import atomic_savefig
from .stats import mean_band

__all__ = ["plot_mean_band", "save_figure"]


def plot_mean_band(ax, values, label, color, floor=1e-300, linestyle="-"):
    """Plot the replica mean of ``values`` (R, T+1) against t with its 95% bootstrap band.

    Values ≤ 0 are clipped at ``floor`` so that a log axis can show them.
    """
    mean, lower, upper = mean_band(values)
    t = np.arange(mean.size)
    ax.fill_between(t, np.maximum(lower, floor), np.maximum(upper, floor), color=color, alpha=0.25, lw=0)
    ax.plot(t, np.maximum(mean, floor), color=color, label=label, lw=1.6, linestyle=linestyle)


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> str:
    """Write ``fig`` to ``path`` atomically with no "Software" metadata, then close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_savefig(fig, path, dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
