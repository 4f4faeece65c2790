"""Floating point against Theorem 1's lock: how many steps until a run started in the lock
(ξ_0 ≡ 1) leaves it, and by which mechanism.

Grid: N ∈ {1, 2, 3, 4, 5, 8}, σ ∈ {1, 5, 25, 125}, bases paper / aligned / random, QR
"core" (``orthogonalization="householder"``: rank 1 in closed form, P̃ = P/β, equal entries
stay equal) and "lapack" (``np.linalg.qr``), and two QR(0) conventions: "previous" (the
default, applied where P is degenerate relative to its inputs) and "native" (LAPACK's
answer is used even on a degenerate P, i.e. a P of rounding noise at a balanced step).
PowerSGD + MSGD μ = 0.9, η = 5e-4, float64.

Per run two escape times: ``span``, the first t with X_t − X_0 ∉ span(B)
(:func:`simsgd.lock.locked_mask`'s test), and ``grad``, the first t with
| ||∇f(X_t)||² − 16 | > 10⁻³. Per cell the mechanism is read off: ``after_balanced`` is the
fraction of escapes whose step s follows the run's first balanced step t* (Σ_i ξ_t^{(i)} = 0,
possible for even N only) by at most 2 (s ≤ t* + 2: the leak of a rounding-noise P), and
the growth of the median escape with σ is the instability of the lock (odd N).

Run: ``python -m counterexamples.escape [--quick] --out DIR`` (default ``out/escape``);
the committed table is ``--out counterexamples/escape``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from simsgd._checks import check_memory
from simsgd.cli import Parser, check_out_dir, integer, output_set, parse_with_quick, run, usage_errors
from simsgd.engine import memory_estimate
from simsgd.lock import escape_steps, simulate_lock
from simsgd.output import atomic_savefig, atomic_write_json, atomic_write_text
from simsgd.problems import Psi2x2
from simsgd.streams import NodeStreams

from .._study import study_record

SIGMAS = (1, 5, 25, 125)
NODES = (1, 2, 3, 4, 5, 8)
BASES = ("paper", "aligned", "random")
QRS = ("core", "lapack")
CONVENTIONS = ("previous", "native")
LR = 5e-4


def _quartiles(steps):
    hit = steps[steps >= 0]
    return None if hit.size == 0 else [float(v) for v in np.percentile(hit, [25, 50, 75])]


def first_balanced_step(nodes, steps, replicas, seed=0):
    """(R,) first t with Σ_i ξ_t^{(i)} = 0 (ξ_0 ≡ 1 forced), −1 if none: the engine's own draws."""
    streams = NodeStreams(seed, np.arange(replicas), np.arange(nodes))
    sums = np.stack([streams.at(t).rademacher().sum(1) for t in range(steps)], axis=1)
    sums[:, 0] = nodes
    balanced = sums == 0
    return np.where(balanced.any(1), balanced.argmax(1), -1)


def measure(basis, qr, convention, sigma, nodes, steps, replicas, balanced):
    problem = Psi2x2(sigma, basis=basis, lock_start=True)
    trace, locked = simulate_lock(
        problem,
        method="powersgd",
        nodes=nodes,
        optimizer="msgd",
        lr=LR,
        momentum=0.9,
        steps=steps,
        replicas=replicas,
        seed=0,
        orthogonalization="householder" if qr == "core" else "lapack",
        degenerate_qr=convention,
        progress=False,
    )
    span = escape_steps(locked)
    grad = escape_steps(np.abs(trace.grad_norm_sq - 16.0) <= 1e-3)
    escaped = span >= 0
    leak = escaped & (balanced >= 0) & (span > balanced) & (span <= balanced + 2)
    return {
        "basis": basis,
        "qr": qr,
        "degenerate_qr": convention,
        "sigma": sigma,
        "nodes": nodes,
        "escaped_span": float(escaped.mean()),
        "span_quartiles": _quartiles(span),
        "escaped_grad": float((grad >= 0).mean()),
        "grad_quartiles": _quartiles(grad),
        "after_balanced": float(leak.sum() / max(escaped.sum(), 1)),
        "flagged_fraction": float(trace.degenerate_count.sum() / (replicas * steps)),
        "flagged_own_scale_fraction": float(trace.degenerate_own_scale.sum() / (replicas * steps)),
    }


def build_parser():
    p = Parser(prog="python -m counterexamples.escape", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join("out", "escape"), help="output folder (default out/escape)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="defaults T = 100, R = 20 (a few seconds); --steps/--replicas win",
    )
    p.add_argument(
        "--steps", type=integer("--steps", 1), default=400, help="T ≥ 1 (default 400; 100 with --quick)"
    )
    p.add_argument(
        "--replicas", type=integer("--replicas", 1), default=100, help="R ≥ 1 (default 100; 20 with --quick)"
    )
    return p


QUICK = {"steps": 100, "replicas": 20}


def main(argv=None) -> int:
    args = parse_with_quick(build_parser(), argv, QUICK)
    steps, replicas = args.steps, args.replicas
    with usage_errors():  # the largest run of the grid (N = 8), before any is started
        check_memory(
            f"--steps {steps} --replicas {replicas}",
            memory_estimate(replicas, steps, max(NODES), (2, 2)),
            "fewer --replicas or --steps",
        )
    out = check_out_dir(args.out, names=("escape_study.json", "escape_table.md", "escape_steps.png"))
    start = time.monotonic()
    rows = []
    for nodes in NODES:
        balanced = first_balanced_step(nodes, steps, replicas)
        for basis in BASES:
            for qr in QRS:
                for convention in CONVENTIONS:
                    for sigma in SIGMAS:
                        rows.append(measure(basis, qr, convention, sigma, nodes, steps, replicas, balanced))
    table = _table(rows, steps, replicas)
    print(table)
    summary = {
        **study_record("counterexamples.escape", argv, start),
        "steps": steps,
        "replicas": replicas,
        "lr": LR,
        "seed": 0,
        "rows": rows,
    }
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "escape_study.json"), summary)
        atomic_write_text(os.path.join(stage, "escape_table.md"), table + "\n")
        _plot(rows, os.path.join(stage, "escape_steps.png"))
    return 0


def _fmt(q):
    return "never" if q is None else f"{q[1]:g} [{q[0]:g}–{q[2]:g}]"


def _table(rows, steps, replicas):
    head = (
        f"PowerSGD + MSGD (μ = 0.9, η = {LR:g}), ξ_0 ≡ 1 forced, float64, T = {steps}, R = {replicas}, "
        "seed 0. "
        "Median [IQR] step at which X leaves span(B); 'after balanced' = share of escapes within 2 steps "
        "after the run's first balanced step (Σξ = 0); 'flagged' = share of steps whose P was degenerate "
        "relative to its inputs (own-scale reading in brackets)."
    )
    lines = [
        head,
        "",
        "| basis | QR | QR(0) | N | σ = 1 | σ = 5 | σ = 25 | σ = 125 | after balanced | flagged (own) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    key = lambda r: (r["basis"], r["qr"], r["degenerate_qr"], r["nodes"])  # noqa: E731
    cells = {}
    for r in rows:
        cells.setdefault(key(r), []).append(r)
    for (basis, qr, conv, nodes), cell in cells.items():
        by_sigma = {r["sigma"]: r for r in cell}
        after = np.mean([r["after_balanced"] for r in cell])
        flagged = np.mean([r["flagged_fraction"] for r in cell])
        own = np.mean([r["flagged_own_scale_fraction"] for r in cell])
        lines.append(
            f"| {basis} | {qr} | {conv} | {nodes} | "
            + " | ".join(_fmt(by_sigma[s]["span_quartiles"]) for s in SIGMAS)
            + f" | {after:.2f} | {flagged:.3f} ({own:.3f}) |"
        )
    return "\n".join(lines)


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    panels = (
        ("random", "core", "previous", "random basis, QR(0) = previous"),
        ("random", "core", "native", "random basis, QR(0) = native (the leak)"),
        ("paper", "lapack", "native", "paper basis, LAPACK QR, native"),
    )
    for ax, (basis, qr, conv, title) in zip(axes, panels):
        for nodes in NODES:
            sel = [
                r
                for r in rows
                if (r["basis"], r["qr"], r["degenerate_qr"], r["nodes"]) == (basis, qr, conv, nodes)
                and r["span_quartiles"] is not None
            ]
            if not sel:
                ax.plot([], [], label=f"N = {nodes}: never")
                continue
            sig = [r["sigma"] for r in sel]
            q = np.array([r["span_quartiles"] for r in sel])
            ax.errorbar(
                sig,
                q[:, 1],
                yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]],
                marker="o",
                capsize=3,
                label=f"N = {nodes}",
                linestyle="--" if nodes % 2 == 0 else "-",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("σ")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("step at which X leaves span(B) (median, IQR)")
    fig.suptitle(
        "Escape from Theorem 1's lock in float64: odd N (solid) grows with σ (instability); "
        "even N (dashed) under 'native' leaves at the first balanced step",
        fontsize=10,
    )
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m counterexamples.escape"))
