"""Figure 1: loss of PowerSGD and PowerSGD+ on the general counterexample, MSGD and Adam.

Setting (all fixed here, so the figure is reproducible): ``GeneralCounterexample`` with
m = n = 8, signal rank k = 2, σ = 5, aligned basis; N = 4 nodes, compression rank r = k,
τ = 10, seed 0. MSGD: μ = 0.9, η = 1e-3 (inside Theorem 4's η ≤ (1−μ)/(2L) = 6.25e-3);
Adam: η = 1e-2, β = (0.9, 0.999). Full-precision averaging is drawn for reference; bands are 95% bootstrap
intervals of the mean over the R replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import simsgd  # noqa: E402
from simsgd.output import atomic_savefig, atomic_write_csv  # noqa: E402
from simsgd.plotting import plot_mean_band  # noqa: E402
from simsgd.problems import GeneralCounterexample  # noqa: E402
from simsgd.stats import mean_band  # noqa: E402

__all__ = ["Figure1Setting", "OPTIMIZERS", "METHODS", "run", "make"]

OPTIMIZERS = (("msgd", 1e-3), ("adam", 1e-2))
METHODS = (
    ("powersgd", "PowerSGD", "tab:red"),
    ("powersgd+", "PowerSGD+ (τ = 10)", "tab:blue"),
    ("full", "full precision", "0.4"),
)


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
    """Simulate every (optimizer, method) pair: ``{(optimizer, method): Trace}``."""
    problem = GeneralCounterexample(
        setting.m, setting.n, setting.signal_rank, setting.noise_scale, basis="aligned"
    )
    return {
        (opt, method): simsgd.simulate(
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
        for opt, lr in OPTIMIZERS
        for method, _, _ in METHODS
    }


def make(out_dir, setting: Figure1Setting = Figure1Setting()):
    """Run, then write ``figure1.png`` and ``figure1.csv`` into ``out_dir``; return the paths."""
    traces = run(setting)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True, constrained_layout=True)
    rows = []
    lock = float(traces[OPTIMIZERS[0][0], "full"].loss[0, 0]) / 2.0**setting.nodes
    for ax, (opt, lr) in zip(axes, OPTIMIZERS):
        for method, label, color in METHODS:
            loss = traces[opt, method].loss
            plot_mean_band(ax, loss, label, color)
            mean, lower, upper = mean_band(loss)
            rows += [
                (opt, method, t, float(mean[t]), float(lower[t]), float(upper[t]), loss.shape[0])
                for t in range(mean.size)
            ]
        ax.axhline(
            lock,
            color="tab:red",
            lw=0.8,
            ls=":",
            label="2$^{-N}$ f(X$_0$): runs locked at t = 0" if opt == "msgd" else None,
        )
        name = "MSGD (μ = 0.9)" if opt == "msgd" else "Adam"
        ax.set(title=f"{name}, η = {lr:g}", xlabel="iteration t", yscale="log", ylim=(1e-20, 30))
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("E f(X$_t$) − f*  (mean of R runs)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(
        f"General counterexample: {setting.m}×{setting.n}, signal rank {setting.signal_rank}, "
        f"σ = {setting.noise_scale:g}, N = {setting.nodes}, r = {setting.signal_rank}, "
        f"R = {setting.replicas}",
        fontsize=10,
    )
    png, csv = out_dir / "figure1.png", out_dir / "figure1.csv"
    atomic_savefig(fig, png, dpi=150, metadata={"Software": None})
    plt.close(fig)
    atomic_write_csv(csv, ("optimizer", "method", "t", "mean_loss", "lower95", "upper95", "replicas"), rows)
    return [png, csv]
