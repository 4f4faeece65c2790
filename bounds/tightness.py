"""How much of Theorem 4's compression term compression uses: the stationary excess, swept.

Each point runs PowerSGD+ and uncompressed MSGD on the same seeds for 10T steps, T = 2/η
(ψ's MSGD contracts ⟨A, X⟩ by about 16η per step, so at t = T/2 its transient is e^−16 of the
start) and takes the paired excess over the last half of [0, T) and of [0, 10T)
(:func:`simsgd.check.stationary_excess`). A start-up cost falls as 1/T (excess × T constant);
a stationary excess stays (excess × T grows tenfold): ``tail_10T / tail_T`` tells them apart.

One parameter is swept at a time around a base where compression matters (ψ aligned, σ = 5,
N = 1, τ = 1, μ = 0, η = 10⁻³), each excess set beside 548L²η²τ²G²/((1−μ)⁴δ²) and the
erratum-corrected term. An upper bound predicts no exponent: the fitted slopes (log-log least
squares over the points whose excess is significant, bootstrap 90% interval) and local slopes
describe the measurement; they are not tests of the theorem. The PowerSGD control (no restart)
is the input that breaks "excess ≤ compression term": its locked runs keep E||∇f||² near ε₀.
"""

from __future__ import annotations

import numpy as np

from simsgd import check, theory
from simsgd.stats import fit_exponent, local_slopes

from . import problems

__all__ = ["BASE", "sweeps", "point", "run", "control", "lemma3_tau"]

PSI5 = {"family": "psi", "basis": "random", "noise_scale": 5.0, "x0_scale": 0.5}
GENERAL = {
    "family": "general",
    "m": 4,
    "n": 4,
    "k": 2,
    "basis": "random",
    "noise_scale": 5.0,
    "x0_scale": 0.5,
}
ALIGNED = dict(PSI5, basis="aligned")
BASE = dict(spec=PSI5, nodes=1, rank=1, restart_period=1, momentum=0.0, lr=1e-3)
LOCKED = {"family": "psi", "basis": "aligned", "noise_scale": 5.0, "lock_start": True}


def sweeps(quick: bool) -> list:
    """(name, parameter, values, overrides of BASE) of each sweep; ``quick``: two short sweeps."""
    if quick:
        return [("τ", "restart_period", [1, 4], {"lr": 4e-3}), ("η", "lr", [4e-3, 8e-3], {})]
    return [
        ("τ", "restart_period", [1, 2, 4, 16], {}),
        ("η", "lr", [1e-3, 2e-3, 4e-3], {}),
        ("1−μ", "momentum", [0.0, 0.5, 0.9], {}),
        ("σ", "noise_scale", [1.0, 2.0, 5.0, 10.0], {}),
        ("N", "nodes", [1, 2, 3], {}),
        ("δ = r/4 (general 4×4, k = 2)", "rank", [1, 2, 4], {"spec": GENERAL}),
        # exact arithmetic (aligned: the iterates stay in span{A, B}), 10⁻¹² off it, rounding (random)
        ("exactness", "spec", [ALIGNED, dict(ALIGNED, transverse=1e-12), PSI5], {}),
        # the independent re-derivation's τ sweep (ψ, N = 3, σ = 5, μ = 0.9, η = 0.1·(1−μ)/(2L), T = 1600)
        (
            "τ (N = 3, μ = 0.9)",
            "restart_period",
            [1, 8, 32],
            {"nodes": 3, "momentum": 0.9, "lr": 6.25e-4, "T": 1600},
        ),
    ]


def point(params: dict, replicas: int, seed: int, alpha: float, tenfold: bool = True) -> dict:
    """The stationary excess at ``params`` (BASE's keys, ``noise_scale`` and ``T`` optional) at T = 2/η
    and (``tenfold``) 10T; the figures of the longest horizon as the point's own.
    """
    p = dict(params)
    spec = dict(p.pop("spec"))
    if "noise_scale" in p:
        spec["noise_scale"] = p.pop("noise_scale")
    T = p.pop("T", None) or max(2, int(round(2.0 / p["lr"])))
    problem = problems.make(spec, p["nodes"])
    found = check.stationary_excess(
        problem, horizons=[T, 10 * T] if tenfold else [T], replicas=replicas, seed=seed, alpha=alpha, **p
    )
    at_T, at_10T = found[0], found[-1]
    e, e10 = at_T.excess, at_10T.excess
    return dict(
        problem=problems.label(spec),
        T=T,
        excess_T=e.to_dict(),
        excess_10T=e10.to_dict() if tenfold else None,
        tail_ratio=e10.mean / e.mean if e.mean and tenfold else None,
        excess_times_T_ratio=10 * e10.mean / e.mean if e.mean and tenfold else None,
        significant=e10.lower > 0,
        compression=at_10T.compression,
        corrected=at_10T.corrected,
        ratio=at_10T.ratio,
        ratio_corrected=e10.mean / at_10T.corrected,
        constant=at_10T.constant,
        msgd_10T=at_10T.base.mean,
        values=at_10T.values,
    )


def _x(name: str, value, spec):
    if name == "exactness":
        return problems.label(value)
    if name.startswith("1−μ"):
        return 1.0 - value
    if name.startswith("δ"):
        return value / min(problems.make(spec, 1).shape)
    return float(value)


def _sweep(name, parameter, values, overrides, replicas, seed, alpha, cache) -> dict:
    points = []
    for v in values:
        params = dict(BASE, **overrides, **{parameter: v})
        key = repr(sorted((k, repr(w)) for k, w in params.items()))
        if key not in cache:
            cache[key] = point(params, replicas, seed, alpha)
        points.append(dict(cache[key], value=v))
    spec = overrides.get("spec", BASE["spec"])
    x = [_x(name, v, spec) for v in values]
    numeric = name != "exactness"
    live = [k for k, p in enumerate(points) if p["significant"]] if numeric else []
    fit = None
    if len(live) >= 2:
        fit = fit_exponent([x[k] for k in live], [points[k]["values"] for k in live], seed=seed).to_dict()
    means = [p["excess_10T"]["mean"] for p in points]
    return dict(
        name=name,
        parameter=parameter,
        fixed={k: v for k, v in dict(BASE, **overrides).items() if k not in (parameter, "spec")},
        problem=points[0]["problem"],
        x=x,
        points=[{k: v for k, v in p.items() if k != "values"} for p in points],
        fit=fit,
        fit_points=[values[k] for k in live],
        local_slopes=local_slopes(x, means) if numeric and all(m > 0 for m in means) else None,
    )


def run(replicas: int, seed: int, alpha: float = 0.05, quick: bool = False) -> list:
    """Every sweep of :func:`sweeps`; points shared between sweeps (the base) run once."""
    cache = {}
    return [_sweep(*s, replicas, seed, alpha, cache) for s in sweeps(quick)]


def control(replicas: int, seed: int, alpha: float = 0.05, lr: float = 5e-4) -> dict:
    """PowerSGD (no restart) in place of PowerSGD+ at the base in the aligned basis (its lock exact),
    η = ``lr``: its stationary excess against the same compression term, the input that breaks
    "excess ≤ compression term" (locked runs keep E||∇f||² at ||∇f(X_0)||²).
    """
    p = dict(BASE, lr=lr)
    p.pop("spec")
    T = int(round(2.0 / lr))
    (ex,) = check.stationary_excess(
        problems.make(ALIGNED, p["nodes"]),
        horizons=[T],
        method="powersgd",
        replicas=replicas,
        seed=seed,
        alpha=alpha,
        **p,
    )
    return dict(ex.to_dict(), problem=problems.label(ALIGNED), exceeds=ex.excess.lower > ex.compression)


def lemma3_tau(replicas: int, seed: int, alpha: float = 0.05, taus=(2, 4, 8, 16, 32)) -> dict:
    """Lemma 3's τ² on ψ with the lock forced (PowerSGD+ then moves the signal only at restarts):
    max_t E||ē_t||² for T = 3τ + 1 against 45τ²G²/δ², with local slopes in τ.
    """
    problem = problems.make(LOCKED, 4)
    found = [
        check.check_lemma3(
            problem,
            nodes=4,
            rank=1,
            restart_period=tau,
            momentum=0.0,
            lr=1e-5,
            steps=3 * tau + 1,
            replicas=replicas,
            seed=seed,
            control=False,
            alpha=alpha,
        )
        for tau in taus
    ]
    means = [c.measured.mean for c in found]
    return dict(
        problem=problems.label(LOCKED),
        taus=list(taus),
        measured=[c.measured.to_dict() for c in found],
        bound=[c.bound for c in found],
        ratio=[c.measured.mean / c.bound for c in found],
        local_slopes=local_slopes(list(taus), means),
        empirical_constant=float(np.max([45.0 * c.measured.mean / c.bound for c in found])),
        delta=theory.delta(1, problem.shape),
    )
