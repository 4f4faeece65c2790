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
import math
import os
import sys
import time

import numpy as np

from . import exact as exact_mod
from ._checks import check_int, check_real
from .lock import lock_summary, simulate_lock
from .output import atomic_savefig, atomic_write_csv, atomic_write_json
from .problems import Psi2x2
from .problems.psi import MAX_NOISE_SCALE
from .stats import mean_ci

__all__ = ["main", "build_parser", "METHODS"]

METHODS = ("powersgd", "powersgd+")
FLOAT_DEFAULTS = {"steps": 1000, "replicas": 1000}
EXACT_DEFAULTS = {"steps": 200, "replicas": 8}
MAX_NODES = 1024


# ---------------------------------------------------------------- arguments


def _typed(kind, name, low=None, high=None, low_open=False, high_open=False):
    def parse(text):
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            rng = f"[{low}, {high if high is not None else '∞'}]"
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a real number'} in {rng}, got {text!r}"
            ) from None
        try:
            if kind is int:
                return check_int(name, value, low, high)
            if high is None:
                return check_real(name, value, low, math.inf, low_open, high_open=True)
            return check_real(name, value, low, high, low_open, high_open)
        except ValueError as err:
            raise argparse.ArgumentTypeError("must " + str(err).split(" must ", 1)[1]) from None

    return parse


def _sigma_list(text):
    """σ, or σ_1,…,σ_N (each in [0, 1e150]): a float, or a list of floats."""
    parse = _typed(float, "--sigma", 0.0, MAX_NOISE_SCALE)
    values = [parse(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


def _sigma_text(sigma) -> str:
    return ",".join(f"{s:g}" for s in np.ravel(sigma))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m simsgd.counterexample``."""
    p = _Parser(
        prog="python -m simsgd.counterexample",
        description="Theorem 1 (Appendix A): PowerSGD does not converge on f_i(X) = ψ(Dᵀ X D), "
        "∇F(X; ξ) = ∇f(X) + ξ(σB − ∇f(X)), ξ = ±1. Runs PowerSGD and PowerSGD+ side by "
        "side and compares E||∇f(X_T)||² and the fraction of locked runs with the "
        "proof's bounds ε₀ and 2^(−N).",
    )
    p.add_argument(
        "--sigma",
        type=_sigma_list,
        default=5.0,
        help="noise scale σ ≥ 0 of eq. (10b) (default 5), or N comma-separated per-node σ_i "
        "(e.g. 5,10: no signed sum Σ±σ_i vanishes, so no step is degenerate)",
    )
    p.add_argument(
        "--N",
        type=_typed(int, "--N", 1, MAX_NODES),
        default=4,
        help=f"number of nodes N in [1, {MAX_NODES}] (default 4); each draws ξ_t^(i) = ±1",
    )
    p.add_argument(
        "--steps",
        type=_typed(int, "--steps", 1),
        default=None,
        help=f"iterations T ≥ 1 (default {FLOAT_DEFAULTS['steps']}, "
        f"{EXACT_DEFAULTS['steps']} with --precision exact)",
    )
    p.add_argument(
        "--replicas",
        type=_typed(int, "--replicas", 1),
        default=None,
        help=f"independent runs R ≥ 1 for the Monte Carlo averages (default "
        f"{FLOAT_DEFAULTS['replicas']}, {EXACT_DEFAULTS['replicas']} with --precision exact)",
    )
    p.add_argument(
        "--lr",
        type=_typed(float, "--lr", 0.0, low_open=True),
        default=5e-4,
        help="step size η > 0 (default 5e-4; Theorem 4 needs η ≤ (1 − μ)/(2L), L = 8)",
    )
    p.add_argument(
        "--momentum",
        type=_typed(float, "--momentum", 0.0, 1.0, high_open=True),
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
        type=_typed(int, "--tau", 1),
        default=10,
        help="PowerSGD+ restart period τ ≥ 1: SVD-COMP when t mod τ = 0 (default 10)",
    )
    p.add_argument(
        "--rank",
        type=_typed(int, "--rank", 1, 2),
        default=1,
        help="compression rank r in [1, 2] (default 1; r = 2 sends the whole 2×2 matrix)",
    )
    p.add_argument(
        "--x0",
        type=float,
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
        help="what QR(P_t) does when P_t = 0 (float runs; exact runs try all four): keep "
        "P̃_{t-1} (default), LAPACK's unit vector, P̃ = 0 (PyTorch with ε > 0), or stop "
        "(PyTorch with ε = 0 divides 0 by 0)",
    )
    p.add_argument(
        "--seed", type=_typed(int, "--seed", 0), default=0, help="seed ≥ 0 of ξ, Q_{-1} and the random basis"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write counterexample.png, counterexample_steps.csv, counterexample.json here",
    )
    p.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
    p.add_argument("--no-plot", action="store_true", help="with --out, skip the figure")
    return p


def _check_args(parser, args):
    if args.x0 is not None and not all(math.isfinite(v) for v in args.x0):
        parser.error("argument --x0: must be four finite real numbers")
    if np.ndim(args.sigma) and len(args.sigma) != args.N:
        parser.error(f"argument --sigma: must be one value or --N = {args.N} comma-separated values")
    if args.precision == "exact":
        if args.basis == "random":
            parser.error(
                "argument --basis: must be 'paper' or 'aligned' with --precision exact "
                "(a random rotation is irrational)"
            )
        if args.rank != 1:
            parser.error("argument --rank: must be 1 with --precision exact")
    defaults = EXACT_DEFAULTS if args.precision == "exact" else FLOAT_DEFAULTS
    args.steps = defaults["steps"] if args.steps is None else args.steps
    args.replicas = defaults["replicas"] if args.replicas is None else args.replicas
    return args


# ---------------------------------------------------------------- float runs


def run_float(args):
    """Both methods in floating point; returns (summary dict, per-step arrays)."""
    x0 = None if args.x0 is None else np.reshape(args.x0, (2, 2))
    problem = Psi2x2(args.sigma, x0=x0, basis=args.basis, basis_seed=args.seed)
    summary = {
        "config": _config(args),
        "epsilon0": problem.epsilon0(args.N),
        "lock_bound": 2.0**-args.N,
        "initial_grad_norm_sq": float(np.sum(problem.grad(problem.x0) ** 2)),
        "methods": {},
    }
    curves = {}
    for method in METHODS:
        start = time.monotonic()
        trace, locked_t = simulate_lock(
            problem,
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
            progress=False,
        )
        curve_mean, curve_half = mean_ci(trace.grad_norm_sq)
        curves[method] = {
            "mean": curve_mean,
            "half": curve_half,
            "locked": locked_t.mean(axis=0),
            "degenerate": np.append(trace.degenerate_per_step, 0),
        }
        summary["methods"][method] = {
            **lock_summary(trace, locked_t),
            "degenerate_qr_steps": int(trace.degenerate_qr.sum()),
            "degenerate_qr_fraction": float(trace.degenerate_qr.sum() / (args.replicas * args.steps)),
            "seconds": round(time.monotonic() - start, 2),
        }
    return summary, curves


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
    cols = ("method", "E||∇f(X_T)||² [95% CI]", "locked at T [95% CI]", "bound 2^-N", "ε₀", "degenerate QR")
    rows = []
    for method, s in summary["methods"].items():
        rows.append(
            (
                method,
                f"{s['mean_grad_norm_sq_T']:.4g} [{s['ci95'][0]:.3g}, {s['ci95'][1]:.3g}]",
                f"{s['locked_fraction']:.4f} [{s['locked_ci95'][0]:.4f}, {s['locked_ci95'][1]:.4f}]",
                f"{summary['lock_bound']:.4f}",
                f"{summary['epsilon0']:.4g}",
                f"{s['degenerate_qr_steps']} ({100 * s['degenerate_qr_fraction']:.1f}% of steps)",
            )
        )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [head, line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
    p = summary["methods"]["powersgd"]
    verdict = "holds" if p["ci95"][1] >= summary["epsilon0"] else "fails"
    out.append(
        f"PowerSGD: E||∇f(X_T)||² ≥ ε₀ {verdict} within the 95% CI here; "
        f"locked fraction {p['locked_fraction']:.4f} vs 2^-N = {summary['lock_bound']:.4f}."
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


def _write_float(args, summary, curves):
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
    files = {"csv": atomic_write_csv(os.path.join(args.out, "counterexample_steps.csv"), header, rows)}
    if not args.no_plot:
        files["figure"] = _plot(args, summary, curves, os.path.join(args.out, "counterexample.png"))
    return files


def _plot(args, summary, curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(args.steps + 1)
    floor = 1e-300
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (method, c), colour in zip(curves.items(), ("tab:red", "tab:blue")):
        label = {"powersgd": "PowerSGD", "powersgd+": f"PowerSGD+ (τ = {args.tau})"}[method]
        ax.plot(t, np.maximum(c["mean"], floor), color=colour, label=label)
        low = np.maximum(c["mean"] - c["half"], np.maximum(c["mean"], floor) * 1e-3)
        ax.fill_between(t, low, c["mean"] + c["half"], color=colour, alpha=0.25, linewidth=0)
    ax.axhline(
        summary["epsilon0"],
        color="k",
        linestyle="--",
        linewidth=1,
        label=rf"$\epsilon_0 = 4\psi'(D^\top X_0 D)^2/2^N$ = {summary['epsilon0']:.3g}",
    )
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("E ||∇f(X_t)||²  (95% band)")
    ax.set_title(
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


def run_exact_mode(args):
    """PowerSGD in rational arithmetic from ξ_0 ≡ 1, every QR convention, R replicas."""
    summary = {"config": _config(args), "conventions": {}}
    x0 = args.x0
    rows = []
    for convention in exact_mod.EXACT_DEGENERATE_QR:
        runs = [
            exact_mod.run_exact(
                [repr(float(v)) for v in args.sigma] if np.ndim(args.sigma) else repr(args.sigma),
                args.N,
                args.steps,
                x0=x0,
                lr=repr(args.lr),
                momentum=repr(args.momentum),
                optimizer=args.optimizer,
                basis=args.basis,
                degenerate_qr=convention,
                seed=args.seed,
                replica=k,
                max_seconds=5.0,
            )
            for k in range(args.replicas)
        ]
        outcomes = [r.outcome for r in runs]
        breaks = [r.broken_at for r in runs if r.broken_at is not None]
        summary["conventions"][convention] = {
            "held": outcomes.count("held"),
            "broken": outcomes.count("broken"),
            "undefined": outcomes.count("undefined"),
            "budget": outcomes.count("budget"),
            "first_break_steps": breaks,
            "broken_invariants": sorted({r.broken_invariant for r in runs if r.broken_invariant}),
            "degenerate_steps": sum(len(r.degenerate_steps) for r in runs),
            "steps_checked": sum(r.steps_run for r in runs),
            "frozen_runs": sum(r.frozen_from is not None for r in runs),
            "target_grad_norm_sq": str(runs[0].target),
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
            for k, r in enumerate(runs)
        ]
    return summary, rows


def _table_exact(summary) -> str:
    cfg = summary["config"]
    out = [
        f"Claim 1 in exact arithmetic: PowerSGD, ξ_0 ≡ 1 forced, σ = {_sigma_text(cfg['sigma'])}, "
        f"N = {cfg['N']}, T = {cfg['steps']}, R = {cfg['replicas']}, {cfg['optimizer']}, "
        f"basis = {cfg['basis']}",
        "invariants: P̃_t ∝ C, Q_t ∈ span(C), e_t ∈ span(A), m_t ∈ span(B), X_t − X_0 ∈ span(B), "
        "||∇f(X_t)||² = 4ψ'(⟨A, X_0⟩)² = "
        + next(iter(summary["conventions"].values()))["target_grad_norm_sq"],
    ]
    cols = (
        "degenerate QR",
        "held",
        "broken",
        "undefined",
        "budget",
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
                f"{min(br)}–{max(br)}" if br else "-",
                f"{s['degenerate_steps']}/{s['steps_checked']}",
                ", ".join(s["broken_invariants"]) or "-",
            )
        )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out += [line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append(
        "PowerSGD+ is not run exactly: its SVD step needs square roots. 'zero' freezes X "
        "(Q = 0 from then on), so Theorem 1's conclusion holds trivially there."
    )
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = build_parser()
    args = _check_args(parser, parser.parse_args(argv))
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"argument --out: must be a folder, got the file {args.out!r}")
    start = time.monotonic()
    try:
        if args.precision == "exact":
            summary, rows = run_exact_mode(args)
            table = _table_exact(summary)
        else:
            summary, curves = run_float(args)
            table = _table_float(summary)
    except ValueError as err:  # e.g. an x0 the problem rejects
        parser.error(str(err).splitlines()[0])
    summary["seconds"] = round(time.monotonic() - start, 2)
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
        if args.precision == "exact":
            files = {
                "csv": atomic_write_csv(
                    os.path.join(args.out, "counterexample_steps.csv"),
                    [
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
                    ],
                    rows,
                )
            }
        else:
            files = _write_float(args, summary, curves)
        files["json"] = os.path.join(args.out, "counterexample.json")
        summary["files"] = files
        atomic_write_json(files["json"], summary)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if args.json else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
