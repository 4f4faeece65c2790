"""Mean curves with a 95% bootstrap band over replicas (used by Figure 1 and the notebook)."""

from __future__ import annotations

import numpy as np

__all__ = ["mean_band", "plot_mean_band"]



def mean_band(values, resamples=400, seed=0):
    """Mean over replicas and a 95% bootstrap percentile band for it.

    The band resamples the R replicas with replacement (seeded, so it is
    reproducible); unlike mean ± 1.96·s/√R it stays positive for heavy-tailed,
    positive data such as losses on a log axis.

    Parameters
    ----------
    values : array, shape (R, T+1)
    resamples : int
        Bootstrap resamples B.
    seed : int

    Returns
    -------
    mean, lower, upper : arrays, shape (T+1,)
        The mean and the 2.5% and 97.5% percentiles of the B resampled means.
    """
    values = np.asarray(values, dtype=np.float64)
    R = values.shape[0]
    counts = np.random.default_rng(seed).multinomial(R, np.full(R, 1.0 / R), size=resamples)  # (B, R)
    means = counts @ values / R                                                                # (B, T+1)
    lower, upper = np.percentile(means, [2.5, 97.5], axis=0)
    return values.mean(axis=0), lower, upper


def plot_mean_band(ax, values, label, color, floor=1e-300, linestyle="-"):
    """Plot the replica mean of ``values`` (R, T+1) against t with its 95% bootstrap band.

    Values ≤ 0 are clipped at ``floor`` so that a log axis can show them.
    """
    mean, lower, upper = mean_band(values)
    t = np.arange(mean.size)
    ax.fill_between(t, np.maximum(lower, floor), np.maximum(upper, floor), color=color, alpha=0.25, lw=0)
    ax.plot(t, np.maximum(mean, floor), color=color, label=label, lw=1.6, linestyle=linestyle)
