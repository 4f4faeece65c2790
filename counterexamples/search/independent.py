"""Comparison with an independent re-derivation (another analyst's code, not this project's path).

Its results file (``claims/independent/results/floors_eta.json``) is read as data only. Two
settings overlap:

* ψ in a random basis, N = 3, σ = 5, r = 1, μ = 0.9, τ = 10, η = c(1 − μ)/(2L) with c = 0.2·10^{−k},
  T·η = 1.04, 1, 1 (its ``psi_random_basis_N3_supplementary``): :func:`psi_overlap` reruns it here
  (R = 128 in one random basis — PowerSGD with a Gaussian Q_{−1} is rotation-equivariant, so the
  basis does not change the law of ||∇f||²; X_0 = ψ's default + 0.25·Z/2 per replica, as there)
  and compares floors and ratios by their 95% intervals;
* its random instances of the same family (its own draw: c₀ ∈ [0.05, 0.5], μ ≤ 0.95, T·η·L/(1 − μ)
  = 80): :func:`family_overlap` bins its per-instance ratios by c = η·2L/(1 − μ) around this
  study's c = 10^{−k} (half a decade either side) and compares the medians' 95% intervals.
"""

from __future__ import annotations

import json

import numpy as np

from simsgd.problems import Psi2x2

from .analysis import distribution, ratio
from .floors import measure

PSI_KEY = "psi_random_basis_N3_supplementary"
PSI_RUN = dict(nodes=3, rank=1, momentum=0.9)


def load(path):
    """The independent results, or None when the file is not there."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _overlap(a, b) -> bool:
    return a[0] <= (b[1] if b[1] is not None else np.inf) and b[0] <= (a[1] if a[1] is not None else np.inf)


def psi_overlap(theirs: dict, decades, replicas: int = 128) -> list:
    """Rerun the overlapping ψ setting at ``decades`` (indices into its ladder) and compare.

    Returns
    -------
    list of dict
        Per decade: η, T, both sides' floors (PowerSGD, PowerSGD+) and ratio with intervals, and
        ``agrees`` (every pair of intervals overlaps).
    """
    problem = Psi2x2(5.0, basis="random", basis_seed=0)
    z = np.random.default_rng([0, 4]).standard_normal((replicas, 2, 2))
    x0 = problem.x0 + 0.25 * z / 2
    rows = []
    for k in decades:
        row = theirs[PSI_KEY]["per_eta"][k]
        floors = {
            m: measure(problem, PSI_RUN, m, row["eta"], row["T"], replicas, 0, x0=x0)
            for m in ("powersgd", "powersgd+")
        }
        ours = {m: f.summary() for m, f in floors.items()}
        mine = ratio(floors["powersgd"], floors["powersgd+"])
        theirs_ratio = row["ratio_powersgd_over_powersgdplus"]
        pairs = [(ours[m]["floor_ci95"], row[m]["floor_ci95"]) for m in floors] + [
            (mine["ci95"], theirs_ratio["ci95"])
        ]
        rows.append(
            {
                "k": k,
                "eta": row["eta"],
                "T": row["T"],
                "ours": {**{m: [ours[m]["floor"], ours[m]["floor_ci95"]] for m in floors}, "ratio": mine},
                "theirs": {
                    **{m: [row[m]["floor"], row[m]["floor_ci95"]] for m in floors},
                    "ratio": theirs_ratio,
                },
                "agrees": all(_overlap(a, b) for a, b in pairs),
            }
        )
    return rows


def _their_ratios(theirs: dict, c: float) -> list:
    out = []
    for inst in theirs["family_G_instances"]:
        for row in inst["per_eta"]:
            ci = inst["scope"]["c0"] * 10.0 ** -row["k"]
            if c / np.sqrt(10) <= ci < c * np.sqrt(10):
                r = row["ratio_powersgd_over_powersgdplus"]
                out.append({"ratio": r["est"], "ci95": r["ci95"], "censored": False})
    return out


def family_overlap(theirs: dict, ours_by_decade: dict, c0: float) -> list:
    """Per decade k of this study: its ratio distribution beside the independent one at c ≈ c₀·10^{−k}.

    Parameters
    ----------
    theirs : dict
        The independent results.
    ours_by_decade : dict
        k -> :func:`~counterexamples.search.analysis.distribution` of this study's ratios.
    c0 : float
    """
    rows = []
    for k, ours in ours_by_decade.items():
        c = c0 * 10.0**-k
        dist = distribution(_their_ratios(theirs, c))
        agrees = bool(dist["n"] and ours["n"] and _overlap(ours["median_ci95"], dist["median_ci95"]))
        rows.append({"k": k, "c": c, "ours": ours, "theirs": dist, "agrees": agrees})
    return rows


def extreme(theirs: dict, c: float) -> dict:
    """The independent sample's largest ratio at c ≈ ``c`` (half a decade either side)."""
    rows = _their_ratios(theirs, c)
    return max(rows, key=lambda r: r["ratio"]) if rows else {}


def not_shrinking(theirs: dict) -> dict:
    """The independent study's own non-convergence findings: its "not shrinking" lists and ψ flags."""
    agg = theirs["family_G_aggregate"]
    return {
        "family": {m: agg[f"slope_{m}"]["not_shrinking"] for m in ("powersgd", "powersgd+", "msgd")},
        "psi_N3_shrinks_2x_over_100x": {
            m: theirs[PSI_KEY]["slopes"][m]["shrinks_by_2x_over_100x_eta"]
            for m in ("powersgd", "powersgd+", "msgd")
        },
    }
