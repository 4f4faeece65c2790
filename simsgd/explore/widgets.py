"""The explorer as ipywidgets: :class:`App`, two tabs over one :class:`~simsgd.explore.model.Explorer`.

*Curves*: controls for the problem, τ, r, N, σ (or σ_i per node), η, μ, T, R, the seed, the
methods, the restart compressor and rule; a change redraws the figure in place (E||∇f(X_t)||²
with its band, against floats sent, the locked fraction) and the text beside it (the theory).
*τ × r map*: :func:`simsgd.sweep` over a list of τ and of r at the other settings, drawn as two
heat maps, with a button per cell that loads the cell's curves in the first tab.

Computations run in one background thread (:mod:`simsgd.explore.jobs`) with a progress bar and
a Stop button; :meth:`App.wait` blocks until they are done (for scripts and tests). Importing
this module needs ipywidgets (the ``notebooks`` extra).
"""

from __future__ import annotations

import contextlib
import html
import time
from dataclasses import dataclass

import ipywidgets as w
import numpy as np

from .. import registry
from ..compressors import RESTART_KINDS
from ..trace import Diverged
from . import figures
from .jobs import Jobs
from .model import Explorer, Stopped
from .overlay import TABLE_HEADER, statements, summary, table
from .settings import CUSTOM, PROBLEMS, RULES, Settings, parse_numbers

__all__ = ["App", "Timing", "TAUS"]

TAUS = (1, 2, 5, 10, 20, 50, 100)
"""The map's default restart periods."""

_STEPS = (50, 100, 200, 300, 500, 1000, 2000, 3000, 5000)
_REPLICAS = (8, 16, 32, 64, 128, 256, 512, 1024)
_WIDE = {"description_width": "140px"}


@dataclass(frozen=True)
class Timing:
    """One finished update of the curves tab, timed on the clock (seconds).

    Attributes
    ----------
    total : float
        From the request to the new figure in the widget.
    runs : int
        Runs made (the others came from the cache).
    compute : float
        In :meth:`Explorer.view` (the runs, the lock test, the theory).
    figure : float
        Drawing and encoding the figure.
    """

    total: float
    runs: int
    compute: float
    figure: float


def _theory_html(view) -> str:
    """The numbers beside the figure: :func:`~simsgd.explore.overlay.table` and the theory's lines."""
    cell = "<td style='padding: 1px 14px 1px 0'>{}</td>"
    head = "".join(
        f"<th style='text-align: left; padding-right: 14px'>{html.escape(h)}</th>" for h in TABLE_HEADER
    )
    rows = "".join(
        "<tr>" + "".join(cell.format(html.escape(c)) for c in row) + "</tr>" for row in table(view)
    )
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in statements(view))
    return (
        f"<div style='font-size: 13px'><table><tr>{head}</tr>{rows}</table>"
        f"<ul style='margin: 6px 0; padding-left: 18px'>{lines}</ul></div>"
    )


def _choices(values, value):
    return tuple(sorted({*values, value}))


class App:
    """The explorer's widgets (see the module); ``App(...)`` displays itself in a notebook.

    Parameters
    ----------
    problem : problem object, optional
        A problem of your own, added to the problem selector (and selected).
    settings : Settings, optional
        Where the controls start.
    cache_dir : path, optional
        Keep the map's cells on disk there (:func:`simsgd.sweep`).

    Attributes
    ----------
    explorer : Explorer
    view : View or None
        What the curves tab shows; ``figure`` the matplotlib figure drawn from it.
    map : SweepMap or None
        What the map tab shows; ``map_figure`` its figure.
    timings : list of Timing
        One per finished update of the curves tab.
    widget : ipywidgets.VBox
        The whole app.
    """

    def __init__(self, problem=None, settings: Settings | None = None, cache_dir=None):
        self.explorer = Explorer(problem, cache_dir=cache_dir)
        if settings is None:
            settings = Settings(problem=CUSTOM if problem is not None else "psi-aligned")
        self.jobs = Jobs()
        self.view = self.figure = self.map = self.map_figure = None
        self.timings: list[Timing] = []
        self._holding, self._dirty, self._shown = 0, False, 0.0
        self._build(settings)
        self.update()
        self.wait()

    # ---- layout

    def _build(self, s: Settings) -> None:
        problems = [(label, key) for key, label in PROBLEMS.items()]
        if self.explorer.custom is not None:
            problems.append((self.explorer.label(Settings(problem=CUSTOM)), CUSTOM))
        sigma_list = ", ".join(f"{v:g}" for v in s.sigma) if np.ndim(s.sigma) else ""
        controls = {
            "problem": w.Dropdown(options=problems, value=s.problem, description="problem"),
            "tau": w.IntSlider(s.tau, min=1, max=max(200, s.tau), description="τ (restart period)"),
            "rank": w.IntSlider(s.rank, min=1, max=self.explorer.max_rank(s.problem), description="r (rank)"),
            "nodes": w.IntSlider(s.nodes, min=1, max=max(16, s.nodes), description="N (nodes)"),
            "sigma": w.FloatSlider(
                5.0 if np.ndim(s.sigma) else s.sigma, min=0.0, max=20.0, step=0.5, description="σ (noise)"
            ),
            "sigma_nodes": w.Text(sigma_list, description="σ_i per node", placeholder="e.g. 5, 10 (sets N)"),
            "lr": w.FloatLogSlider(s.lr, base=10, min=-5, max=-1, step=0.05, description="η (step size)"),
            "momentum": w.FloatSlider(s.momentum, min=0.0, max=0.99, step=0.01, description="μ (momentum)"),
            "steps": w.SelectionSlider(
                options=_choices(_STEPS, s.steps), value=s.steps, description="T (steps)"
            ),
            "replicas": w.SelectionSlider(
                options=_choices(_REPLICAS, s.replicas), value=s.replicas, description="R (replicas)"
            ),
            "seed": w.BoundedIntText(s.seed, min=0, max=2**63 - 1, description="seed"),
            "restart": w.Dropdown(options=tuple(RESTART_KINDS), value=s.restart, description="restart kind"),
            "rule": w.Dropdown(
                options=[(label, key) for key, label in RULES.items()],
                value=s.rule,
                description="restart rule",
            ),
        }
        controls["lr"].readout_format = ".2e"
        for name, control in controls.items():
            control.style = _WIDE
            control.layout = w.Layout(width="390px")
            control.add_class(f"simsgd-{name}")
            if isinstance(control, (w.IntSlider, w.FloatSlider, w.FloatLogSlider, w.SelectionSlider)):
                control.continuous_update = False
        self.controls = controls
        self.methods = {
            name: w.Checkbox(
                name in s.methods, description=name, indent=False, layout=w.Layout(width="125px")
            )
            for name in registry.names()
        }
        for name, box in self.methods.items():
            box.add_class(f"simsgd-method-{name}")
        for name, control in (*controls.items(), *self.methods.items()):
            if name not in ("problem", "sigma_nodes"):  # these two have their own observers, below
                control.observe(self._changed, names="value")
        controls["problem"].observe(self._problem_changed, names="value")
        controls["sigma_nodes"].observe(self._sigma_nodes_changed, names="value")
        controls["sigma"].disabled = controls["sigma_nodes"].disabled = s.problem == CUSTOM

        self.progress = w.FloatProgress(
            0.0, min=0.0, max=1.0, description="progress", layout=w.Layout(width="420px")
        )
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop")
        self.stop_button.on_click(lambda _: self.stop())
        self.status = w.HTML(layout=w.Layout(margin="0 0 0 12px"))
        self.stop_button.add_class("simsgd-stop")
        self.status.add_class("simsgd-status")
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="1260px"))
        self.image.add_class("simsgd-figure")
        self.theory = w.HTML()
        self.theory.add_class("simsgd-theory")
        method_grid = w.GridBox(
            list(self.methods.values()), layout=w.Layout(grid_template_columns="repeat(3, 125px)")
        )
        panel = w.VBox(
            [*controls.values(), w.HTML("<b>methods</b>"), method_grid], layout=w.Layout(width="400px")
        )
        curves_tab = w.HBox([panel, w.VBox([self.image, self.theory], layout=w.Layout(flex="1"))])

        self.map_method = w.Dropdown(options=registry.names(), value="powersgd+", description="method")
        self.map_taus = w.Text(", ".join(map(str, TAUS)), description="τ values")
        self.map_ranks = w.Text(self._default_ranks(s.problem), description="r values")
        self.map_run = w.Button(description="Run the τ × r map", button_style="primary", icon="play")
        self.map_run.on_click(lambda _: self.run_map())
        self.map_run.add_class("simsgd-map-run")
        self.map_image = w.Image(format="png", layout=w.Layout(width="100%", max_width="1200px"))
        self.map_image.add_class("simsgd-map")
        self.map_cells = w.GridBox([])
        self.map_note = w.HTML(
            "Sweeps τ × r with <code>simsgd.sweep</code> at the other settings of the first tab (periodic "
            "restarts; each cell cached by its settings and seed). Click a cell below the maps to load its "
            "curves in the first tab."
        )
        map_controls = w.HBox([self.map_method, self.map_taus, self.map_ranks, self.map_run])
        map_tab = w.VBox([self.map_note, map_controls, self.map_image, self.map_cells])

        self.tabs = w.Tab([curves_tab, map_tab])
        self.tabs.set_title(0, "curves")
        self.tabs.set_title(1, "τ × r map")
        header = w.HBox([self.progress, self.stop_button, self.status], layout=w.Layout(align_items="center"))
        self.widget = w.VBox([header, self.tabs])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _default_ranks(self, problem: str) -> str:
        return ", ".join(str(r) for r in range(1, min(4, self.explorer.max_rank(problem)) + 1))

    # ---- settings and requests

    def settings(self) -> Settings:
        """The settings the controls show (not yet checked)."""
        c = self.controls
        listed = c["sigma_nodes"].value.strip()
        return Settings(
            problem=c["problem"].value,
            tau=c["tau"].value,
            rank=c["rank"].value,
            nodes=c["nodes"].value,
            sigma=parse_numbers(listed, "σ_i per node") if listed else c["sigma"].value,
            lr=c["lr"].value,
            momentum=c["momentum"].value,
            steps=c["steps"].value,
            replicas=c["replicas"].value,
            seed=c["seed"].value,
            methods=tuple(name for name, box in self.methods.items() if box.value),
            restart=c["restart"].value,
            rule=c["rule"].value,
        )

    @contextlib.contextmanager
    def hold(self):
        """Set several controls with one update at the end (instead of one per control)."""
        self._holding += 1
        try:
            yield self
        finally:
            self._holding -= 1
            if not self._holding and self._dirty:
                self._dirty = False
                self.update()

    def _changed(self, change) -> None:
        if self._holding:
            self._dirty = True
        else:
            self.update()

    def _problem_changed(self, change) -> None:
        """The rank's range follows the problem's shape (σ does not apply to a problem of your own)."""
        with self.hold():
            self._dirty = True
            problem = change["new"]
            self.controls["sigma"].disabled = self.controls["sigma_nodes"].disabled = problem == CUSTOM
            top = self.explorer.max_rank(problem)
            self.controls["rank"].value = min(self.controls["rank"].value, top)
            self.controls["rank"].max = top
            self.map_ranks.value = self._default_ranks(problem)

    def _sigma_nodes_changed(self, change) -> None:
        """A list of σ_i sets N to its length."""
        with self.hold():
            self._dirty = True
            try:
                listed = parse_numbers(change["new"], "σ_i per node")
            except ValueError:
                return  # the update at the end of hold() says what is wrong
            if listed:
                nodes = self.controls["nodes"]
                nodes.max = max(nodes.max, len(listed))
                nodes.value = len(listed)

    def update(self) -> None:
        """Recompute the curves tab at the controls' settings (in the background: see :meth:`wait`)."""
        try:
            settings = self.settings().checked()
        except ValueError as err:
            self._say(f"⚠ {err}")
            return
        requested = time.perf_counter()
        self.jobs.submit("curves", lambda stop: self._curves_job(settings, requested, stop))

    def run_map(self) -> None:
        """Compute the τ × r map at the map tab's method, τ and r values (in the background)."""
        try:
            settings = self.settings().checked()
            taus = parse_numbers(self.map_taus.value, "τ values", int)
            ranks = parse_numbers(self.map_ranks.value, "r values", int)
        except ValueError as err:
            self._say(f"⚠ {err}")
            return
        method = self.map_method.value
        self.jobs.submit("map", lambda stop: self._map_job(settings, method, taus, ranks, stop))

    def select(self, tau: int, rank: int, method: str | None = None) -> None:
        """Load (τ, r) in the curves tab (periodic restarts, ``method`` among the methods) and show it."""
        with self.hold():
            if method is not None:
                self.methods[method].value = True
            self.controls["rule"].value = "periodic"
            self.controls["tau"].max = max(self.controls["tau"].max, tau)
            self.controls["tau"].value = tau
            self.controls["rank"].value = rank
        self.tabs.selected_index = 0

    def stop(self) -> None:
        """Stop what is running (the figure keeps the last finished settings)."""
        if self.jobs.stop():
            self._say("Stopping…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background computations are done (False if ``timeout`` passed first)."""
        return self.jobs.wait(timeout)

    def summary(self) -> str:
        """The curves tab's numbers as text (:func:`simsgd.explore.overlay.summary`)."""
        return "" if self.view is None else summary(self.view)

    # ---- the background jobs

    def _say(self, text: str) -> None:
        self.status.value = html.escape(text)

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        # a widget message per step would cost more than the step
        if done >= total or now - self._shown >= 0.1:
            self._shown = now
            self.progress.value = done / total

    def _guarded(self, what: str, compute):
        """``compute()``, or None after saying why it stopped or failed."""
        try:
            return compute()
        except Stopped:
            self._say(f"Stopped: the {what} still shows the last settings that finished.")
        except Diverged as err:
            runs = f"{len(err.replica_ids)} of {err.replicas} runs"
            self._say(f"⚠ diverged at step {err.step} in {runs}: a smaller η?")
        except ValueError as err:
            self._say(f"⚠ {err}")
        return None

    def _curves_job(self, settings: Settings, requested: float, stop) -> None:
        self._say("Running…")
        view = self._guarded("figure", lambda: self.explorer.view(settings, self._progress, stop))
        if view is None or stop():
            return
        drawn = time.perf_counter()
        figure = figures.curves_figure(view)
        data = figures.png(figure)
        if stop():  # a newer request waits: do not show stale settings
            return
        self.view, self.figure = view, figure
        self.image.value = data
        self.theory.value = _theory_html(view)
        total = time.perf_counter() - requested
        timing = Timing(total, view.runs, view.seconds, time.perf_counter() - drawn)
        self.timings.append(timing)
        cached = len(view.curves) - view.runs
        self._say(
            f"Updated in {total:.2f} s: {view.runs} run(s) made and {cached} from the cache in "
            f"{timing.compute:.2f} s, figure {timing.figure:.2f} s."
        )

    def _map_job(self, settings, method, taus, ranks, stop) -> None:
        self._say(f"Running the τ × r map of {method}…")
        compute = lambda: self.explorer.sweep_map(settings, method, taus, ranks, self._progress, stop)
        started = time.perf_counter()
        smap = self._guarded("map", compute)
        if smap is None:
            return
        figure = figures.map_figure(smap)
        self.map, self.map_figure = smap, figure
        self.map_image.value = figures.png(figure)
        self.map_cells.children = self._cell_buttons(smap, figure)
        self.map_cells.layout = w.Layout(grid_template_columns=f"90px repeat({len(taus)}, 90px)")
        self._say(f"Map of {len(taus) * len(ranks)} cells in {time.perf_counter() - started:.2f} s.")

    def _cell_buttons(self, smap, figure) -> list:
        """A button per (τ, r), coloured as the first heat map, highest r on top (as drawn)."""
        from matplotlib.colors import to_hex

        image = figure.axes[0].images[0]
        cells = [w.HTML("<b>r \\ τ</b>"), *(w.HTML(f"<b>τ = {t}</b>") for t in smap.taus)]
        for i in reversed(range(len(smap.ranks))):
            rank = smap.ranks[i]
            cells.append(w.HTML(f"<b>r = {rank}</b>"))
            for j, tau in enumerate(smap.taus):
                value = smap.final[i, j]
                shade = image.norm(max(value, 1e-300))
                button = w.Button(
                    description=f"{value:.3g}",
                    tooltip=f"τ = {tau}, r = {rank}: final E‖∇f(X_T)‖² = {value:.4g} "
                    f"[{smap.final_low[i, j]:.3g}, {smap.final_high[i, j]:.3g}], "
                    f"{smap.floats[i, j]:.4g} floats/step. Click: load its curves.",
                    layout=w.Layout(width="88px"),
                )
                button.style.button_color = to_hex(image.cmap(shade))
                button.style.text_color = "white" if shade < 0.6 else "black"
                button.add_class("simsgd-cell")
                button.on_click(lambda _, tau=tau, rank=rank: self.select(tau, rank, smap.method))
                cells.append(button)
        return cells
