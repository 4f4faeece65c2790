"""The LM comparison's figure: validation loss against steps and floats, and the TOST intervals."""

import math

import numpy as np

from ..output import atomic_savefig
from .lm_analysis import label, tost_results

__all__ = ["plot"]

COLORS = {"all-reduce": "black", "PowerSGD": "tab:blue", "PowerSGD+": "tab:red", "GaLore-style": "tab:orange"}


def _color(method, tau, taus, plt):
    if method == "PowerSGD+" and len(taus) > 1:  # a lighter red for the longer period
        return plt.get_cmap("Reds")(0.9 - 0.4 * taus.index(tau) / (len(taus) - 1))
    return COLORS[method]


def plot(curves, margin, path):
    """Write the figure to ``path`` (PNG).

    Parameters
    ----------
    curves : dict
        As :func:`simsgd.examples.lm_analysis.curves_from_rows`.
    margin : float
        The equivalence margin, drawn as a band in the third panel.
    path : str
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ranks = sorted({rank for _, rank, _ in curves if rank})
    taus = sorted({tau for method, _, tau in curves if method == "PowerSGD+"})
    styles = ["-", "--", ":", "-."]
    fig, (by_step, by_floats, forest) = plt.subplots(
        1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1, 1, 0.8]}
    )
    low, high = math.inf, -math.inf
    for (method, rank, tau), runs in curves.items():
        runs = list(runs.values())
        steps = np.array([p[0] for p in runs[0]])
        losses = np.array([[p[1] for p in curve] for curve in runs])
        floats = np.mean([[p[2] for p in curve] for curve in runs], axis=0)
        mean = losses.mean(axis=0)
        later = steps >= steps[1] if len(steps) > 1 else steps >= 0  # the y range leaves out step 0
        low, high = min(low, losses[:, later].min()), max(high, losses[:, later].max())
        style = styles[ranks.index(rank) % len(styles)] if rank else "-"
        color = _color(method, tau, taus, plt)
        for ax, x in ((by_step, steps), (by_floats, floats)):
            keep = x > 0 if ax is by_floats else np.ones(len(x), bool)  # log axis: no 0
            ax.plot(x[keep], mean[keep], style, color=color, lw=1.4, label=label(method, rank, tau))
            if len(runs) > 1:
                band = (losses.min(axis=0)[keep], losses.max(axis=0)[keep])
                ax.fill_between(x[keep], *band, color=color, alpha=0.12, lw=0)
    pad = 0.05 * (high - low)
    by_step.set(xlabel="step", ylabel="validation loss (nats/byte)", title="held-out loss against steps")
    by_floats.set(
        xlabel="floats sent per node (cumulative, log scale)",
        xscale="log",
        ylabel="validation loss (nats/byte)",
        title="held-out loss against communication",
    )
    by_floats.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    by_floats.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    by_floats.xaxis.set_minor_formatter(NullFormatter())
    for ax in (by_step, by_floats):
        ax.set_ylim(low - pad, high + pad)
        ax.grid(alpha=0.3)
    by_floats.legend(fontsize=7, ncol=2)
    _forest(forest, curves, margin, taus, plt)
    fig.suptitle(
        "mean over seeds; bands: min–max over seeds; y axis from the second evaluation on", fontsize=9
    )
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def _forest(ax, curves, margin, taus, plt):
    """Paired final-loss differences with their TOST intervals and the ±margin band."""
    results = [r for r in tost_results(curves, margin) if r[2] is not None]
    ax.axvspan(-margin, margin, color="tab:green", alpha=0.15, lw=0)
    ax.axvline(0, color="grey", lw=0.8)
    for row, (key, _name, result, _) in enumerate(results):
        color = _color(key[0], key[2], taus, plt)
        ax.errorbar(
            result.mean, row, xerr=[[result.mean - result.lower], [result.upper - result.mean]],
            fmt="o", color=color, capsize=3,
        )  # fmt: skip
        ax.annotate(result.verdict, (result.upper, row), xytext=(4, 0), textcoords="offset points",
                    fontsize=7, va="center")  # fmt: skip
    ax.set_yticks(range(len(results)), [f"{label(*key)} − {name}" for key, name, _, _ in results], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="final loss difference (nats/byte)", title=f"TOST intervals; green: the margin ±{margin:g}")
    ax.grid(alpha=0.3, axis="x")
