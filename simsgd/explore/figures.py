"""The explorer's figures, drawn with matplotlib's object API (no pyplot, no global state, so a
background thread may draw them): :func:`curves_figure` for a :class:`~simsgd.explore.model.View`,
:func:`map_figure` for a :class:`~simsgd.explore.model.SweepMap`, and :func:`png` to send either.
"""

from __future__ import annotations

import io

import numpy as np

from .. import registry
from ..plotting import plot_mean_band

__all__ = ["color", "curves_figure", "map_figure", "png"]

_FLOOR = 1e-300  # plot_mean_band's: a log axis shows exact zeros there


def color(method: str) -> str:
    """A method's colour, the same in every figure (tab10 by its place in the registry)."""
    names = registry.names()
    index = names.index(method) if method in names else len(names)
    return f"C{index % 10}"


def _settings_line(s) -> str:
    sigma = ", ".join(f"{v:g}" for v in np.ravel(s.sigma))
    return (
        f"τ = {s.tau}, r = {s.rank}, N = {s.nodes}, σ = {sigma}, MSGD η = {s.lr:.3g}, μ = {s.momentum:g}, "
        f"T = {s.steps}, R = {s.replicas}, seed {s.seed}, restart {s.restart} ({s.rule})"
    )


def curves_figure(view):
    """Three panels: E||∇f(X_t)||² with its 95% band per method beside ε₀ and Theorem 4's bound;
    E||∇f||² against the floats one node has sent; the locked fraction at T with its Wilson
    interval beside 2^−N.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4.6))  # fixed margins: a constrained layout costs as much as the rest
    fig.subplots_adjust(left=0.065, right=0.99, bottom=0.17, top=0.87, wspace=0.3)
    ax_grad, ax_floats, ax_lock = fig.subplots(1, 3, width_ratios=[1.5, 1.1, 0.8])
    _grad_panel(ax_grad, view)
    for method, c in view.curves.items():
        mean = np.maximum(c.trace.grad_norm_sq.mean(axis=0), _FLOOR)
        ax_floats.plot(c.floats[1:], mean[1:], color=color(method), lw=1.6, label=method)
    ax_floats.set(
        xscale="log",
        yscale="log",
        xlabel="floats one node has sent",
        ylabel="E‖∇f(X_t)‖²  (mean)",
        title="accuracy against communication",
    )
    ax_floats.legend(fontsize=7.5, loc="lower left")
    for axis in (ax_grad.yaxis, ax_floats.xaxis, ax_floats.yaxis):
        _plain_log_ticks(axis)
    _lock_panel(ax_lock, view)
    fig.suptitle(f"{view.label}: {_settings_line(view.settings)}", fontsize=10)
    return fig


def _plain_log_ticks(axis):
    """Decades only, labelled as text (1e-05) rather than mathtext: a third of the figure's cost."""
    from matplotlib.ticker import LogFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(numticks=8))
    axis.set_major_formatter(LogFormatter(labelOnlyBase=True))
    axis.set_minor_locator(NullLocator())


def _grad_panel(ax, view):
    ax.set_yscale("log")
    for method, c in view.curves.items():
        label = f"{method}: {c.floats_per_step:.4g} floats/step"
        plot_mean_band(ax, c.trace.grad_norm_sq, label, color(method))
    theory, check = view.theory, view.theory.theorem4
    if theory.epsilon0 is not None:
        ax.axhline(
            theory.epsilon0, color="k", ls=":", lw=1.2, label=f"ε₀ = {theory.epsilon0:.3g} (Theorem 1)"
        )
    if check is not None:
        m = check.measured
        ax.errorbar(
            [view.settings.steps],
            [m.mean],
            yerr=[[m.mean - max(m.lower, _FLOOR)], [m.upper - m.mean]],
            fmt="D",
            color=color("powersgd+"),
            ms=5,
            capsize=3,
            label=f"PowerSGD+ (1/T)Σ_t E‖∇f(X_t)‖², Theorem 4: {check.status}",
        )
        bottom, top = ax.get_ylim()  # the data's range: a far larger bound would flatten every curve
        text = f"Theorem 4's bound on ◆{' (vacuous)' if check.vacuous else ''}: {check.bound:.3g}"
        if check.bound <= 10 * top:
            ax.axhline(check.bound, color=color("powersgd+"), ls="--", lw=1.2, label=text)
        else:
            ax.text(
                0.99, 0.98, f"↑ {text}, above this axis", transform=ax.transAxes,
                ha="right", va="top", fontsize=7.5, color=color("powersgd+"),
            )  # fmt: skip
            ax.set_ylim(bottom, top)
    ax.set(xlabel="iteration t", ylabel="E‖∇f(X_t)‖²  (mean, 95% band)", title="gradient norm")
    ax.legend(fontsize=7.5, loc="lower left")


def _lock_panel(ax, view):
    methods = list(view.curves)
    if view.theory.lock_probability is None:
        ax.text(0.5, 0.5, "no lock on this problem\n(Theorem 1's ψ problems only)", ha="center", va="center")
        ax.set(xticks=[], yticks=[], title="runs locked at T")
        return
    p = view.theory.lock_probability
    ax.axhline(p, color="k", ls=":", lw=1.2, label=f"$2^{{-N}}$ = {p:.3g} (Theorem 1's lock event)")
    top = 2.0 * p
    for i, method in enumerate(methods):
        c = view.curves[method]
        frac = c.locked / c.trace.replicas
        low, high = c.locked_interval
        ax.errorbar([i], [frac], yerr=[[frac - low], [high - frac]], fmt="o", color=color(method), capsize=4)
        ax.annotate(
            f"{c.locked}/{c.trace.replicas}", (i, frac), xytext=(6, 3), textcoords="offset points", fontsize=8
        )
        top = max(top, high)
    ax.set(
        xticks=range(len(methods)),
        xlim=(-0.5, len(methods) - 0.5),
        ylim=(0.0, min(1.0, 1.15 * top)),
        ylabel="fraction of runs locked at T (Wilson 95%)",
        title="runs locked at T",
    )
    ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=7.5, loc="upper right")


def map_figure(smap):
    """Two heat maps over τ (columns) × r (rows): final E||∇f(X_T)||² (log colour) and floats per step.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 1.6 + 0.55 * len(smap.ranks) + 1.4), layout="constrained")
    axes = fig.subplots(1, 2)
    final = np.maximum(smap.final, _FLOOR)
    panels = (
        (
            axes[0],
            final,
            LogNorm(final.min(), max(final.max(), final.min() * 1.0001)),
            "final E‖∇f(X_T)‖²",
            "viridis",
        ),
        (axes[1], smap.floats, None, "floats one node sends per step (mean)", "cividis"),
    )
    for ax, values, norm, title, cmap in panels:
        image = ax.imshow(values, norm=norm, cmap=cmap, aspect="auto", origin="lower")
        ax.set_xticks(range(len(smap.taus)), [str(t) for t in smap.taus])
        ax.set_yticks(range(len(smap.ranks)), [str(r) for r in smap.ranks])
        ax.set(xlabel="restart period τ", ylabel="rank r", title=title)
        fig.colorbar(image, ax=ax, label=title)
        for (i, j), v in np.ndenumerate(values):
            shade = image.norm(v)
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8, color="w" if shade < 0.6 else "k")
    s = smap.settings
    sigma = ", ".join(f"{v:g}" for v in np.ravel(s.sigma))
    fig.suptitle(
        f"{smap.method} on {smap.label}: N = {s.nodes}, σ = {sigma}, η = {s.lr:.3g}, μ = {s.momentum:g}, "
        f"T = {s.steps}, R = {s.replicas}, seed {s.seed} (periodic restarts)",
        fontsize=10,
    )
    return fig


def png(fig, dpi: int = 90) -> bytes:
    """``fig`` as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()
