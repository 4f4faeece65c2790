"""What the τ and rank explorer computes, without any widget: :class:`Settings` in, a :class:`View`
(curves, locked fractions, the theory beside them) or a :class:`SweepMap` (τ × r) out.

Runs are :func:`simsgd.simulate` calls on the NumPy engine (the fastest one for the small runs an
interactive view makes: the torch backend costs more per step at R ≤ 10³), recording ||∇f(X_t)||²
only, and cached by every setting the method depends on, so moving τ reruns only the methods that
restart. Each run reports its step to a progress callback and can be stopped between two steps
(:class:`Stopped`), through a thin wrapper of the problem's oracle (:class:`Watched`), which
changes no value.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import numpy as np

from .. import check, registry, theory
from .._checks import check_choice, check_int, check_real
from ..compressors import RESTART_KINDS
from ..engine import simulate
from ..lock import locked_mask
from ..problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2
from ..problems.psi import check_noise_scale
from ..recorder import takes_grad
from ..restarts import ErrorGrowth, Geometric
from ..stats import mean_ci, wilson_interval
from ..sweep import sweep
from ..trace import Trace

__all__ = [
    "PROBLEMS",
    "SHAPES",
    "CUSTOM",
    "RULES",
    "Settings",
    "Stopped",
    "Watched",
    "Curves",
    "Theory",
    "View",
    "SweepMap",
    "Explorer",
    "parse_numbers",
    "TABLE_HEADER",
    "table",
    "statements",
    "summary",
]

PROBLEMS = {
    "psi-paper": "ψ 2×2 (eq. 10), paper basis",
    "psi-aligned": "ψ 2×2 (eq. 10), aligned basis",
    "psi-random": "ψ 2×2 (eq. 10), random basis",
    "general": "general counterexample 8×8, k = 2, aligned basis",
    "general-random": "general counterexample 8×8, k = 2, random basis",
    "quadratic": "heterogeneous quadratic 8×6",
}
"""The built-in problems by key, with the label a selector shows."""

SHAPES = {
    "psi-paper": (2, 2),
    "psi-aligned": (2, 2),
    "psi-random": (2, 2),
    "general": (8, 8),
    "general-random": (8, 8),
    "quadratic": (8, 6),
}
"""The shape (m, n) of X in each built-in problem."""

CUSTOM = "custom"
"""The key of a problem object passed in Python (:class:`Explorer`'s ``problem``)."""

RULES = {
    "periodic": "periodic: t mod τ = 0",
    "geometric": "geometric: t = 0, τ, 2τ, 4τ, …",
    "error-growth": "error growth (τ unused)",
}
"""When PowerSGD+ and GaLore restart (:mod:`simsgd.restarts`), by key, with a label."""

# For the built-in methods, the settings a run does not depend on (the cache key leaves them out;
# tests/test_explore.py checks that each really changes nothing). A name you register depends on all.
_IGNORES = {
    "powersgd+": (),
    "galore": ("restart",),
    "powersgd": ("tau", "rule", "restart"),
    "power-iteration": ("tau", "rule", "restart"),
    "topk": ("tau", "rule", "restart"),
    "randomk": ("tau", "rule", "restart"),
    "qsgd": ("rank", "tau", "rule", "restart"),
    "sign": ("rank", "tau", "rule", "restart"),
    "full": ("rank", "tau", "rule", "restart"),
}


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


def parse_numbers(text: str, name: str, kind=float) -> tuple:
    """Comma- or space-separated numbers ("5, 10" → (5.0, 10.0)); ValueError naming ``name``."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        return tuple(kind(p) for p in parts)
    except ValueError:
        raise ValueError(f"{name} must be numbers separated by commas, got {text!r}") from None


@dataclass(frozen=True)
class Settings:
    """One point of the explorer: the problem, Algorithm 2's options and the methods shown.

    Attributes
    ----------
    problem : str
        A key of :data:`PROBLEMS`, or :data:`CUSTOM` for the problem passed to :class:`Explorer`.
    tau, rank, nodes : int
        τ ≥ 1, 1 ≤ r ≤ min(m, n), N ≥ 1.
    sigma : float or tuple of float
        σ (every node) or σ_i per node (then N must equal their number); the quadratic's
        low-rank noise scale (one σ); unused by a custom problem.
    lr, momentum : float
        η and μ of MSGD (7c).
    steps, replicas, seed : int
        T, R and the seed of :func:`simsgd.simulate`.
    methods : tuple of str
        Registered method names (:func:`simsgd.registry.names`).
    restart : str
        PowerSGD+'s restart compressor, a key of :data:`simsgd.compressors.RESTART_KINDS`.
    rule : str
        When to restart, a key of :data:`RULES`.
    """

    problem: str = "psi-aligned"
    tau: int = 10
    rank: int = 1
    nodes: int = 4
    sigma: float | tuple = 5.0
    lr: float = 1e-3
    momentum: float = 0.9
    steps: int = 200
    replicas: int = 64
    seed: int = 0
    methods: tuple = ("powersgd", "powersgd+", "full")
    restart: str = "svd"
    rule: str = "periodic"

    def checked(self) -> Settings:
        """The settings with each checked (ValueError naming the first one out of range)."""
        check_choice("problem", self.problem, (*PROBLEMS, CUSTOM))
        check_int("tau", self.tau, 1)
        check_int("rank", self.rank, 1)
        nodes = check_int("nodes", self.nodes, 1)
        sigma = self.sigma
        if np.ndim(sigma):
            sigma = tuple(check_noise_scale(list(sigma))[1].tolist())
            if len(sigma) != nodes:
                raise ValueError(f"sigma lists one σ_i per node: {len(sigma)} values for N = {nodes}")
            if self.problem == "quadratic":
                raise ValueError("sigma must be one number for the quadratic (its low-rank noise scale)")
        else:
            sigma = check_noise_scale(sigma)[0]
        check_real("lr", self.lr, 0.0, low_open=True)
        check_real("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_int("steps", self.steps, 1)
        check_int("replicas", self.replicas, 1)
        check_int("seed", self.seed, 0)
        if not self.methods:
            raise ValueError("methods must name at least one method")
        for method in self.methods:
            check_choice("methods", method, registry.names())
        check_choice("restart", self.restart, tuple(RESTART_KINDS))
        check_choice("rule", self.rule, tuple(RULES))
        return replace(self, sigma=sigma, methods=tuple(self.methods))

    @property
    def restart_period(self):
        """τ as :func:`simsgd.simulate` takes it: an int (periodic) or a rule of :mod:`simsgd.restarts`."""
        if self.rule == "geometric":
            return Geometric(self.tau)
        if self.rule == "error-growth":
            return ErrorGrowth()
        return self.tau

    def simulate_options(self) -> dict:
        """The options of :func:`simsgd.simulate` every method's run shares (MSGD)."""
        return dict(
            nodes=self.nodes,
            optimizer="msgd",
            lr=self.lr,
            momentum=self.momentum,
            steps=self.steps,
            replicas=self.replicas,
            seed=self.seed,
            restart=self.restart,
        )


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
class Theory:
    """What the paper says at the view's settings, or why it says nothing.

    Attributes
    ----------
    epsilon0 : float or None
        Theorem 1's ε₀ = 4ψ'(2)²/2^N for PowerSGD, where the theorem applies.
    lock_probability : float or None
        2^−N, the probability of Theorem 1's lock event (all ξ₀^{(i)} = +1), on problems with a lock.
    theorem4 : BoundCheck or None
        Theorem 4 at these settings, against PowerSGD+'s measured (1/T) Σ_{t<T} E||∇f(X_t)||².
    step_limit : float or None
        Theorem 4's largest step size (1 − μ)/(2L), where the problem carries L.
    notes : list of str
        Why a statement is absent or what limits it, one line each.
    """

    epsilon0: float | None = None
    lock_probability: float | None = None
    theorem4: check.BoundCheck | None = None
    step_limit: float | None = None
    notes: list = field(default_factory=list)


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
        ignored = _IGNORES.get(method, ()) if method in registry.BUILT_IN else ()
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
        theory_ = _theory(problem, settings, curves)
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
    if _has_lock(problem):
        k = int(locked_mask(problem, trace).sum())
        curves.locked, curves.locked_interval = k, wilson_interval(k, trace.replicas)
    return curves


def _has_lock(problem) -> bool:
    """Theorem 1's lock (X_t − X_0 ∈ span(B), ||∇f|| unchanged) is defined on the ψ problems."""
    return isinstance(problem.problem, (Psi2x2, GeneralCounterexample))


def _theory(problem, settings: Settings, curves: dict) -> Theory:
    out = Theory()
    inner, n = problem.problem, settings.nodes
    if _has_lock(problem):
        out.lock_probability = 2.0**-n
    if isinstance(inner, Psi2x2):
        out.epsilon0 = inner.epsilon0(0) * 2.0**-n  # ε₀(N) = ε₀(0)·2^−N: 2^N overflows at N = 1024
        if settings.rank >= 2:
            out.notes.append(
                "Theorem 1: r = 2 is full rank on the 2×2 ψ (no compression): ε₀ is not a bound here"
            )
        if settings.nodes % 2 == 0 and not np.ndim(settings.sigma):
            out.notes.append(
                "Theorem 1 with even N and one σ meets P_t = 0 (a degenerate QR): the lock holds under "
                "degenerate_qr='previous', the convention used here (docs/theorem1.md)"
            )
        if inner.basis == "paper":
            out.notes.append(
                "Theorem 1 is exact arithmetic: in the paper basis rounding breaks the lock "
                "(docs/theorem1.md)"
            )
    else:
        out.notes.append("Theorem 1 (ε₀) is stated for the 2×2 ψ problem: no ε₀ for this problem")
    _theorem4(out, problem, settings, curves.get("powersgd+"))
    return out


def _theorem4(out: Theory, problem, settings: Settings, curves: Curves | None) -> None:
    """Theorem 4 at ``settings`` against PowerSGD+'s run, or a note saying why not."""
    L = getattr(problem, "L", None)
    if L is not None and math.isfinite(L) and L > 0:
        out.step_limit = (1.0 - settings.momentum) / (2.0 * L)
    why = None
    if curves is None:
        why = "select PowerSGD+ to check it"
    elif settings.rule != "periodic":
        why = "it assumes a restart every τ steps (rule 'periodic')"
    elif settings.restart != "svd":
        why = f"its δ = r/min(m, n) is Lemma 2's for the SVD restart, not '{settings.restart}'"
    elif out.step_limit is None:
        why = "the problem carries no smoothness constant L"
    elif settings.lr > out.step_limit:
        why = (
            f"η = {settings.lr:.3g} is outside its step-size condition "
            f"η ≤ (1 − μ)/(2L) = {out.step_limit:.3g}: no bound"
        )
    if why is not None:
        out.notes.append(f"Theorem 4: {why}")
        return
    trace, inner = curves.trace, problem.problem  # the problem's own name in what the check says
    omega_sq = None
    if getattr(inner, "omega_sq", None) is None:  # no global ω²: the run's visited region
        omega_sq = theory.visited_omega_sq(trace.grad_norm_sq)
    try:
        out.theorem4 = check.check_theorem4(
            inner,
            nodes=settings.nodes,
            rank=settings.rank,
            restart_period=settings.tau,
            momentum=settings.momentum,
            lr=settings.lr,
            steps=settings.steps,
            seed=settings.seed,
            omega_sq=omega_sq,
            paired=False,
            control=False,
            trace=trace,
            restart=settings.restart,
        )
    except ValueError as err:
        out.notes.append(f"Theorem 4: {err}")
        return
    if omega_sq is not None:
        out.notes.append("Theorem 4: ω² is max_t E‖∇f(X_t)‖² of this run (the problem has no global ω²)")


TABLE_HEADER = ("method", "final E‖∇f(X_T)‖² [95%]", "floats/step", "locked at T [Wilson 95%]")
"""The columns of :func:`table`."""


def table(view: View) -> list:
    """A row of strings per method, in the columns of :data:`TABLE_HEADER`: the final E||∇f||²
    with its normal 95% interval, floats one node sends per step, and the runs locked at T with
    their Wilson interval ("–" where the problem has no lock).
    """
    rows = []
    for method, c in view.curves.items():
        mean, half = mean_ci(c.trace.grad_norm_sq[:, -1])
        lock = "–"
        if c.locked is not None:
            low, high = c.locked_interval
            lock = f"{c.locked}/{c.trace.replicas} [{low:.3g}, {high:.3g}]"
        final = f"{mean:.4g} [{max(mean - half, 0.0):.3g}, {mean + half:.3g}]"
        rows.append((method, final, f"{c.floats_per_step:.4g}", lock))
    return rows


def statements(view: View) -> list:
    """What the theory says at the view's settings, a line each, then why it is silent where it is."""
    t, lines = view.theory, []
    if t.lock_probability is not None:
        lines.append(f"Theorem 1's lock event (all ξ₀ = +1) has probability 2^−N = {t.lock_probability:.4g}")
    if t.epsilon0 is not None:
        lines.append(f"Theorem 1: PowerSGD's E‖∇f(X_t)‖² ≥ ε₀ = 4ψ'(2)²/2^N = {t.epsilon0:.4g}")
    if t.theorem4 is not None:
        lines.append(t.theorem4.line())
        terms = ", ".join(f"{k} {v:.3g}" for k, v in t.theorem4.terms.items())
        lines.append(f"Theorem 4's terms: {terms}; step size η ≤ (1 − μ)/(2L) = {t.step_limit:.3g}")
    return lines + t.notes


def summary(view: View) -> str:
    """The view as text: :func:`table` in aligned columns, then :func:`statements`."""
    rows = [TABLE_HEADER, *table(view)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + statements(view))
