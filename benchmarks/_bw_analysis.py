"""Summaries of the bandwidth benchmark's repeats: medians with spread, and crossovers.

Pure NumPy on the measured seconds; no processes. A cell is one (nodes, bandwidth,
method, quantity) with R ≥ 1 repeats (seconds per step).

* :func:`spread`: median and interquartile range of a cell.
* :func:`crossover`: the bandwidth below which a method's median step beats the
  all-reduce's, interpolated linearly in 1/B between the two measured bandwidths where
  the sign of the difference of medians changes, with a percentile-bootstrap interval
  (the repeats of every cell resampled), or why it is not resolved.
"""

import math

import numpy as np

__all__ = ["spread", "crossover", "Crossover", "NONMONOTONE_LIMIT"]

NONMONOTONE_LIMIT = 0.05  # resamples allowed to show no single crossing before "not resolved"


def spread(values):
    """{"median", "q1", "q3", "n"} of a cell's repeats (NumPy's linear quantiles)."""
    v = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": int(v.size)}


def _crossing(mbits, diffs):
    """Crossovers from rows of medians' differences (method − all-reduce) at increasing bandwidths.

    Parameters
    ----------
    mbits : array, shape (K,)
    diffs : array, shape (D, K)

    Returns
    -------
    array, shape (D,)
        Per row: the crossover in Mbit/s (linear in 1/B between the last bandwidth where the
        method is faster and the first where it is slower), 0.0 (slower or equal everywhere),
        inf (faster or equal everywhere), or nan (faster again above a bandwidth where it was
        slower, or equal everywhere).
    """
    k = np.arange(diffs.shape[1])
    neg, pos = diffs < 0, diffs > 0
    last_neg = np.where(neg, k, -1).max(axis=1)
    first_pos = np.where(pos, k, diffs.shape[1]).min(axis=1)
    has_neg, has_pos = neg.any(axis=1), pos.any(axis=1)
    out = np.full(diffs.shape[0], np.nan)
    out[has_neg & ~has_pos] = np.inf
    out[has_pos & ~has_neg] = 0.0
    cross = has_neg & has_pos & (last_neg < first_pos)
    j, m = last_neg[cross], first_pos[cross]
    rows = np.flatnonzero(cross)
    x0, x1 = 1.0 / mbits[j], 1.0 / mbits[m]
    d0, d1 = diffs[rows, j], diffs[rows, m]
    out[rows] = 1.0 / (x0 + d0 * (x1 - x0) / (d0 - d1))
    return out


class Crossover(dict):
    """{"status", "mbit", "low", "high", "nonmonotone", "text"}; see :func:`crossover`."""


def crossover(method, reference, mbits, resamples=2000, seed=0, level=0.95):
    """Bandwidth below which ``method``'s median step time is below ``reference``'s.

    Parameters
    ----------
    method, reference : list of arrays
        Seconds per step of each repeat, one array per bandwidth of ``mbits``.
    mbits : sequence of float
        The shaped bandwidths, increasing (Mbit/s).
    resamples : int
        Bootstrap resamples (each cell's repeats drawn with replacement).
    seed : int
    level : float
        Two-sided level of the interval.

    Returns
    -------
    Crossover
        status "resolved" (mbit, and an interval [low, high] where 0 means "below the lowest
        bandwidth" and inf "above the highest"), "faster at every bandwidth", "slower at every
        bandwidth", or "not resolved" (the medians cross more than once or the wrong way, or
        more than NONMONOTONE_LIMIT of the resamples do); "nonmonotone" is that fraction.
    """
    mbits = np.asarray(mbits, dtype=np.float64)
    med = lambda cells: np.array([[np.median(c) for c in cells]])
    point = float(_crossing(mbits, med(method) - med(reference))[0])
    rng = np.random.default_rng(seed)

    def resampled(cells):  # (resamples, K): the median of each cell's resampled repeats
        cols = []
        for c in cells:
            c = np.asarray(c, dtype=np.float64)
            cols.append(np.median(c[rng.integers(0, c.size, (resamples, c.size))], axis=1))
        return np.stack(cols, axis=1)

    draws = _crossing(mbits, resampled(method) - resampled(reference))
    good = draws[~np.isnan(draws)]
    bad = 1.0 - good.size / resamples
    q = (1 - level) / 2
    low, high = math.nan, math.nan
    if good.size:  # inf ("faster everywhere") ranks above every bandwidth: a huge stand-in
        low, high = (
            math.inf if v >= 1e300 else float(v) for v in np.quantile(np.minimum(good, 1e300), [q, 1 - q])
        )
    point = None if math.isnan(point) else point
    out = Crossover(mbit=point, low=float(low), high=float(high), nonmonotone=bad)
    interval = f"95% interval [{_bound(low, mbits)}, {_bound(high, mbits)}] Mbit/s"
    if point is None or bad > NONMONOTONE_LIMIT:
        why = (
            "the medians cross more than once or the wrong way"
            if point is None
            else f"{bad:.0%} of the bootstrap resamples cross more than once or the wrong way"
        )
        out.update(status="not resolved", text=f"not resolved ({why})")
    elif math.isinf(point):
        out.update(
            status="faster at every bandwidth",
            text=f"faster at every bandwidth ≤ {mbits[-1]:g} Mbit/s (crossover {interval})",
        )
    elif point == 0.0:
        out.update(
            status="slower at every bandwidth",
            text=f"slower at every bandwidth ≥ {mbits[0]:g} Mbit/s (crossover {interval})",
        )
    else:
        out.update(status="resolved", text=f"{point:.0f} Mbit/s, {interval}")
    return out


def _bound(value, mbits):
    if value == 0.0:
        return f"< {mbits[0]:g}"
    if math.isinf(value):
        return f"> {mbits[-1]:g}"
    return f"{value:.0f}"
