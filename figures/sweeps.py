"""τ × r sweeps of PowerSGD+ against GaLore, PowerSGD, multi-step power iteration and
full precision: a Pareto plot, τ × r heat maps and a floats-per-step table.

"Final E||∇f||²" is the mean of ||∇f(X_t)||² over the R replicas and the last 10% of the
T steps. τ = ∞ is run as ``restart_period = T`` (one SVD step, at t = 0). The floats of
Table 2 come from :func:`simsgd.algorithm.mean_floats_per_step` (``formula="table2"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, LogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

import simsgd  # noqa: E402
from simsgd.algorithm import mean_floats_per_step  # noqa: E402
from simsgd.output import atomic_write_csv, atomic_write_text  # noqa: E402
from simsgd.plotting import save_figure  # noqa: E402
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic  # noqa: E402

__all__ = ["TAUS", "RANKS", "SweepSetting", "PROBLEMS", "run_sweep", "make"]

TAUS = (1, 2, 5, 10, 20, 50, 100, None)  # None: τ = ∞
RANKS = (1, 2, 4, 8)
POWER_STEPS = (2, 4)
NODES, MOMENTUM, SEED = 4, 0.9, 0

STYLE = {
    "powersgd+": ("PowerSGD+", "tab:blue", "o"),
    "galore": ("GaLore", "tab:green", "s"),
    "powersgd": ("PowerSGD", "tab:red", "v"),
    "power-iteration": ("power iteration", "tab:orange", "^"),
    "full": ("full precision", "0.3", "*"),
}


@dataclass(frozen=True)
class SweepSetting:
    steps: int = 400
    replicas: int = 32
    seed: int = SEED


QUICK = SweepSetting(steps=40, replicas=4)

# name -> (title, problem factory, MSGD step size η)
PROBLEMS = {
    "general": (
        "general counterexample 12×10, k = 4, σ = 5 (aligned)",
        lambda: GeneralCounterexample(12, 10, signal_rank=4, noise_scale=5.0, basis="aligned"),
        5e-4,
    ),
    "quadratic": (
        "heterogeneous quadratic 16×12, N = 4",
        lambda: HeterogeneousQuadratic(
            16, 12, nodes=NODES, heterogeneity=0.5, noise=0.1, lowrank_noise=1.0, noise_rank=2, seed=0
        ),
        2e-3,
    ),
}


def _runs():
    """(method, τ, r, K) of every run of one problem's sweep (τ = None: ∞)."""
    yield "full", "", 1, 1  # "": τ does not apply
    for r in RANKS:
        yield "powersgd", "", r, 1
        for k in POWER_STEPS:
            yield "power-iteration", "", r, k
        for method in ("powersgd+", "galore"):
            for tau in TAUS:
                yield method, tau, r, 1


def run_sweep(name, setting: SweepSetting):
    """Every run of problem ``name``: a list of dicts (one per run)."""
    _, factory, lr = PROBLEMS[name]
    problem = factory()
    m, n = problem.shape
    tail = max(1, setting.steps // 10)
    rows = []
    for method, tau, r, k in _runs():
        trace = simsgd.simulate(
            problem,
            method=method,
            nodes=NODES,
            rank=r,
            restart_period=tau or setting.steps,
            optimizer="msgd",
            lr=lr,
            momentum=MOMENTUM,
            steps=setting.steps,
            replicas=setting.replicas,
            seed=setting.seed,
            progress=False,
            power_steps=k,
        )
        rows.append(
            dict(
                problem=name,
                method=method,
                tau="inf" if tau is None else tau,
                rank=r,
                power_steps=k,
                final_grad_norm_sq=float(trace.grad_norm_sq[:, -tail:].mean()),
                floats_per_step=float(trace.floats_sent.mean()),
                table2_floats=mean_floats_per_step(
                    method, m, n, r, tau or None, power_steps=k, formula="table2"
                ),
            )
        )
    return rows


def _pareto_front(x, y):
    order = np.lexsort((y, x))
    front, best = [], np.inf
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return front


def _tau_label(tau):
    return "∞" if tau == "inf" else str(tau)


def _label_front(ax, sub, x, y, front, gap=(0.12, 0.05)):
    """Label points of the Pareto front with τ and r, skipping any whose label would overlap
    one already placed (closer than ``gap`` in both x and y, as fractions of the log axes).
    """
    (x0, x1), (y0, y1) = np.log10([x.min(), x.max()]), np.log10([y.min(), y.max()])
    placed = []
    for i in front:
        at = np.array(
            [(np.log10(x[i]) - x0) / max(x1 - x0, 1e-12), (np.log10(y[i]) - y0) / max(y1 - y0, 1e-12)]
        )
        if any(np.all(np.abs(at - p) < gap) for p in placed):
            continue
        placed.append(at)
        r = sub[i]
        text = f"τ={_tau_label(r['tau'])} r={r['rank']}" if r["tau"] != "" else f"r={r['rank']}"
        text = "full" if r["method"] == "full" else text
        ax.annotate(text, (x[i], y[i]), xytext=(3, 3), textcoords="offset points", fontsize=5.5)


def _plot_pareto(rows, path):
    """Final E||∇f||² against floats per step; colour is τ (PowerSGD+, GaLore), size is r,
    and the points of the Pareto front are labelled with τ and r where there is room.
    """
    tau_labels = [_tau_label("inf" if t is None else t) for t in TAUS]
    cmap = plt.get_cmap("viridis", len(TAUS))
    norm = BoundaryNorm(np.arange(len(TAUS) + 1) - 0.5, len(TAUS))
    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(11, 4.6), constrained_layout=True)
    for ax, name in zip(axes, PROBLEMS):
        sub = [r for r in rows if r["problem"] == name]
        x = np.array([r["floats_per_step"] for r in sub])
        y = np.array([r["final_grad_norm_sq"] for r in sub])
        front = _pareto_front(x, y)
        ax.step(x[front], y[front], where="post", color="k", lw=0.8, alpha=0.6, label="Pareto front")
        for method, (label, color, marker) in STYLE.items():
            pick = [i for i, r in enumerate(sub) if r["method"] == method]
            sizes = [12 + 10 * sub[i]["rank"] for i in pick]
            if method in ("powersgd+", "galore"):  # colour by τ
                index = [tau_labels.index(_tau_label(sub[i]["tau"])) for i in pick]
                style = dict(c=index, cmap=cmap, norm=norm, edgecolors="k", linewidths=0.3)
            else:
                style = dict(c=color, edgecolors="none")
            ax.scatter(x[pick], y[pick], s=sizes, marker=marker, alpha=0.8, label=label, **style)
        _label_front(ax, sub, x, y, front)
        ax.set(xscale="log", yscale="log", title=PROBLEMS[name][0], xlabel="floats sent per node per step")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.title.set_fontsize(9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("final E‖∇f(X)‖²  (last 10% of steps)")
    handles = [Line2D([], [], color="k", lw=0.8, alpha=0.6, label="Pareto front (labelled: τ, r)")] + [
        Line2D(
            [],
            [],
            ls="",
            marker=marker,
            ms=6,
            mfc="0.6" if m in ("powersgd+", "galore") else color,
            mec="k" if m in ("powersgd+", "galore") else "none",
            mew=0.3,
            label=label,
        )
        for m, (label, color, marker) in STYLE.items()
    ]
    axes[0].legend(
        handles=handles, fontsize=7, loc="lower left", title="marker size ∝ rank r", title_fontsize=7
    )
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, ticks=range(len(TAUS)))
    bar.set_ticklabels(tau_labels)
    bar.set_label("restart period τ (PowerSGD+ ○, GaLore □)")
    save_figure(fig, path, dpi=150)


def _plot_heatmaps(rows, path):
    methods = ("powersgd+", "galore")
    fig, axes = plt.subplots(len(PROBLEMS), 2, figsize=(10, 6.4), constrained_layout=True)
    tau_labels = [str(t) if t is not None else "∞" for t in TAUS]
    for row_axes, name in zip(axes, PROBLEMS):
        grids = {}
        for method in methods:
            grid = np.empty((len(RANKS), len(TAUS)))
            for r in rows:
                if r["problem"] == name and r["method"] == method:
                    tau = None if r["tau"] == "inf" else r["tau"]
                    grid[RANKS.index(r["rank"]), TAUS.index(tau)] = r["final_grad_norm_sq"]
            grids[method] = grid
        values = np.concatenate([g.ravel() for g in grids.values()])
        positive = values[values > 0]
        norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-12), vmax=positive.max())
        for ax, method in zip(row_axes, methods):
            image = ax.imshow(
                np.maximum(grids[method], norm.vmin), norm=norm, cmap="viridis", aspect="auto", origin="lower"
            )
            for i in range(len(RANKS)):
                for j in range(len(TAUS)):
                    v = grids[method][i, j]
                    ax.text(
                        j,
                        i,
                        f"{v:.1e}" if v >= 1e-3 or v == 0 else f"{v:.0e}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="w" if np.maximum(v, norm.vmin) < np.sqrt(norm.vmin * norm.vmax) else "k",
                    )
            ax.set(
                xticks=range(len(TAUS)),
                xticklabels=tau_labels,
                yticks=range(len(RANKS)),
                yticklabels=RANKS,
                xlabel="restart period τ (steps)",
                ylabel="rank r",
                title=f"{STYLE[method][0]} — {PROBLEMS[name][0]}",
            )
            ax.title.set_fontsize(8.5)
        fig.colorbar(image, ax=row_axes, label="final E‖∇f‖²")
    save_figure(fig, path, dpi=150)


def _floats_table(rows, name, rank):
    title, factory, _ = PROBLEMS[name]
    m, n = factory().shape
    lines = [
        f"Floats per node per step on the {title} (m = {m}, n = {n}, r = {rank}), measured as the "
        "mean of `Trace.floats_sent` over T steps, against Table 2's formula.",
        "",
        "| method | τ | K | measured | Table 2 | measured − Table 2 |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        if r["problem"] == name and (r["rank"] == rank or r["method"] == "full"):
            diff, tau = r["floats_per_step"] - r["table2_floats"], _tau_label(r["tau"]) or "–"
            lines.append(
                f"| {STYLE[r['method']][0]} | {tau} | {r['power_steps']} | "
                f"{r['floats_per_step']:.2f} | {r['table2_floats']:.2f} | {diff:+.2f} |"
            )
    return "\n".join(lines) + "\n"


def make(out_dir, setting: SweepSetting = SweepSetting()):
    """Run both sweeps; write ``sweep.csv``, ``pareto.png``, ``heatmap_tau_rank.png`` and
    ``floats_table.md`` into ``out_dir``; return the paths.
    """
    rows = [row for name in PROBLEMS for row in run_sweep(name, setting)]
    paths = [out_dir / f for f in ("sweep.csv", "pareto.png", "heatmap_tau_rank.png", "floats_table.md")]
    header = tuple(rows[0])
    atomic_write_csv(paths[0], header, ([row[h] for h in header] for row in rows))
    _plot_pareto(rows, paths[1])
    _plot_heatmaps(rows, paths[2])
    note = (
        f"\nT = {setting.steps} steps. PowerSGD+ sends (m+n)r on SSP steps and mn + nr on SVD steps, so its "
        "mean is (m+n)r + (mn − mr)/τ: Table 2 counts mr more per restart. With τ = ∞ one SVD step "
        "(t = 0) still costs mn/T per step, which Table 2's mn/τ = 0 leaves out; when τ does not divide "
        "T, ⌈T/τ⌉ restarts happen, not T/τ. Full precision (mn) and K-step power iteration (K(m+n)r) are "
        "not in Table 2; their formula column is the count written beside them.\n"
    )
    atomic_write_text(paths[3], _floats_table(rows, "general", 4) + note)
    return paths
