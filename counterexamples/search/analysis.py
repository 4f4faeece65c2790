"""Reading ladders: the floor ratio PowerSGD/PowerSGD+, whether a floor shrinks with η, the
log-log slope, and the distribution of the ratio over instances.

No quantity divides by a gradient at X_0, and no ratio divides by a floor at rounding level (a
ratio over such a floor is reported as a censored lower bound over the rounding level).

**Shrink test.** A method *fails to converge* on an instance when its floor does not shrink with
η: from the largest to the smallest η of the ladder (a factor η₀/η_K = 100 for k = 0..2) the
floor must fall by at least (η₀/η_K)^:data:`SHRINK_SLOPE` (10 over two decades), judged with the
95% paired-bootstrap interval of floor(η₀)/floor(η_K):

* ``"shrinks"``: the interval lies above the factor, or the floor at η_K is at rounding level;
* ``"decreasing"``: not shown above, but the run at η_K is still falling (its last quarter below
  half its third): no floor was reached there, so none can be said not to shrink;
* ``"does not shrink"``: the interval lies below the factor and the run at η_K is stationary
  (or growing) — non-convergence;
* ``"undecided"``: otherwise (the interval straddles the factor, or the run at η_K diverged).
"""

from __future__ import annotations

import numpy as np

from simsgd.stats import fit_exponent, local_slopes, mean_bounds, ratio_bounds

SHRINK_SLOPE = 0.5
VERDICTS = ("shrinks", "decreasing", "does not shrink", "undecided")
_ALPHA = 0.025  # each side: two-sided 95% intervals


def ratio(numerator, denominator) -> dict:
    """floor(numerator)/floor(denominator) with its 95% paired-bootstrap interval.

    Parameters
    ----------
    numerator, denominator : Floor
        Runs on the same seeds (replica k of each shares ξ and Q_{−1}).

    Returns
    -------
    dict
        ``ratio`` and ``ci95``. Where only the denominator's floor is at rounding level the
        ratio is censored: ``ratio`` is the numerator's floor over the denominator's rounding
        level (a lower bound), ``ci95`` [its lower end, None] and ``censored`` True. ``ratio``
        None with ``why`` when a run diverged or both floors are at rounding level.
    """
    if numerator.replica_means is None or denominator.replica_means is None:
        return {"ratio": None, "why": "a run diverged"}
    if denominator.status == "rounding":
        if numerator.status == "rounding":
            return {"ratio": None, "why": "both floors are at rounding level"}
        low = mean_bounds(numerator.replica_means, alpha=_ALPHA, method="bootstrap").lower
        scale = denominator.resolution
        return {"ratio": numerator.floor / scale, "ci95": [low / scale, None], "censored": True}
    est = ratio_bounds(numerator.replica_means, denominator.replica_means, alpha=_ALPHA)
    return {"ratio": est.mean, "ci95": [est.lower, est.upper], "censored": False}


def shrink(floors, slope: float = SHRINK_SLOPE) -> dict:
    """The shrink test (module docstring) from ``floors[0]`` (largest η) to ``floors[-1]``.

    Returns
    -------
    dict
        ``verdict`` (one of :data:`VERDICTS`), ``needed`` (the factor), and ``factor``,
        ``ci95`` when both floors are finite.
    """
    first, last = floors[0], floors[-1]
    out = {"needed": (first.eta / last.eta) ** slope, "statuses": [first.status, last.status]}
    if last.status == "diverged":
        return {**out, "verdict": "undecided"}
    if last.status == "rounding" or first.status == "diverged":
        return {**out, "verdict": "shrinks"}
    est = ratio_bounds(first.replica_means, last.replica_means, alpha=_ALPHA)
    out.update(factor=est.mean, ci95=[est.lower, est.upper])
    if est.lower > out["needed"]:
        return {**out, "verdict": "shrinks"}
    if last.status == "decaying":
        return {**out, "verdict": "decreasing"}
    return {**out, "verdict": "does not shrink" if est.upper < out["needed"] else "undecided"}


def slope(floors) -> dict:
    """The log-log slope of floor against η (least squares, 95% bootstrap interval) and the
    slopes between neighbours; ``slope`` None when a floor is at rounding level or diverged.
    """
    etas = [f.eta for f in floors]
    if any(f.status in ("rounding", "diverged") for f in floors):
        return {"slope": None, "statuses": [f.status for f in floors]}
    fit = fit_exponent(etas, [f.replica_means for f in floors], level=0.95)
    return {
        "slope": fit.slope,
        "ci95": [fit.lower, fit.upper],
        "local": local_slopes(etas, [f.floor for f in floors]),
        "all_stationary": all(f.status == "stationary" for f in floors),
    }


def instance_summary(ladder: dict) -> dict:
    """Floors, ratios, shrink tests and slopes of one instance's ladder (method -> [Floor])."""
    out = {
        "floors": {method: [f.summary() for f in floors] for method, floors in ladder.items()},
        "shrink": {method: shrink(floors) for method, floors in ladder.items()},
        "slope": {method: slope(floors) for method, floors in ladder.items()},
    }
    if "powersgd" in ladder and "powersgd+" in ladder:
        out["ratio"] = [ratio(a, b) for a, b in zip(ladder["powersgd"], ladder["powersgd+"])]
    return out


def distribution(ratios, resamples: int = 2000, seed: int = 0) -> dict:
    """The ratio over instances: median with a 95% bootstrap interval (instances resampled),
    10/90% quantiles, and how many instances' own intervals lie above or below 1.

    Parameters
    ----------
    ratios : sequence of dict
        :func:`ratio` results, one per instance; those without a ratio are counted, not used;
        a censored ratio enters at its lower bound (so the median is, if anything, too low).
    """
    used = [r for r in ratios if r["ratio"] is not None]
    out = {"n": len(used), "excluded": len(ratios) - len(used)}
    if not used:
        return out
    values = np.array([r["ratio"] for r in used])
    idx = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    medians = np.median(values[idx], axis=1)
    return {
        **out,
        "median": float(np.median(values)),
        "median_ci95": [float(q) for q in np.quantile(medians, [_ALPHA, 1 - _ALPHA])],
        "p10_p90": [float(q) for q in np.quantile(values, [0.1, 0.9])],
        "min_max": [float(values.min()), float(values.max())],
        "above_1": sum(r["ci95"][0] > 1 for r in used),
        "below_1": sum(r["ci95"][1] is not None and r["ci95"][1] < 1 for r in used),
        "censored": sum(r["censored"] for r in used),
    }
