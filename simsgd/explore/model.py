"""What the τ and rank explorer computes, without any widget: a
:class:`~simsgd.explore.settings.Settings` in, a :class:`View` (curves, locked fractions, the
theory beside them: :mod:`simsgd.explore.overlay`) or a :class:`SweepMap` (τ × r) out.

Runs are :func:`simsgd.simulate` calls on the NumPy engine (the fastest one for the small runs an
interactive view makes: the torch backend costs more per step at R ≤ 10³), recording ||∇f(X_t)||²
only, and cached by every setting the method depends on, so moving τ reruns only the methods that
restart. Each run reports its step to a progress callback and can be stopped between two steps
(:class:`Stopped`), through a thin wrapper of the problem's oracle (:class:`Watched`), which
changes no value.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from .. import registry
from .._checks import check_choice, check_int
from ..engine import simulate
from ..lock import locked_mask
from ..problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2
from ..recorder import takes_grad
from ..stats import wilson_interval
from ..sweep import sweep
from ..trace import Trace
from .overlay import Theory, has_lock, theory_of
from .settings import CUSTOM, IGNORED, PROBLEMS, SHAPES, Settings

__all__ = ["Stopped", "Watched", "Curves", "View", "SweepMap", "Explorer"]


class Stopped(Exception):
    """A run stopped by its caller between two steps (the explorer's Stop button)."""


_HOOK: ContextVar[Callable[[int], None] | None] = ContextVar("simsgd_explore_hook", default=None)


class Watched:
    """The problem, unchanged, except that each oracle call (one per step) tells the hook in
    force (:meth:`Explorer.view`'s progress and stop) which step t it is.

    Every other member is the problem's own, so the engine, the lock test and the theory read
    the same constants; ``problem`` is the object wrapped.
    """

    def __init__(self, problem):
        self.problem = problem
        self._takes_grad = takes_grad(problem)

    def __getattr__(self, name):
        if name == "problem":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.problem, name)

    def stochastic_grads(self, x, nodes, rng, grad=None):
        hook = _HOOK.get()
        if hook is not None:
            hook(int(rng.step))
        if self._takes_grad and grad is not None:
            return self.problem.stochastic_grads(x, nodes, rng, grad=grad)
        return self.problem.stochastic_grads(x, nodes, rng)


@dataclass
class Curves:
    """One method's run at the view's settings.

    Attributes
    ----------
    trace : Trace
        ``grad_norm_sq`` (R, T+1) recorded, the other per-step fields None.
    floats : (T+1,) array
        Floats one node has sent before step t (cumulative ``trace.floats_sent``, from 0).
    locked : int or None
        Runs locked at T (:func:`simsgd.lock.locked_mask`), where the problem has a lock.
    locked_interval : (float, float) or None
        Wilson 95% interval of the locked fraction.
    """

    method: str
    trace: Trace
    floats: np.ndarray
    locked: int | None = None
    locked_interval: tuple | None = None

    @property
    def final(self) -> float:
        """E||∇f(X_T)||² (replica mean)."""
        return float(self.trace.grad_norm_sq[:, -1].mean())

    @property
    def floats_per_step(self) -> float:
        """Floats one node sends per step, averaged over the T steps."""
        return float(self.trace.floats_sent.mean())


@dataclass
class View:
    """Everything the explorer's first tab shows at one :class:`Settings`."""

    settings: Settings
    label: str
    curves: dict
    theory: Theory
    runs: int
    seconds: float


@dataclass
class SweepMap:
    """A τ × r map of one method (:func:`simsgd.sweep`): arrays of shape (len(ranks), len(taus)).

    Attributes
    ----------
    final, final_low, final_high : arrays
        E||∇f(X_T)||² with its normal 95% interval.
    floats : array
        Mean floats one node sends per step.
    table : simsgd.sweep.Table
        The records, in the order ranks × taus.
    """

    settings: Settings
    label: str
    method: str
    taus: tuple
    ranks: tuple
    final: np.ndarray
    final_low: np.ndarray
    final_high: np.ndarray
    floats: np.ndarray
    table: list


@contextlib.contextmanager
def _watching(progress, stop, done, total):
    """Report ``done + t`` of ``total`` at each step to ``progress``; :class:`Stopped` once ``stop()``."""

    def hook(t):
        if stop is not None and stop():
            raise Stopped(f"stopped at step {t}")
        if progress is not None:
            progress(done + t, total)

    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)


class Explorer:
    """Runs, caches and summarises what the explorer shows (no widgets: :mod:`simsgd.explore.widgets`).

    Parameters
    ----------
    problem : problem object, optional
        A problem of your own (:mod:`simsgd.problems`), shown as ``Settings(problem="custom")``.
    cache_size : int
        Runs (traces) kept in memory, least recently used dropped first.
    cache_dir : path, optional
        Where :func:`simsgd.sweep` keeps the map's cells on disk (memory only when None).
    """

    def __init__(self, problem=None, cache_size: int = 64, cache_dir=None):
        self.custom = None if problem is None else Watched(problem)
        self.cache_size = check_int("cache_size", cache_size, 1)
        self.cache_dir = cache_dir
        self._problems: dict = {}
        self._runs: OrderedDict = OrderedDict()
        self.runs_made = 0  # simulate calls made (not served from the cache)

    def label(self, settings: Settings) -> str:
        """The problem's name as the figures and the selector show it."""
        if settings.problem == CUSTOM:
            return f"your problem ({type(self.custom.problem).__name__})" if self.custom else "custom"
        return PROBLEMS[settings.problem]

    def problem(self, settings: Settings) -> Watched:
        """The problem object of ``settings`` (one object per problem setting, so caches hit)."""
        name = settings.problem
        if name == CUSTOM:
            if self.custom is None:
                raise ValueError("problem 'custom' needs a problem object: Explorer(problem=...)")
            return self.custom
        sigma = list(settings.sigma) if np.ndim(settings.sigma) else settings.sigma
        key = (name, settings.sigma, settings.nodes if name == "quadratic" else None)
        if key not in self._problems:
            if name.startswith("psi-"):
                made = Psi2x2(sigma, basis=name.removeprefix("psi-"))
            elif name.startswith("general"):
                basis = "random" if name == "general-random" else "aligned"
                made = GeneralCounterexample(*SHAPES[name], signal_rank=2, noise_scale=sigma, basis=basis)
            else:
                made = HeterogeneousQuadratic(
                    *SHAPES[name], nodes=settings.nodes, lowrank_noise=sigma, noise=0.1
                )
            self._problems[key] = Watched(made)
        return self._problems[key]

    def max_rank(self, problem: str) -> int:
        """The largest rank r of the problem named ``problem`` (a key of :data:`PROBLEMS` or ``"custom"``)."""
        if problem == CUSTOM:
            if self.custom is None:
                raise ValueError("problem 'custom' needs a problem object: Explorer(problem=...)")
            return min(self.custom.shape)
        return min(SHAPES[check_choice("problem", problem, tuple(PROBLEMS))])

    def _key(self, settings: Settings, method: str):
        ignored = IGNORED.get(method, ()) if method in registry.BUILT_IN else ()
        values = {k: v for k, v in vars(settings).items() if k not in ("methods", *ignored)}
        if "tau" in values and settings.rule == "error-growth":
            del values["tau"]  # the rule does not use τ
        return (method, tuple(sorted(values.items())))

    def cached(self, settings: Settings, method: str) -> bool:
        """Whether ``method``'s run at ``settings`` is in the cache."""
        return self._key(settings, method) in self._runs

    def run(self, settings: Settings, method: str, progress=None, stop=None, done=0, total=None) -> Trace:
        """``method``'s trace at ``settings`` (||∇f||² only), from the cache or run now.

        Raises
        ------
        Stopped
            ``stop()`` became true during the run (nothing is cached).
        ValueError, simsgd.engine.Diverged
            As :func:`simsgd.simulate`.
        """
        key = self._key(settings, method)
        if key in self._runs:
            self._runs.move_to_end(key)
            return self._runs[key]
        problem = self.problem(settings)
        with _watching(progress, stop, done, settings.steps if total is None else total):
            trace = simulate(
                problem,
                method=method,
                rank=settings.rank,
                restart_period=settings.restart_period,
                progress=False,
                record=("grad_norm_sq",),
                **settings.simulate_options(),
            )
        trace.config["problem"] = type(problem.problem).__name__  # not the wrapper's name
        self.runs_made += 1
        self._runs[key] = trace
        if len(self._runs) > self.cache_size:
            self._runs.popitem(last=False)
        return trace

    def view(self, settings: Settings, progress=None, stop=None) -> View:
        """Run (or fetch) every method of ``settings`` and set the theory beside them.

        Parameters
        ----------
        settings : Settings
        progress : callable (done, total), optional
            Called at every step of the runs still to make (steps summed over them).
        stop : callable () -> bool, optional
            Polled at every step; true stops the runs (:class:`Stopped`).

        Returns
        -------
        View

        Raises
        ------
        ValueError
            A setting out of range (naming it).
        Stopped, simsgd.engine.Diverged
        """
        start = time.perf_counter()
        settings = settings.checked()
        problem = self.problem(settings)
        check_int("rank", settings.rank, 1, min(problem.shape))
        todo = [m for m in settings.methods if not self.cached(settings, m)]
        total = max(1, len(todo) * settings.steps)
        curves = {}
        for method in settings.methods:
            done = todo.index(method) * settings.steps if method in todo else 0
            trace = self.run(settings, method, progress, stop, done, total)
            curves[method] = _curves(problem, method, trace)
        if progress is not None:
            progress(total, total)
        theory_ = theory_of(problem, settings, curves)
        return View(settings, self.label(settings), curves, theory_, len(todo), time.perf_counter() - start)

    def sweep_map(
        self, settings: Settings, method: str, taus: Iterable, ranks: Iterable, progress=None, stop=None
    ) -> SweepMap:
        """``method`` over ``taus`` × ``ranks`` at the other settings, with :func:`simsgd.sweep`
        (periodic restarts; each cell cached by its settings and seed).

        Raises
        ------
        ValueError
            A setting, τ or r out of range (naming it).
        Stopped
        """
        settings = settings.checked()
        check_choice("method", method, registry.names())
        problem = self.problem(settings)
        taus = tuple(check_int("taus", t, 1) for t in taus)
        ranks = tuple(check_int("ranks", r, 1, min(problem.shape)) for r in ranks)
        if not taus or not ranks:
            raise ValueError("taus and ranks must each list at least one value")
        shape = (len(ranks), len(taus))
        grids = {name: np.empty(shape) for name in ("final", "final_low", "final_high", "floats")}
        table, total = [], len(taus) * len(ranks) * settings.steps
        for i, rank in enumerate(ranks):
            for j, tau in enumerate(taus):
                done = (i * len(taus) + j) * settings.steps
                with _watching(progress, stop, done, total):
                    (row,) = sweep(
                        problem,
                        methods=[method],
                        taus=[tau],
                        ranks=[rank],
                        cache_dir=self.cache_dir,
                        progress=False,
                        **settings.simulate_options(),
                    )
                row["tau"] = tau  # a method that does not restart gets None: the cell is still (τ, r)
                table.append(row)
                for name, column in (("final", "final_grad_sq"), ("floats", "floats_per_step")):
                    grids[name][i, j] = row[column]
                grids["final_low"][i, j] = row["final_grad_sq_low"]
                grids["final_high"][i, j] = row["final_grad_sq_high"]
        if progress is not None:
            progress(total, total)
        return SweepMap(settings, self.label(settings), method, taus, ranks, table=table, **grids)


def _curves(problem, method, trace) -> Curves:
    floats = np.concatenate([[0.0], np.cumsum(trace.floats_sent)])
    curves = Curves(method, trace, floats)
    if has_lock(problem):
        k = int(locked_mask(problem, trace).sum())
        curves.locked, curves.locked_interval = k, wilson_interval(k, trace.replicas)
    return curves
