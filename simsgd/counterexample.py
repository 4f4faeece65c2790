"""Theorem 1's counterexample, run: ``python -m simsgd.counterexample --sigma 5 --N 4``.

Runs PowerSGD and PowerSGD+ side by side on the ψ problem of eq. (10) and prints one
table: E||∇f(X_T)||² with a 95% confidence interval, the fraction of runs still locked
at T (X_T − X_0 ∈ span(B) and ||∇f(X_T)||² equal to its initial value) beside the
proof's lower bound 2^(−N), ε₀ of Theorem 1 for this X_0, and how many steps met a
degenerate QR (P_t = 0). ``--precision exact`` instead runs PowerSGD in rational
arithmetic (:mod:`simsgd.exact`) from Claim 1's start ξ_0 ≡ 1 under each QR
convention and reports where the proof's invariants break.

With ``--out DIR`` it writes, each file whole or not at all: ``counterexample.png``
(E||∇f(X_t)||² against t, log scale, 95% bands), ``counterexample_steps.csv`` (per
step) and ``counterexample.json`` (the summary). Bad arguments: one line on stderr,
exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

from . import cli, exact_batch
from . import exact as exact_mod
from ._checks import check_memory
from .engine import Diverged, memory_estimate
from .lock import lock_summary, simulate_lock
from .ops import array_ops
from .output import atomic_savefig, atomic_write_csv, atomic_write_json
from .problems import Psi2x2
from .problems.psi import MAX_NOISE_SCALE
from .stats import mean_ci
from .verdict import MIN_EVENTS, RESOLUTION_FACTOR, Interval, Names, Verdict, decide, grad_norm_sq_resolution

__all__ = ["main", "build_parser", "METHODS"]

METHODS = ("powersgd", "powersgd+")
FLOAT_DEFAULTS = {"steps": 1000, "replicas": 1000}
EXACT_DEFAULTS = {"steps": 200, "replicas": 8}
MAX_NODES = 1024
MARGIN = 0.5  # "holds": E||∇f(X_T)||² ≥ ε₀/2 at 95% (simsgd.verdict, rule 5): ε₀ is attained, never exceeded
FILES = ("counterexample.png", "counterexample_steps.csv", "counterexample.json")
EXACT_CSV_HEADER = (
    "degenerate_qr",
    "replica",
    "outcome",
    "steps_checked",
    "broken_invariant",
    "broken_at",
    "degenerate_steps",
    "frozen_from",
    "max_bits",
    "seconds",
)


# ---------------------------------------------------------------- arguments


def _sigma_list(text):
    """σ, or σ_1,…,σ_N (each in [0, 1e150]): a float, or a list of floats."""
    parse = cli.real("--sigma", 0.0, MAX_NOISE_SCALE)
    values = [parse(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


def _sigma_text(sigma) -> str:
    return ",".join(f"{s:g}" for s in np.ravel(sigma))


EPILOG = f"""\
verdict (last line of the float table; "verdict" in the JSON): "holds", "fails" or
"inconclusive: <reason>; would decide: <run>" (simsgd.verdict). It is drawn only from a run
that can decide: R ≥ 30, an interval of non-zero width, R·2^-N ≥ 10 expected locked runs,
ε₀ ≥ 2^10 × the float resolution of ||∇f||², no diverged run; "fails" when PowerSGD's 95%
interval lies below ε₀; "holds" when it reaches ε₀, its lower end is ≥ ε₀·{1 - MARGIN:g} (ε₀ is
attained by the construction, so it cannot be exceeded clearly), and PowerSGD+ ends below it.

JSON summary (--json, or counterexample.json with --out), per method:
  mean_grad_norm_sq_T, ci95       E||∇f(X_T)||² and its normal 95% interval (clipped at 0)
  locked_runs, locked_fraction,   runs still locked at T, their share and Wilson 95% interval
  locked_ci95
  median_escape_step              median, over the runs that left the lock, of the first t at
                                  which the run was no longer locked (X_t − X_0 left span(B) or
                                  ||∇f(X_t)||² left its initial value); null if no run left
                                  (1 in the README run: most runs leave at the first step)
  degenerate_qr_replica_steps     replica-steps (of R·T) whose P_t was degenerate, and their
  degenerate_qr_replica_step_fraction  share
  diverged_runs, diverged_fraction, first_diverged_step

--precision exact is a different experiment: PowerSGD only, ξ_0 ≡ 1 forced on every run,
defaults T = {EXACT_DEFAULTS["steps"]}, R = {EXACT_DEFAULTS["replicas"]}, every QR(0) convention unless
--degenerate-qr names one; it estimates its cost first and refuses a run over --max-seconds
(or, with --allow-partial, runs what fits).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m simsgd.counterexample``."""
    p = cli.Parser(
        prog="python -m simsgd.counterexample",
        description="Theorem 1 (Appendix A): PowerSGD does not converge on f_i(X) = ψ(Dᵀ X D), "
        "∇F(X; ξ) = ∇f(X) + ξ(σB − ∇f(X)), ξ = ±1. Runs PowerSGD and PowerSGD+ side by "
        "side and compares E||∇f(X_T)||² and the fraction of locked runs with the "
        "proof's bounds ε₀ and 2^(−N).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--sigma",
        type=_sigma_list,
        default=5.0,
        help="noise scale σ ≥ 0 of eq. (10b) (default 5), or N comma-separated per-node σ_i "
        "(e.g. 5,10: no signed sum Σ±σ_i vanishes, so no PowerSGD step in the lock is degenerate)",
    )
    p.add_argument(
        "--N",
        type=cli.integer("--N", 1, MAX_NODES),
        default=4,
        help=f"number of nodes N in [1, {MAX_NODES}] (default 4); each draws ξ_t^(i) = ±1",
    )
    p.add_argument(
        "--steps",
        type=cli.integer("--steps", 1),
        default=None,
        help=f"iterations T ≥ 1 (default {FLOAT_DEFAULTS['steps']}, "
        f"{EXACT_DEFAULTS['steps']} with --precision exact)",
    )
    p.add_argument(
        "--replicas",
        type=cli.integer("--replicas", 1),
        default=None,
        help=f"independent runs R ≥ 1 for the Monte Carlo averages (default "
        f"{FLOAT_DEFAULTS['replicas']}, {EXACT_DEFAULTS['replicas']} with --precision exact)",
    )
    p.add_argument(
        "--lr",
        type=cli.real("--lr", 0.0, low_open=True),
        default=5e-4,
        help="step size η > 0 (default 5e-4; Theorem 4 needs η ≤ (1 − μ)/(2L), L = 8)",
    )
    p.add_argument(
        "--momentum",
        type=cli.real("--momentum", 0.0, 1.0, high_open=True),
        default=0.9,
        help="momentum μ in [0, 1) of MSGD, eq. (7c) (default 0.9)",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "msgd", "adam"),
        default="msgd",
        help="base optimiser of step (7c) (default msgd)",
    )
    p.add_argument(
        "--tau",
        type=cli.integer("--tau", 1),
        default=10,
        help="PowerSGD+ restart period τ ≥ 1: SVD-COMP when t mod τ = 0 (default 10)",
    )
    p.add_argument(
        "--rank",
        type=cli.integer("--rank", 1, 2),
        default=1,
        help="compression rank r in [1, 2] (default 1; r = 2 sends the whole 2×2 matrix)",
    )
    p.add_argument(
        "--x0",
        type=cli.real("--x0"),
        nargs=4,
        metavar=("X11", "X12", "X21", "X22"),
        default=None,
        help="X_0 (row-major, in the chosen basis); default the paper's I₂, where "
        "Dᵀ X_0 D = 2 and ||∇f(X_0)||² = 16",
    )
    p.add_argument(
        "--basis",
        choices=("paper", "aligned", "random"),
        default="aligned",
        help="the same problem in another orthonormal basis: 'aligned' (default) makes A "
        "and B diagonal so rounding keeps the lock; 'paper' is eq. (10) as written, "
        "where rounding breaks it; 'random' a rotation drawn from --seed",
    )
    p.add_argument(
        "--precision",
        choices=("float64", "float32", "exact"),
        default="float64",
        help="floating point, or exact rational arithmetic (PowerSGD only, from ξ_0 ≡ 1, "
        "checking Claim 1's invariants under each QR convention)",
    )
    p.add_argument(
        "--degenerate-qr",
        choices=("previous", "native", "zero", "raise"),
        default="previous",
        help="what QR(P_t) does when P_t = 0: keep P̃_{t-1} (default), LAPACK's unit vector, "
        "P̃ = 0 (PyTorch with ε > 0), or stop (PyTorch with ε = 0 divides 0 by 0); "
        "--precision exact runs all four unless this names one",
    )
    p.add_argument(
        "--seed", type=cli.seed(), default=0, help="seed in [0, 2⁶⁴ − 1] of ξ, Q_{-1} and the random basis"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write counterexample.png, counterexample_steps.csv, counterexample.json here",
    )
    p.add_argument(
        "--max-seconds",
        type=cli.real("--max-seconds", 0.0, low_open=True),
        default=600.0,
        help="--precision exact: the time budget of all runs together, in seconds (default 600), "
        "calibration included: a calibration of at most 2 s estimates the cost first, and a run "
        "estimated over budget is refused (exit 2)",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="--precision exact: run what fits in --max-seconds and accept runs cut short or not "
        "run (a warning, exit 0); without it any truncation is a failure (exit 1, nothing written)",
    )
    cli.add_engine_arguments(p)
    p.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
    p.add_argument("--no-plot", action="store_true", help="with --out, skip the figure")
    return p


def _check_args(args):
    """Cross-argument checks and the limits that make overflow certain; raises UsageError."""
    if np.ndim(args.sigma) and len(args.sigma) != args.N:
        raise cli.UsageError(f"argument --sigma: must be one value or --N = {args.N} comma-separated values")
    if args.precision == "exact":
        if args.backend != "numpy":
            raise cli.UsageError(
                "argument --backend: --precision exact computes in fractions, not arrays; use numpy"
            )
        if args.basis == "random":
            raise cli.UsageError(
                "argument --basis: must be 'paper' or 'aligned' with --precision exact "
                "(a random rotation is irrational)"
            )
        if args.rank != 1:
            raise cli.UsageError("argument --rank: must be 1 with --precision exact")
    defaults = EXACT_DEFAULTS if args.precision == "exact" else FLOAT_DEFAULTS
    args.steps = defaults["steps"] if args.steps is None else args.steps
    args.replicas = defaults["replicas"] if args.replicas is None else args.replicas
    if args.precision != "exact":
        _check_float_range(args)
        extra = 3.0 * args.replicas * (args.steps + 1)  # the lock masks (bool)
        if args.out is not None:
            extra += 1200.0 * (args.steps + 1)  # the per-step CSV rows, as Python objects
        with cli.usage_errors():
            check_memory(
                f"--replicas {args.replicas} --steps {args.steps} --N {args.N}",
                memory_estimate(args.replicas, args.steps, args.N, (2, 2), args.rank, args.precision) + extra,
                "fewer --replicas or --steps",
            )
    return args


def range_limit(precision) -> float:
    """√(float max)/16: the largest |X_0|, gradient entry and first step a run may start with.

    Beyond √(float max) the squares this table reports (||∇f||², the lock test's ||X||²,
    Adam's second moment) overflow; the factor 1/16 covers the sums of four entries.
    """
    return float(np.sqrt(np.finfo(np.dtype(precision)).max)) / 16.0


def _check_float_range(args):
    """Refuse inputs whose first step is certain to leave the float range (see :func:`range_limit`)."""
    limit, precision = range_limit(args.precision), args.precision
    if args.x0 is not None and max(map(abs, args.x0)) > limit:
        raise cli.UsageError(
            f"argument --x0: entries must be at most {limit:.3g} in {precision}, got {args.x0}"
        )
    sigma = float(np.max(args.sigma))  # the largest per-node σ_i
    grad_bound = 2.0 * sigma + 8.0  # |∇F| ≤ |∇f| + |σB − ∇f|, |∇f| entries ≤ 4, |B| entries ≤ 2
    if grad_bound > limit:
        raise cli.UsageError(
            f"argument --sigma: must be at most {(limit - 8.0) / 2.0:.3g} in {precision} "
            f"(the stochastic gradient 2σ + 8 overflows its squares beyond), got {_sigma_text(args.sigma)}"
        )
    growth = {"sgd": 1.0, "msgd": 1.0 / (1.0 - args.momentum), "adam": 1.0 / grad_bound}[args.optimizer]
    if args.lr * grad_bound * growth > limit:  # Adam's step is about η whatever the gradient
        raise cli.UsageError(
            f"argument --lr: η·(2σ + 8)·{'1/(1 − μ)' if args.optimizer == 'msgd' else '1'} must be at most "
            f"{limit:.3g} in {precision} (the first step leaves the float range beyond), got η = {args.lr:g}"
        )


# ---------------------------------------------------------------- float runs


class _RangeWatch:
    """The problem, unchanged, except that each oracle call notes when a run's X_t first
    leaves [−limit, limit] (:func:`range_limit`): such a run has diverged, a result.
    """

    def __init__(self, problem, limit, replicas):
        self._problem, self._limit = problem, limit
        self.left_at = np.full(replicas, -1)

    def __getattr__(self, name):
        return getattr(self._problem, name)

    def note(self, x, t):
        x = array_ops(x).asnumpy(x)  # a torch tensor (CUDA too) under --backend torch
        out = (np.abs(x) > self._limit).reshape(len(x), -1).any(axis=1) & (self.left_at < 0)
        self.left_at[out] = t

    def stochastic_grads(self, x, nodes, rng):
        self.note(x, rng.step)
        return self._problem.stochastic_grads(x, nodes, rng)


def run_float(args):
    """Both methods in floating point; returns (summary dict, per-step arrays).

    A run whose X_t leaves [−limit, limit] (:func:`range_limit`) is counted as diverged
    from that step on and not as locked; a method whose X_t becomes non-finite is
    reported stopped at that step (``"stopped"``), with no curves.
    """
    x0 = None if args.x0 is None else np.reshape(args.x0, (2, 2))
    with cli.usage_errors("--x0"):
        problem = Psi2x2(args.sigma, x0=x0, basis=args.basis, basis_seed=args.seed)
    summary = {
        "config": _config(args),
        "epsilon0": problem.epsilon0(0) * 2.0**-args.N,  # ε₀(N) = ε₀(0)·2^−N: 2^N overflows at N = 1024
        "lock_bound": 2.0**-args.N,
        "initial_grad_norm_sq": float(np.sum(problem.grad(problem.x0) ** 2)),
        "methods": {},
    }
    curves = {}
    limit = range_limit(args.precision)
    for method in METHODS:
        start = time.monotonic()
        watch = _RangeWatch(problem, limit, args.replicas)
        try:
            # Values past the limit are reported as diverged below; NumPy's overflow warnings
            # from them (ψ's unused x² branch, the lock test's norms) would say nothing more.
            with np.errstate(over="ignore"):
                trace, locked_t = simulate_lock(
                    watch,
                    method=method,
                    nodes=args.N,
                    rank=args.rank,
                    restart_period=args.tau,
                    optimizer=args.optimizer,
                    lr=args.lr,
                    momentum=args.momentum,
                    steps=args.steps,
                    replicas=args.replicas,
                    seed=args.seed,
                    dtype=args.precision,
                    degenerate_qr=args.degenerate_qr,
                    progress=None,
                )
        except Diverged as err:
            summary["methods"][method] = {
                "stopped": {"step": err.step, "nonfinite_replicas": len(err.replica_ids)},
                "seconds": round(time.monotonic() - start, 2),
            }
            continue
        watch.note(trace.x, args.steps)
        diverged = watch.left_at >= 0
        locked_t &= ~(diverged[:, None] & (np.arange(args.steps + 1) >= watch.left_at[:, None]))
        curve_mean, curve_half = mean_ci(trace.grad_norm_sq)
        curves[method] = {
            "mean": curve_mean,
            "half": curve_half,
            "locked": locked_t.mean(axis=0),
            "degenerate": np.append(trace.degenerate_per_step, 0),
        }
        summary["methods"][method] = {
            **lock_summary(trace, locked_t),
            "diverged_runs": int(diverged.sum()),
            "diverged_fraction": float(diverged.mean()),
            "first_diverged_step": int(watch.left_at[diverged].min()) if diverged.any() else None,
            "degenerate_qr_replica_steps": int(trace.degenerate_count.sum()),
            "degenerate_qr_replica_step_fraction": float(
                trace.degenerate_count.sum() / (args.replicas * args.steps)
            ),
            "seconds": round(time.monotonic() - start, 2),
        }
    summary["verdict"] = theorem1_verdict(args, problem, summary).to_dict()
    return summary, curves


def theorem1_verdict(args, problem, summary) -> Verdict:
    """Theorem 1 on this run (E||∇f(X_T)||² ≥ ε₀ for PowerSGD), drawn only where the run can decide.

    :func:`simsgd.verdict.decide` with PowerSGD+ as the control, the lock (probability 2^−N) as
    the event that carries E||∇f(X_T)||², and ||∇f||²'s float resolution at the problem's
    scale max(1, ||X_0||) (iterates far beyond it are the divergence rule's business; in the
    aligned basis ∇f does not even depend on the entries that grow); a run with a diverged or
    stopped method is inconclusive.
    """
    methods = summary["methods"]
    off = [m for m, s in methods.items() if "stopped" in s or s["diverged_runs"]]
    if off:
        return Verdict(
            "inconclusive",
            f"{' and '.join(off)} diverged (|X_t| passed {range_limit(args.precision):.3g} = √(float max)/16 "
            "or became non-finite)",
            "a smaller --lr",
        )
    interval = {m: Interval(s["mean_grad_norm_sq_T"], *s["ci95"], args.replicas) for m, s in methods.items()}
    scale = max(1.0, float(np.linalg.norm(problem.x0)))
    resolution = grad_norm_sq_resolution(problem.L, scale, args.precision)
    # ε₀ = ε₀(0)·2^−N and p = 2^−N: the largest N that rules 2 and 3 of simsgd.verdict allow.
    n_events = int(np.floor(np.log2(args.replicas / MIN_EVENTS))) if args.replicas >= MIN_EVENTS else 0
    eps0 = problem.epsilon0(0)
    n_resolved = None
    if eps0 > 0:
        n_resolved = int(np.floor(np.log2(eps0 / (RESOLUTION_FACTOR * resolution))))
        n_resolved -= eps0 * 2.0**-n_resolved < RESOLUTION_FACTOR * resolution  # log2's rounding at 2^k
    return decide(
        interval["powersgd"],
        ">=",
        summary["epsilon0"],
        control=interval["powersgd+"],
        margin=MARGIN,
        resolution=resolution,
        event_probability=summary["lock_bound"],
        names=Names(
            quantity="E||∇f(X_T)||²",
            threshold="ε₀",
            subject="PowerSGD",
            control="PowerSGD+",
            event="locked run",
            replicas="--replicas",
            remedy="more --steps or a larger --lr",
            event_remedy=f"--N ≤ {n_events} at this R",
            threshold_remedy="an --x0 with ε₀ > 0" if n_resolved is None else f"--N ≤ {n_resolved}",
        ),
    )


def _config(args):
    return {
        k: getattr(args, k)
        for k in (
            "sigma",
            "N",
            "steps",
            "replicas",
            "lr",
            "momentum",
            "optimizer",
            "tau",
            "rank",
            "x0",
            "basis",
            "precision",
            "degenerate_qr",
            "seed",
            "backend",
            "device",
        )
    }


def _table_float(summary) -> str:
    cfg = summary["config"]
    head = (
        f"Theorem 1 counterexample: σ = {_sigma_text(cfg['sigma'])}, N = {cfg['N']}, T = {cfg['steps']}, "
        f"R = {cfg['replicas']}, {cfg['optimizer']} η = {cfg['lr']:g}"
        + (f" μ = {cfg['momentum']:g}" if cfg["optimizer"] == "msgd" else "")
        + f", τ = {cfg['tau']}, basis = {cfg['basis']}, {cfg['precision']}, "
        f"degenerate QR: {cfg['degenerate_qr']}"
    )
    cols = (
        "method",
        "E||∇f(X_T)||² [95% CI]",
        "locked at T [95% CI]",
        "bound 2^-N",
        "ε₀",
        "degenerate QR replica-steps",
        "diverged",
    )
    rows = []
    for method, s in summary["methods"].items():
        if "stopped" in s:
            stop = s["stopped"]
            rows.append(
                (method, "stopped: X_t non-finite", "-")
                + ("-",) * 3
                + (f"{stop['nonfinite_replicas']}/{cfg['replicas']} at t = {stop['step']}",)
            )
            continue
        first = s["first_diverged_step"]
        rows.append(
            (
                method,
                f"{s['mean_grad_norm_sq_T']:.4g} [{s['ci95'][0]:.3g}, {s['ci95'][1]:.3g}]",
                f"{s['locked_fraction']:.4f} [{s['locked_ci95'][0]:.4f}, {s['locked_ci95'][1]:.4f}]",
                f"{summary['lock_bound']:.4f}",
                f"{summary['epsilon0']:.4g}",
                f"{s['degenerate_qr_replica_steps']} ({100 * s['degenerate_qr_replica_step_fraction']:.1f}% "
                "of R·T)",
                f"{s['diverged_fraction']:.4f}" + (f" from t = {first}" if first is not None else ""),
            )
        )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [head, line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
    p = summary["methods"]["powersgd"]
    if "stopped" not in p:
        out.append(f"PowerSGD locked at T: {p['locked_fraction']:.4f} vs 2^-N = {summary['lock_bound']:.4g}.")
    verdict = Verdict(**summary["verdict"])
    out.append(f"Verdict on Theorem 1 (E||∇f(X_T)||² ≥ ε₀ for PowerSGD) — {verdict.line()}")
    if not np.any(cfg["sigma"]):
        out.append(
            "σ = 0: on the lock event P_0 = σ·B·Q_{-1} = 0, so P̃_0 comes from the QR(0) convention "
            "(LAPACK's e₁, which is C only in the aligned basis), not from the proof's P̃_0 = C, "
            "which needs σ > 0."
        )
    if cfg["degenerate_qr"] == "native" and cfg["N"] % 2 == 0 and cfg["basis"] != "aligned":
        out.append(
            "QR(0) = e₁ (LAPACK) is not ∝ C in this basis: the lock breaks at the first step "
            "with Σξ = 0 (see README: which reading of Theorem 1 holds for even N)."
        )
    elif cfg["basis"] == "random":
        out.append(
            "Rounding tilts P̃ off C in a random basis: the lock breaks within a few steps; "
            "--basis aligned or paper keeps it (see README)."
        )
    return "\n".join(out)


def _write_float(args, summary, curves, stage):
    """Write the float run's CSV and figure into ``stage``; return their final paths under ``args.out``."""
    steps = np.arange(args.steps + 1)
    header, columns = ["t"], [steps]
    for method, c in curves.items():
        header += [
            f"{method}_mean_grad_norm_sq",
            f"{method}_ci95_low",
            f"{method}_ci95_high",
            f"{method}_locked_fraction",
            f"{method}_degenerate_qr_replicas",
        ]
        columns += [c["mean"], c["mean"] - c["half"], c["mean"] + c["half"], c["locked"], c["degenerate"]]
    rows = [
        [int(columns[0][t])]
        + [repr(float(col[t])) if col.dtype.kind == "f" else int(col[t]) for col in columns[1:]]
        for t in steps
    ]
    atomic_write_csv(os.path.join(stage, FILES[1]), header, rows)
    files = {"csv": os.path.join(args.out, FILES[1])}
    if not args.no_plot and curves:
        _plot(args, summary, curves, os.path.join(stage, FILES[0]))
        files["figure"] = os.path.join(args.out, FILES[0])
    return files


def _plot(args, summary, curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(args.steps + 1)
    floor = 1e-300
    # Two panels: PowerSGD's mean sits on ε₀, so the left panel draws ε₀ faintly underneath
    # and the right one shows what keeps it there, the locked fraction beside 2^(−N).
    fig, (ax, ax_lock) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    ax.axhline(
        summary["epsilon0"],
        color="0.75",
        linestyle="-",
        linewidth=4,
        zorder=1,
        label=rf"$\epsilon_0 = 4\psi'(D^\top X_0 D)^2/2^N$ = {summary['epsilon0']:.3g}",
    )
    for (method, c), colour in zip(curves.items(), ("tab:red", "tab:blue")):
        label = {"powersgd": "PowerSGD", "powersgd+": f"PowerSGD+ (τ = {args.tau})"}[method]
        ax.plot(t, np.maximum(c["mean"], floor), color=colour, linewidth=1.5, label=label, zorder=3)
        low = np.maximum(c["mean"] - c["half"], np.maximum(c["mean"], floor) * 1e-3)
        ax.fill_between(t, low, c["mean"] + c["half"], color=colour, alpha=0.25, linewidth=0, zorder=2)
        ax_lock.plot(t[1:], c["locked"][1:], color=colour, linewidth=1.2, label=label)  # t = 0: all locked
    ax_lock.axhline(summary["lock_bound"], color="0.6", linestyle="--", linewidth=1, label="$2^{-N}$")
    ax_lock.set_xlabel("step t")
    ax_lock.set_ylabel("fraction of runs locked")
    ax_lock.set_ylim(0, None)
    ax_lock.legend(fontsize=8, loc="upper right")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("E ||∇f(X_t)||²  (95% band)")
    fig.suptitle(
        f"ψ counterexample: σ = {_sigma_text(args.sigma)}, N = {args.N}, {args.basis} basis, "
        f"{args.precision}, "
        f"QR(0): {args.degenerate_qr}, R = {args.replicas}",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    try:
        return atomic_savefig(fig, path, dpi=120)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- exact runs


def run_exact_mode(args, conventions):
    """PowerSGD in rational arithmetic from ξ_0 ≡ 1, each of ``conventions``, R replicas.

    Calibrates first and refuses (:class:`simsgd.cli.UsageError`) a run estimated over
    ``--max-seconds`` unless ``--allow-partial``, which runs the replicas that fit
    (:mod:`simsgd.exact_batch`). Returns (summary, CSV rows, batch).
    """
    sigma = [repr(float(v)) for v in args.sigma] if np.ndim(args.sigma) else repr(args.sigma)

    def run_one(convention, k, seconds):
        return exact_mod.run_exact(
            sigma,
            args.N,
            args.steps,
            x0=args.x0,
            lr=repr(args.lr),
            momentum=repr(args.momentum),
            optimizer=args.optimizer,
            basis=args.basis,
            degenerate_qr=convention,
            seed=args.seed,
            replica=k,
            max_seconds=seconds,
        )

    done, plan = exact_batch.calibrate(run_one, conventions, args.replicas, args.steps)
    left = args.max_seconds - plan.calibration_seconds
    planned = args.replicas
    if plan.seconds * exact_batch.SAFETY > left:
        if not args.allow_partial:
            raise cli.UsageError(
                f"argument --max-seconds: the exact run needs {plan.describe()}; with a "
                f"{exact_batch.SAFETY - 1:.0%} margin for the estimate's error, more than --max-seconds "
                f"{args.max_seconds:g}; raise it, lower --replicas or --steps, or add --allow-partial "
                "to run the replicas that fit"
            )
        # At least one replica of every convention, each cut to its share of the budget.
        fit = exact_batch.replicas_that_fit(plan, conventions, args.replicas, left / exact_batch.SAFETY, done)
        planned = max(1, fit)
    batch = exact_batch.run_batch(run_one, conventions, args.replicas, left, done, plan, planned)
    summary = {
        "config": {**_config(args), "degenerate_qr": list(conventions), "allow_partial": args.allow_partial},
        "experiment": EXACT_EXPERIMENT,
        "estimate": {
            "seconds": plan.seconds,
            "seconds_per_run": plan.per_run,
            "calibration_runs": plan.calibration_runs,
            "calibration_seconds": round(plan.calibration_seconds, 3),
        },
        "planned_replicas": planned,
        "truncations": batch.truncations,
        "conventions": {},
    }
    rows = []
    for convention, results in batch.runs.items():
        runs = list(results.values())
        outcomes = [r.outcome for r in runs]
        summary["conventions"][convention] = {
            "held": outcomes.count("held"),
            "broken": outcomes.count("broken"),
            "undefined": outcomes.count("undefined"),
            "budget": outcomes.count("budget"),
            "not_run": args.replicas - len(runs),
            "first_break_steps": [r.broken_at for r in runs if r.broken_at is not None],
            "broken_invariants": sorted({r.broken_invariant for r in runs if r.broken_invariant}),
            "degenerate_steps": sum(len(r.degenerate_steps) for r in runs),
            "steps_checked": sum(r.steps_run for r in runs),
            "frozen_runs": sum(r.frozen_from is not None for r in runs),
            "target_grad_norm_sq": str(runs[0].target) if runs else "-",
        }
        rows += [
            [
                convention,
                k,
                r.outcome,
                r.steps_run,
                r.broken_invariant or "",
                "" if r.broken_at is None else r.broken_at,
                len(r.degenerate_steps),
                "" if r.frozen_from is None else r.frozen_from,
                r.max_bits,
                round(r.seconds, 3),
            ]
            for k, r in results.items()
        ]
    return summary, rows, batch


EXACT_EXPERIMENT = (
    "A different experiment from the float run: PowerSGD only (PowerSGD+'s SVD needs square roots), "
    "rank 1, in rational arithmetic, every run started on Claim 1's lock event ξ_0 ≡ 1 (forced; the "
    "float run meets it with probability 2^-N), checking Claim 1's invariants after every step; "
    f"defaults T = {EXACT_DEFAULTS['steps']}, R = {EXACT_DEFAULTS['replicas']} (float: "
    f"{FLOAT_DEFAULTS['steps']}, {FLOAT_DEFAULTS['replicas']})."
)
EXACT_COLUMNS = (
    "Columns count runs: held = every invariant held for all T steps; broken = one broke (first "
    "break at t, which invariant); undefined = P_t = 0 under 'raise' (0/0); budget = stopped by the "
    "time or size bound before T; not run = not started within --max-seconds; degenerate steps = "
    "steps with P_t = 0 / steps checked."
)


def _table_exact(summary) -> str:
    cfg = summary["config"]
    target = next(
        (
            s["target_grad_norm_sq"]
            for s in summary["conventions"].values()
            if s["target_grad_norm_sq"] != "-"
        ),
        "-",
    )
    out = [
        f"Claim 1 in exact arithmetic. {summary['experiment']}",
        f"σ = {_sigma_text(cfg['sigma'])}, N = {cfg['N']}, T = {cfg['steps']}, R = {cfg['replicas']}, "
        f"{cfg['optimizer']} η = {cfg['lr']:g}"
        + (f" μ = {cfg['momentum']:g}" if cfg["optimizer"] == "msgd" else "")
        + f", basis = {cfg['basis']}, QR(0): {', '.join(cfg['degenerate_qr'])}",
        f"invariants: P̃_t ∝ C, Q_t ∈ span(C), e_t ∈ span(A), m_t ∈ span(B), X_t − X_0 ∈ span(B), "
        f"||∇f(X_t)||² = 4ψ'(⟨A, X_0⟩)² = {target}",
    ]
    cols = (
        "degenerate QR",
        "held",
        "broken",
        "undefined",
        "budget",
        "not run",
        "first break at t",
        "degenerate steps",
        "broken invariant",
    )
    rows = []
    for conv, s in summary["conventions"].items():
        br = s["first_break_steps"]
        rows.append(
            (
                conv,
                str(s["held"]),
                str(s["broken"]),
                str(s["undefined"]),
                str(s["budget"]),
                str(s["not_run"]),
                f"{min(br)}–{max(br)}" if br else "-",
                f"{s['degenerate_steps']}/{s['steps_checked']}",
                ", ".join(s["broken_invariants"]) or "-",
            )
        )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out += [line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append(EXACT_COLUMNS)
    if "zero" in cfg["degenerate_qr"]:
        out.append("'zero' freezes X (Q = 0 from then on), so Theorem 1's conclusion holds trivially there.")
    return "\n".join(out)


# ---------------------------------------------------------------- main


class Truncated(RuntimeError):
    """An exact run cut short by its budget, without ``--allow-partial``."""


def main(argv=None) -> int:
    """The command line; see :func:`build_parser`. Run it through :func:`simsgd.cli.run`."""
    parser = build_parser()
    args = _check_args(parser.parse_args(argv))
    context = cli.engine(args)
    if args.out is not None:
        cli.check_out_dir(args.out, names=FILES)
    start = time.monotonic()
    if args.precision == "exact":
        given = "degenerate_qr" in cli.given_options(parser, argv)
        conventions = (args.degenerate_qr,) if given else exact_mod.EXACT_DEGENERATE_QR
        summary, rows, batch = run_exact_mode(args, conventions)
        table = _table_exact(summary)
    else:
        with context:
            summary, curves = run_float(args)
        table = _table_float(summary)
    summary["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if args.json else table)
    if args.precision == "exact" and batch.truncated:
        what = f"partial result: {batch.describe_truncation()}; estimated {batch.plan.describe()}"
        if not args.allow_partial:
            raise Truncated(f"{what}; nothing written (raise --max-seconds, or --allow-partial accepts it)")
        warnings.warn(what, stacklevel=1)
    if args.out is not None:
        with cli.output_set(args.out) as stage:
            if args.precision == "exact":
                atomic_write_csv(os.path.join(stage, FILES[1]), EXACT_CSV_HEADER, rows)
                files = {"csv": os.path.join(args.out, FILES[1])}
            else:
                files = _write_float(args, summary, curves, stage)
            files["json"] = os.path.join(args.out, FILES[2])
            summary["files"] = files
            atomic_write_json(os.path.join(stage, FILES[2]), summary)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="python -m simsgd.counterexample"))
