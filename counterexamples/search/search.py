"""A seeded search for a robust failure of PowerSGD (issue 12, item 5).

Searched space (``decode``): the general counterexample in general position
(:class:`~counterexamples.search.problem.SearchProblem`): m, n ∈ [2, 8], signal/noise rank k,
σ ∈ [0.1, 100] with a per-node spread, the kink κ ∈ [0.25, 4] of the Huber-type loss,
Rademacher / normal / uniform noise, a heterogeneous linear term, a random rotation, X_0's
scale and perturbation; and the run: N ∈ [1, 8], r ∈ [1, k], MSGD (η = c(1 − μ)/(2L), c ∈
[0.01, 1], i.e. inside Theorem 4's step-size condition, μ ∈ [0, 0.95]) or Adam
(η ∈ [1e-4, 1e-1]), Q_{−1} from the run seed.

Objective (maximised by ``scipy.optimize.differential_evolution``, seeded, with common
random numbers so it is deterministic): the mean over R runs of
||∇f(X_T)||²/||∇f(X_0)||² for PowerSGD in float64 after T steps, minus the larger of the
same for uncompressed averaging and for PowerSGD+ (τ = 10) with the same η (so a step size
too small for anything to converge, or a slow-down every compressor shares, scores 0).

Robustness of the best instance: per perturbation kind (new random rotation, X_0 + 1e-3
noise, fresh run seeds; ``--robust`` instances of R runs each) the fraction of runs that
fail, i.e. end with ||∇f(X_T)||²/||∇f(X_0)||² ≥ 0.5 while uncompressed averaging on the
same instance ends below 0.05, with a Wilson 95% interval; PowerSGD+ (τ = 10) on the same
instances is the control. The detector is checked on Theorem 1's lock (ψ, aligned basis,
ξ_0 ≡ 1 forced): it must report failure there.

Run: ``python -m counterexamples.search [--quick] --out DIR`` (default ``out/search``;
quick ≤ 60 s). Writes DIR/search.json.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from scipy.optimize import differential_evolution

import simsgd
from simsgd.cli import Parser, add_engine_arguments, check_out_dir, engine, integer, output_set, run
from simsgd.output import atomic_write_json
from simsgd.problems import Psi2x2
from simsgd.stats import wilson_interval

from .._study import study_record
from .problem import NOISES, SearchProblem

# m, n, k, log σ, spread, κ, noise, heterogeneity, basis seed, N, r, log c, μ, optimiser, X_0 scale, X_0 noise
BOUNDS = [(2, 8.99), (2, 8.99), (0, 1), (-1, 2), (0, 1), (0.25, 4), (0, 2.99), (0, 2), (0, 1e6),
          (1, 8.99), (0, 1), (-2, 0), (0, 0.95), (0, 1.99), (0.5, 5), (0, 1)]  # fmt: skip
STALLED, CONVERGED = 0.5, 0.05


def decode(z):
    """The instance and run options a search point z (16 floats in BOUNDS) stands for."""
    m, n = int(z[0]), int(z[1])
    k = 1 + int(z[2] * (min(m, n) // 2 - 1) + 0.5) if min(m, n) >= 4 else 1
    nodes = int(z[9])
    sigma = 10 ** z[3]
    spread = z[4] * np.linspace(-1, 1, nodes) if nodes > 1 else np.zeros(1)
    problem = dict(
        m=m,
        n=n,
        k=k,
        sigmas=[float(s) for s in sigma * (1 + 0.9 * spread)],
        kink=float(z[5]),
        noise=NOISES[int(z[6])],
        heterogeneity=float(z[7]),
        basis_seed=int(z[8]),
        x0_scale=float(z[14]),
        x0_noise=float(z[15]),
    )
    optimizer = "msgd" if z[13] < 1 else "adam"
    momentum = float(z[12])
    lr = (
        10 ** z[11] * (1 - momentum) / (2 * SearchProblem.L)
        if optimizer == "msgd"
        else 10 ** (-4 + 3 * (z[11] + 2) / 2)
    )
    rank = 1 + int(z[10] * (k - 1) + 0.5)
    return problem, dict(nodes=nodes, rank=rank, optimizer=optimizer, momentum=momentum, lr=float(lr))


def ratios(problem, options, method, steps, replicas, seed):
    """(R,) ||∇f(X_T)||²/||∇f(X_0)||², or None if the run diverged."""
    try:
        trace = simsgd.simulate(
            problem, method=method, steps=steps, replicas=replicas, seed=seed, progress=False,
            restart_period=10, **options,
        )  # fmt: skip
    except FloatingPointError:
        return None
    g = trace.grad_norm_sq
    return g[:, -1] / np.maximum(g[:, 0], 1e-300)


def objective(z, steps, replicas):
    problem_kw, options = decode(z)
    problem = SearchProblem(**problem_kw)
    ours = ratios(problem, options, "powersgd", steps, replicas, 0)
    controls = [ratios(problem, options, method, steps, replicas, 0) for method in ("full", "powersgd+")]
    if ours is None or any(c is None for c in controls):
        return 0.0
    return -(float(np.mean(ours)) - max(float(np.mean(c)) for c in controls))  # minimised


def failures(problem, options, method, steps, replicas, seed):
    """(failed runs, runs): PowerSGD-type runs that stall where uncompressed averaging converges."""
    ours = ratios(problem, options, method, steps, replicas, seed)
    full = ratios(problem, options, "full", steps, replicas, seed)
    if ours is None or full is None:
        return 0, 0
    return int(((ours >= STALLED) & (full < CONVERGED)).sum()), replicas


def robustness(problem_kw, options, steps, replicas, instances):
    """Failure rate (Wilson 95%) of PowerSGD and PowerSGD+ under three perturbations."""
    out = {}
    kinds = {
        "fresh seeds": lambda i: (problem_kw, 1000 + i),
        "random rotation": lambda i: ({**problem_kw, "basis_seed": 10_000 + i}, 0),
        "X0 + 1e-3 noise": lambda i: (
            {**problem_kw, "x0_noise": problem_kw["x0_noise"] + 1e-3, "x0_seed": i},
            0,
        ),
    }
    for kind, make in kinds.items():
        row = {}
        for method in ("powersgd", "powersgd+"):
            failed = total = 0
            for i in range(instances):
                kw, seed = make(i)
                f, n = failures(SearchProblem(**kw), options, method, steps, replicas, seed)
                failed, total = failed + f, total + n
            row[method] = {
                "failed": failed,
                "runs": total,
                "wilson95": list(wilson_interval(failed, max(total, 1))),
            }
        out[kind] = row
    return out


def horizon(problem_kw, options, steps, replicas):
    """Quantiles (10, 50, 90%) of ||∇f(X_t)||²/||∇f(X_0)||² at t = T and t = 4T on the best
    instance (fresh seeds): a stall stays put, a slow-down moves on.
    """
    out = {}
    for method in ("powersgd", "powersgd+", "full"):
        trace = simsgd.simulate(
            SearchProblem(**problem_kw), method=method, steps=4 * steps, replicas=replicas, seed=7,
            restart_period=10, progress=False, **options,
        )  # fmt: skip
        ratio = trace.grad_norm_sq / np.maximum(trace.grad_norm_sq[:, :1], 1e-300)
        out[method] = {
            f"t={t}": np.quantile(ratio[:, t], [0.1, 0.5, 0.9]).tolist() for t in (steps, 4 * steps)
        }
    return out


def detector_check(steps, replicas):
    """The failure detector on Theorem 1's lock (ψ, aligned, ξ_0 ≡ 1): every run must fail."""
    options = dict(nodes=4, rank=1, optimizer="msgd", momentum=0.9, lr=5e-4)
    locked = Psi2x2(5.0, basis="aligned", lock_start=True)
    rotated = Psi2x2(5.0, basis="random", lock_start=True)
    f_lock, n = failures(locked, options, "powersgd", steps, replicas, 0)
    f_rot, _ = failures(rotated, options, "powersgd", steps, replicas, 0)
    return {"psi_aligned_lock": [f_lock, n], "psi_random_basis_lock_start": [f_rot, n]}


def build_parser():
    p = Parser(prog="python -m counterexamples.search", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join("out", "search"), help="output folder (default out/search)")
    p.add_argument("--quick", action="store_true", help="a small search (≤ 60 s)")
    p.add_argument(
        "--seed",
        type=integer("--seed", 0, 2**32 - 1),
        default=0,
        help="seed of the search in [0, 2³² − 1] (scipy's differential evolution; default 0)",
    )
    add_engine_arguments(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    context = engine(args)  # checked before anything is written or run
    out = check_out_dir(args.out, names=("search.json",))
    if args.quick:
        steps, replicas, maxiter, popsize, robust_runs, robust_instances = 150, 8, 2, 2, 8, 4
    else:
        steps, replicas, maxiter, popsize, robust_runs, robust_instances = 200, 12, 6, 3, 16, 8
    with context:
        start = time.monotonic()
        evaluations = []

        def scored(z):
            value = objective(z, steps, replicas)
            evaluations.append(-value)
            return value

        result = differential_evolution(
            scored,
            BOUNDS,
            maxiter=maxiter,
            popsize=popsize,
            seed=args.seed,
            polish=False,
            tol=0,
            init="sobol",
        )
        problem_kw, options = decode(result.x)
        best = -float(result.fun)
        robust = robustness(problem_kw, options, steps, robust_runs, robust_instances)
        check = detector_check(steps, robust_runs)
        long_run = horizon(problem_kw, options, steps, robust_runs)
    summary = {
        **study_record("counterexamples.search", argv, start),
        "seed": args.seed,
        "steps": steps,
        "replicas_per_evaluation": replicas,
        "evaluations": len(evaluations),
        "objective": "mean ||∇f(X_T)||²/||∇f(X_0)||² of PowerSGD minus the larger of uncompressed "
        "averaging's and PowerSGD+'s",
        "best_value": best,
        "objective_quantiles": [float(q) for q in np.quantile(evaluations, [0.5, 0.9, 0.99, 1.0])],
        "best_instance": {"problem": problem_kw, "run": options},
        "failure_rule": f"ratio ≥ {STALLED} for the method while uncompressed averaging ends < {CONVERGED}",
        "robustness": robust,
        "robust_instances": robust_instances,
        "robust_runs_per_instance": robust_runs,
        "detector_check": check,
        "horizon_quantiles": long_run,
    }
    print(
        f"{len(evaluations)} evaluations, best objective {best:.3g} "
        f"(quantiles 50/90/99/100%: {', '.join(f'{q:.3g}' for q in summary['objective_quantiles'])})"
    )
    print("best instance:", problem_kw, options)
    for kind, row in robust.items():
        a, b = row["powersgd"], row["powersgd+"]
        print(
            f"{kind:16s} PowerSGD fails {a['failed']}/{a['runs']} {np.round(a['wilson95'], 3).tolist()}, "
            f"PowerSGD+ {b['failed']}/{b['runs']} {np.round(b['wilson95'], 3).tolist()}"
        )
    print("detector check (failed/runs):", check)
    for method, q in long_run.items():
        print(
            f"{method:10s} ratio quantiles 10/50/90%:",
            {t: [f"{v:.2g}" for v in vals] for t, vals in q.items()},
        )
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "search.json"), summary)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m counterexamples.search"))
