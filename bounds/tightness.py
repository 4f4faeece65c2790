"""How close each factor of the bounds comes to being attained: sweeps, local slopes, the largest ratio.

Each sweep varies one parameter of one instance and reports, per value, the measured
quantity (with one-sided bounds), the bound, their ratio, and the local slopes
log(y_{k+1}/y_k)/log(x_{k+1}/x_k) of both — no fitted exponent, since an upper bound predicts
none. The largest measured/bound ratio times the paper's constant is an empirical lower
bound on the constant a proof of the same form could have had. Where the quantity is the
left-hand side of Theorem 4, uncompressed MSGD on the same seeds is shown beside it, and
the compression term is compared with the excess of PowerSGD+ over MSGD, so that what is
attributed to compression is what differs.
"""

from __future__ import annotations

import numpy as np

from simsgd import theory
from simsgd.stats import local_slopes, max_mean_bounds, mean_bounds

from . import problems

__all__ = ["SWEEPS", "run"]

LOCKED = {"family": "psi", "basis": "aligned", "noise_scale": 5.0, "lock_start": True}
PSI1 = {"family": "psi", "basis": "aligned", "noise_scale": 1.0}

# factor: (statement, spec, fixed parameters, swept parameter, values); R per mode below.
SWEEPS = [
    dict(
        factor="τ² (Lemma 3)",
        quantity="max_t E‖ē_t‖²",
        spec=LOCKED,
        fixed=dict(nodes=4, rank=1, momentum=0.0, lr=1e-5, steps="3tau+1"),
        x="restart_period",
        values=[2, 4, 8, 16, 32],
        paper_constant=45.0,
    ),
    dict(
        factor="τ² (Lemma 4)",
        quantity="max_t E‖m_t‖²",
        spec=LOCKED,
        fixed=dict(nodes=4, rank=1, momentum=0.5, lr=1e-5, steps="3tau+1"),
        x="restart_period",
        values=[2, 4, 8, 16, 32],
        paper_constant=92.0,
    ),
    dict(
        factor="(1−μ)⁻² (Lemma 4)",
        quantity="max_t E‖m_t‖²",
        spec=LOCKED,
        fixed=dict(nodes=4, rank=1, restart_period=8, lr=1e-5, steps=400),
        x="momentum",
        values=[0.0, 0.5, 0.75, 0.9, 0.95, 0.99],
        paper_constant=92.0,
    ),
    dict(
        factor="δ⁻² (Lemma 3)",
        quantity="max_t E‖ē_t‖²",
        spec={"family": "quadratic", "m": 8, "n": 8, "heterogeneity": 0.5},
        fixed=dict(nodes=4, restart_period=8, momentum=0.0, lr=0.05, steps=200),
        x="rank",
        values=[1, 2, 4, 6],
        paper_constant=45.0,
    ),
    dict(
        factor="τ² (Theorem 4, third term)",
        quantity="(1/T)Σ E‖∇f(X_t)‖² − same for MSGD",
        spec=PSI1,
        fixed=dict(nodes=1, rank=1, momentum=0.0, lr=1e-3, steps=2000),
        x="restart_period",
        values=[2, 4, 8, 16, 32],
        paper_constant=548.0,
    ),
    dict(
        factor="(1−μ)⁻⁴ (Theorem 4, third term)",
        quantity="(1/T)Σ E‖∇f(X_t)‖² − same for MSGD",
        spec=PSI1,
        fixed=dict(nodes=1, rank=1, restart_period=8, lr=2e-4, steps=4000),
        x="momentum",
        values=[0.0, 0.5, 0.75, 0.9],
        paper_constant=548.0,
    ),
    dict(
        factor="1/N (Theorem 4, noise term)",
        quantity="(1/T)Σ E‖∇f(X_t)‖², X₀ = X*",
        spec={"family": "quadratic", "m": 6, "n": 4, "heterogeneity": 0.0, "at_optimum": True},
        fixed=dict(rank=1, restart_period=4, momentum=0.0, lr=0.02, steps=400),
        x="nodes",
        values=[1, 2, 4, 8],
        paper_constant=2.0,
    ),
    dict(
        factor="1/(ηT) (Theorem 4, first term)",
        quantity="(1/T)Σ E‖∇f(X_t)‖²",
        spec=PSI1,
        fixed=dict(nodes=1, rank=1, restart_period=2, momentum=0.0, lr=2e-4, steps=20000),
        x="steps",
        values=[1000, 2000, 5000, 10000, 20000],
        paper_constant=4.0,
    ),
]


def _constants(problem, trace, alpha):
    own = getattr(problem, "omega_sq", None)
    return theory.constants(
        problem, None if own is not None else theory.visited_omega_sq(trace.grad_norm_sq, alpha)
    )


def _point(sweep, value, replicas, seed, alpha):
    """(measured Estimate, bound, MSGD baseline Estimate or None, params) at one value of the sweep."""
    p = dict(sweep["fixed"], **{sweep["x"]: value})
    if p["steps"] == "3tau+1":
        p["steps"] = 3 * p["restart_period"] + 1
    problem = problems.make(sweep["spec"], p["nodes"])
    d = theory.delta(p["rank"], problem.shape)
    plus = problems.run_msgd(problem, "powersgd+", p, replicas, seed)
    c = _constants(problem, plus, alpha)
    factor = sweep["factor"]
    if factor.endswith("(Lemma 3)"):
        return (
            max_mean_bounds(plus.error_norm_sq, alpha),
            theory.lemma3_bound(p["restart_period"], c.G_sq, d),
            None,
            p,
        )
    if factor.endswith("(Lemma 4)"):
        est = max_mean_bounds(plus.momentum_norm_sq[:, 1:], alpha)
        return est, theory.lemma4_bound(p["restart_period"], c.G_sq, d, p["momentum"]), None, p
    kw = dict(
        lr=p["lr"], momentum=p["momentum"], restart_period=p["restart_period"], delta=d, nodes=p["nodes"]
    )
    T = p["steps"]
    terms = theory.theorem4_terms(c, steps=T, **kw)
    y = plus.grad_norm_sq[:, :T].mean(axis=1)
    full = problems.run_msgd(problem, "full", p, replicas, seed).grad_norm_sq[:, :T].mean(axis=1)
    base = mean_bounds(full, alpha)
    if "third term" in factor:  # the excess over MSGD on the same seeds, against the compression term
        return mean_bounds(y - full, alpha), terms.compression, base, p
    if "noise term" in factor:
        return mean_bounds(y, alpha), terms.noise, base, p
    return mean_bounds(y, alpha), terms.optimization, base, p


def _prefix_points(sweep, replicas, seed, alpha):
    """The 1/(ηT) sweep: prefix averages of one run give every T (Theorem 4 holds at each T)."""
    p = dict(sweep["fixed"], steps=max(sweep["values"]))
    problem = problems.make(sweep["spec"], p["nodes"])
    d = theory.delta(p["rank"], problem.shape)
    plus = problems.run_msgd(problem, "powersgd+", p, replicas, seed).grad_norm_sq
    full = problems.run_msgd(problem, "full", p, replicas, seed).grad_norm_sq
    c = theory.constants(problem)
    kw = dict(
        lr=p["lr"], momentum=p["momentum"], restart_period=p["restart_period"], delta=d, nodes=p["nodes"]
    )
    points = []
    for T in sweep["values"]:
        bound = theory.theorem4_terms(c, steps=T, **kw).optimization
        y, z = plus[:, :T].mean(axis=1), full[:, :T].mean(axis=1)
        points.append((mean_bounds(y, alpha), bound, mean_bounds(z, alpha), dict(p, steps=T)))
    return points


def run(replicas: int, seed: int, alpha: float = 0.05, quick: bool = False) -> list:
    """Every sweep of :data:`SWEEPS` (``quick``: three values, T ≤ 1000); one dict per sweep."""
    out = []
    for sweep in SWEEPS:
        if quick:
            values = [v for v in sweep["values"] if sweep["x"] != "steps" or v <= 1000]
            values = values[:3] if sweep["x"] != "steps" else [250, 500, 1000]
            fixed = dict(sweep["fixed"])
            if isinstance(fixed["steps"], int):
                fixed["steps"] = min(fixed["steps"], 1000)
            sweep = dict(sweep, values=values, fixed=fixed)
        if sweep["x"] == "steps":
            points = _prefix_points(sweep, replicas, seed, alpha)
        else:
            points = [_point(sweep, v, replicas, seed, alpha) for v in sweep["values"]]
        means = [m.mean for m, *_ in points]
        bounds_ = [b for _, b, *_ in points]
        ratios = [m.mean / b for m, b, *_ in points]
        best = int(np.argmax(ratios))
        x = [1.0 - v for v in sweep["values"]] if sweep["x"] == "momentum" else sweep["values"]
        if sweep["x"] == "rank":
            x = [
                points[k][3]["rank"] / min(problems.make(sweep["spec"], 1).shape) for k in range(len(points))
            ]
        out.append(
            dict(
                factor=sweep["factor"],
                quantity=sweep["quantity"],
                problem=problems.label(sweep["spec"]),
                spec=sweep["spec"],
                fixed={k: v for k, v in sweep["fixed"].items()},
                x_name={"momentum": "1−μ", "rank": "δ = r/min(m,n)"}.get(sweep["x"], sweep["x"]),
                x=x,
                measured=[m.to_dict() for m, *_ in points],
                bound=bounds_,
                ratio=ratios,
                baseline=[None if b is None else b.to_dict() for *_, b, _ in points],
                slopes_measured=local_slopes(x, means),
                slopes_bound=local_slopes(x, bounds_),
                max_ratio=ratios[best],
                at=sweep["values"][best],
                paper_constant=sweep["paper_constant"],
                empirical_constant=ratios[best] * sweep["paper_constant"],
                replicas=replicas,
                seed=seed,
            )
        )
    return out
