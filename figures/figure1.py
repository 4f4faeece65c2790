"""Figure 1: loss of PowerSGD and PowerSGD+ on the general counterexample, MSGD and Adam, in
the aligned basis (the paper's construction, exact zeros) and in a random rotation of it.

Setting (all fixed here, so the figure is reproducible): ``GeneralCounterexample`` with
m = n = 8, signal rank k = 2, σ = 5, basis "aligned" (top row) or "random" (basis seed 0,
bottom row); N = 4 nodes, compression rank r = k, τ = 10, seed 0. MSGD: μ = 0.9,
η = 1e-3 (inside Theorem 4's η ≤ (1−μ)/(2L) = 6.25e-3); Adam: η = 1e-2, β = (0.9, 0.999).
Full-precision averaging is drawn for reference; bands are 95% bootstrap intervals of the
mean over the R replicas. The mean alone would hide what happens per run, so each panel
also draws PowerSGD's per-run median and states the fraction of PowerSGD runs stuck at T
(||∇f(X_T)||² still equal to ||∇f(X_0)||², :func:`simsgd.lock.at_initial_grad`) with its
Wilson 95% interval.

Run alone: ``python -m figures.figure1 [--quick] [--steps T] [--replicas R] --out DIR`` (default
``out/figure1``); the committed figure is ``--out figures`` (or ``python -m figures``, which makes
every figure). Beside the figure it writes ``figure1_claims.json``, the claims ledger's record of
what the figure shows (:func:`claims`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import simsgd  # noqa: E402
from simsgd.cli import Parser, check_out_dir, integer, parse_with_quick  # noqa: E402
from simsgd.cli import run as run_cli  # noqa: E402
from simsgd.lock import at_initial_grad  # noqa: E402
from simsgd.output import atomic_savefig, atomic_write_csv, atomic_write_json, atomic_write_text  # noqa: E402
from simsgd.plotting import plot_mean_band  # noqa: E402
from simsgd.problems import GeneralCounterexample  # noqa: E402
from simsgd.stats import mean_band, wilson_interval  # noqa: E402

__all__ = ["Figure1Setting", "OPTIMIZERS", "METHODS", "BASES", "run", "make", "stuck_fraction", "claims"]

OPTIMIZERS = (("msgd", 1e-3), ("adam", 1e-2))
METHODS = (
    ("powersgd", "PowerSGD", "tab:red"),
    ("powersgd+", "PowerSGD+ (τ = 10)", "tab:blue"),
    ("full", "full precision", "0.4"),
)
BASES = ("aligned", "random")


@dataclass(frozen=True)
class Figure1Setting:
    m: int = 8
    n: int = 8
    signal_rank: int = 2
    noise_scale: float = 5.0
    nodes: int = 4
    restart_period: int = 10
    momentum: float = 0.9
    steps: int = 1200
    replicas: int = 200
    seed: int = 0


QUICK = Figure1Setting(steps=400, replicas=16)


def run(setting: Figure1Setting):
    """Simulate every (basis, optimizer, method): ``{(basis, optimizer, method): Trace}``."""
    traces = {}
    for basis in BASES:
        problem = GeneralCounterexample(
            setting.m, setting.n, setting.signal_rank, setting.noise_scale, basis=basis
        )
        for opt, lr in OPTIMIZERS:
            for method, _, _ in METHODS:
                traces[basis, opt, method] = simsgd.simulate(
                    problem,
                    method=method,
                    nodes=setting.nodes,
                    rank=setting.signal_rank,
                    restart_period=setting.restart_period,
                    optimizer=opt,
                    lr=lr,
                    momentum=setting.momentum,
                    steps=setting.steps,
                    replicas=setting.replicas,
                    seed=setting.seed,
                    progress=False,
                )
    return traces


def stuck_fraction(trace):
    """(stuck runs, R, Wilson 95% interval): runs whose ||∇f(X_T)||² still equals ||∇f(X_0)||²."""
    stuck = int(at_initial_grad(trace.grad_norm_sq)[:, -1].sum())
    return stuck, trace.replicas, wilson_interval(stuck, trace.replicas)


def claims(traces, setting: Figure1Setting) -> dict:
    """The ledger's record of Figure 1 ("Fig1"): does PowerSGD fail to converge on the general
    counterexample, and is that every run or the runs locked at t = 0?

    "holds in scope" when, in the aligned basis under both optimisers, PowerSGD's stuck fraction
    has a Wilson interval that contains the lock probability 2^−N and excludes 0 while PowerSGD+
    has no stuck run, and in the random rotation no PowerSGD run is stuck; "open" otherwise (e.g.
    too few replicas: R·2^−N < 10 expected locked runs).
    """
    lock = 2.0**-setting.nodes
    stuck = {(b, o): stuck_fraction(traces[b, o, "powersgd"]) for b in BASES for o, _ in OPTIMIZERS}
    plus = {o: stuck_fraction(traces["aligned", o, "powersgd+"])[0] for o, _ in OPTIMIZERS}
    aligned = [stuck["aligned", o] for o, _ in OPTIMIZERS]
    shown = (
        setting.replicas * lock >= 10
        and all(lo <= lock <= hi and k > 0 for k, _, (lo, hi) in aligned)
        and not any(plus.values())
        and all(stuck["random", o][0] == 0 for o, _ in OPTIMIZERS)
    )

    def frac(k, r, ci):
        return f"{k}/{r} [{ci[0]:.3f}, {ci[1]:.3f}]"

    text = "; ".join(f"{b} {o}: {frac(*stuck[b, o])}" for b in BASES for o, _ in OPTIMIZERS)
    final = {
        f"{b} {o} {m}": float(traces[b, o, m].loss[:, -1].mean())
        for b in BASES
        for o, _ in OPTIMIZERS
        for m, _, _ in METHODS
    }
    record = dict(
        verdict="holds in scope" if shown else "open",
        statement=(
            "PowerSGD's expected loss stalls in the aligned basis because a share of runs stays at f(X₀) "
            f"(stuck runs, Wilson 95%: {text}; the lock probability 2^−N = {lock:g}), while the rest "
            "converge; in a random rotation no run is stuck; PowerSGD+ has no stuck run"
        ),
        value=dict(lock_probability=lock, final_mean_loss=final),
        scope=dict(
            problem=f"GeneralCounterexample {setting.m}×{setting.n}, k = {setting.signal_rank}",
            sigma=setting.noise_scale,
            N=setting.nodes,
            r=setting.signal_rank,
            tau=setting.restart_period,
            optimizers="MSGD μ = 0.9 η = 1e-3; Adam η = 1e-2",
            T=setting.steps,
            R=setting.replicas,
            seed=setting.seed,
            precision="float64",
            qr0="previous",
        ),
        control=dict(
            input="a random rotation of the same problem",
            result=f"stuck PowerSGD runs: {frac(*stuck['random', 'msgd'])} (MSGD)",
        ),
    )
    return {"Fig1": record}


def _table(traces, setting) -> str:
    """Markdown: each curve's final mean loss with its 95% bootstrap band, and PowerSGD's stuck runs."""
    lines = [
        f"Mean f(X_T) − f* at T = {setting.steps} over R = {setting.replicas} runs [95% bootstrap band]; "
        "stuck: runs whose ||∇f(X_T)||² still equals ||∇f(X_0)||² [Wilson 95%].",
        "",
        "| basis | optimiser | " + " | ".join(label for _, label, _ in METHODS) + " | PowerSGD stuck |",
        "|---|---|" + "---|" * len(METHODS) + "---|",
    ]
    for basis in BASES:
        for opt, _ in OPTIMIZERS:
            cells = []
            for method, _, _ in METHODS:
                mean, lower, upper = mean_band(traces[basis, opt, method].loss[:, -1:])
                cells.append(f"{mean[0]:.3g} [{lower[0]:.2g}, {upper[0]:.2g}]")
            k, r, (lo, hi) = stuck_fraction(traces[basis, opt, "powersgd"])
            lines.append(f"| {basis} | {opt} | " + " | ".join(cells) + f" | {k}/{r} [{lo:.3f}, {hi:.3f}] |")
    return "\n".join(lines) + "\n"


def make(out_dir, setting: Figure1Setting = Figure1Setting()):
    """Run, then write ``figure1.png``, ``figure1.csv``, ``figure1_claims.json`` and ``figure1_table.md``
    into ``out_dir``; return the paths.
    """
    traces = run(setting)
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), sharey=True, sharex=True, constrained_layout=True)
    rows = []
    for row_axes, basis in zip(axes, BASES):
        lock = float(traces[basis, OPTIMIZERS[0][0], "full"].loss[0, 0]) / 2.0**setting.nodes
        for ax, (opt, lr) in zip(row_axes, OPTIMIZERS):
            for method, label, color in METHODS:
                loss = traces[basis, opt, method].loss
                plot_mean_band(ax, loss, f"{label}: mean", color)
                mean, lower, upper = mean_band(loss)
                rows += [
                    (basis, opt, method, t, float(mean[t]), float(lower[t]), float(upper[t]), loss.shape[0])
                    for t in range(mean.size)
                ]
            ours = traces[basis, opt, "powersgd"]
            median = np.maximum(np.median(ours.loss, axis=0), 1e-300)
            ax.plot(median, color="tab:red", lw=1.0, ls="--", label="PowerSGD: per-run median")
            stuck, total, (lo, hi) = stuck_fraction(ours)
            ax.text(
                0.98,
                0.03,
                f"PowerSGD runs stuck at f(X$_0$) at T:\n{stuck}/{total} [{lo:.2f}, {hi:.2f}] (Wilson 95%)",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7.5,
                bbox=dict(facecolor="white", alpha=0.8, lw=0),
            )
            ax.axhline(
                lock,
                color="tab:red",
                lw=0.8,
                ls=":",
                label="2$^{-N}$ f(X$_0$): runs locked at t = 0",
            )
            name = "MSGD (μ = 0.9)" if opt == "msgd" else "Adam"
            ax.set(title=f"{basis} basis — {name}, η = {lr:g}", yscale="log", ylim=(1e-20, 30))
            ax.grid(True, which="major", alpha=0.3)
        row_axes[0].set_ylabel("f(X$_t$) − f*")
    for ax in axes[-1]:
        ax.set_xlabel("iteration t")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.suptitle(
        f"General counterexample {setting.m}×{setting.n}, signal rank {setting.signal_rank}, "
        f"σ = {setting.noise_scale:g}, N = {setting.nodes}, r = {setting.signal_rank}, "
        f"R = {setting.replicas} runs per curve.\n"
        "Top: aligned basis (exact zeros keep the lock). Bottom: a random rotation of the same problem.\n"
        "The mean's stall is the runs stuck at f(X$_0$) (counts in each panel), not every run.",
        fontsize=9,
    )
    png, csv = out_dir / "figure1.png", out_dir / "figure1.csv"
    atomic_savefig(fig, png, dpi=150, metadata={"Software": None})
    plt.close(fig)
    atomic_write_csv(
        csv, ("basis", "optimizer", "method", "t", "mean_loss", "lower95", "upper95", "replicas"), rows
    )
    record, table = out_dir / "figure1_claims.json", out_dir / "figure1_table.md"
    atomic_write_json(record, {"claims": claims(traces, setting)})
    atomic_write_text(table, _table(traces, setting))
    return [png, csv, record, table]


def main(argv=None) -> int:
    parser = Parser(prog="python -m figures.figure1", description="Figure 1 alone.")
    parser.add_argument("--quick", action="store_true", help="T = 400, R = 16 unless given")
    parser.add_argument("--steps", type=integer("--steps", 1, 10**6), default=Figure1Setting.steps, help="T")
    parser.add_argument(
        "--replicas", type=integer("--replicas", 1, 10**5), default=Figure1Setting.replicas, help="R"
    )
    parser.add_argument("--out", default="out/figure1", help="output folder (default out/figure1)")
    args = parse_with_quick(parser, argv, dict(steps=QUICK.steps, replicas=QUICK.replicas))
    out = Path(check_out_dir(args.out))
    for path in make(out, Figure1Setting(steps=args.steps, replicas=args.replicas)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="python -m figures.figure1"))
