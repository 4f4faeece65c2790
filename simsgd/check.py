"""Check the paper's statements on your own problem and compressor: the check API.

Every check returns a :class:`BoundCheck` — the statement's right-hand side with its terms, the
measured left-hand side with a one-sided 95% bound on each side, what the left-hand side cannot
exceed (``trivial``) and what doing nothing scores (``do_nothing``), and a ``status``:

``"holds"``         the measured upper confidence bound is ≤ the bound, and the bound is below
                    ``trivial`` and ``do_nothing`` (so the check could have failed);
``"vacuous"``       the measurement is ≤ the bound, but the bound is ≥ ``trivial`` or ≥
                    ``do_nothing``: a pass that says nothing, never counted as one;
``"fails"``         even the lower confidence bound exceeds the bound: a significant violation;
``"inconclusive"``  the interval straddles the bound, or the run is too small to decide
                    (:data:`simsgd.verdict.MIN_REPLICAS`); ``would_decide`` says what would.

Constants (Assumptions 1–3) come from the problem when it carries them (``L``, ``variance``,
``f_star``, ``omega_sq``: :class:`simsgd.problems.ProblemWithConstants`); ``variance`` and ω² can
be estimated instead (:func:`estimate_constants`: Monte Carlo over the iterates of a pilot run,
a bound over the region the run visits, said so in ``notes``). NaN or infinite constants are
refused.

Lemma 1 and 2 are properties of a compressor on given matrices (:func:`check_contraction`);
Theorem 4, Corollary 1, Lemma 3 and Lemma 4 are properties of a run (:func:`check_theorem4`,
:func:`check_theorem4_at` for several horizons of one run, :func:`check_corollary1`,
:func:`check_lemma3`, :func:`check_lemma4`). The Theorem 4 checks also measure the method's
excess over uncompressed MSGD on the same seeds (paired: the same ξ and X_0), its share of the
measured mean and its ratio to Theorem 4's compression term, and run PowerSGD (no restart) as
the negative control, with Theorem 1's floor ε₀ where the problem states one.
:func:`stationary_excess` measures that excess past the start-up transient (a window at the end
of the run), beside the compression term, to see how much of the third term compression uses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from . import theory
from ._checks import check_int, check_real
from .engine import simulate
from .ops import NUMPY
from .stats import Estimate, max_mean_bounds, mean_bounds, ratio_bounds
from .streams import NodeStreams
from .verdict import MIN_REPLICAS

__all__ = [
    "BoundCheck",
    "Contraction",
    "Excess",
    "check_theorem4",
    "check_theorem4_at",
    "check_corollary1",
    "check_lemma3",
    "check_lemma4",
    "check_contraction",
    "stationary_excess",
    "estimate_constants",
    "bound_status",
]

STATUSES = ("holds", "vacuous", "fails", "inconclusive")


def bound_status(measured: Estimate, bound: float, trivial: float = math.inf, do_nothing: float = math.inf):
    """The status of "E[Y] ≤ bound" from a measurement with one-sided bounds (see the module).

    Returns
    -------
    status : str
    would_decide : str
        What would decide an inconclusive check ("" otherwise).
    """
    if measured.n < MIN_REPLICAS:
        return "inconclusive", f"R ≥ {MIN_REPLICAS} replicas (R = {measured.n})"
    if measured.lower > bound:
        return "fails", ""
    if measured.upper <= bound:
        return ("vacuous" if bound >= min(trivial, do_nothing) else "holds"), ""
    half = max(measured.upper - measured.mean, 1e-300)
    gap = abs(bound - measured.mean)
    more = math.ceil(measured.n * (half / gap) ** 2) if gap > 0 else None
    return "inconclusive", (f"R ≥ {more} replicas" if more else "a different setting: E[Y] sits on the bound")


@dataclass(frozen=True)
class BoundCheck:
    """A statement of the paper set against a measurement.

    Attributes
    ----------
    statement : str
    bound : float
        The right-hand side; ``terms`` its parts.
    measured : Estimate
        The left-hand side of the checked method (one-sided 95% bounds).
    trivial : float
        A value the left-hand side cannot exceed: ω² for an average of ||∇f||² (any algorithm,
        Assumption 3); for Lemma 4 what Lemmas 1 and 3 already imply (:func:`check_lemma4`);
        inf where there is none.
    do_nothing : float
        The left-hand side of staying at X_0 (||∇f(X_0)||²; inf where it means nothing).
    status, would_decide : str
        See the module.
    constants : dict
        The constants the bound used (:class:`simsgd.theory.Constants`) and where they came from.
    settings : dict
        Everything else the bound and the runs used (N, r, δ, τ, μ, η, T, R, seed, method).
    excess : Estimate or None
        Paired (same seeds) left-hand side of the method minus that of uncompressed MSGD.
    share : Estimate or None
        E[excess] / E[left-hand side], with paired-bootstrap bounds.
    tail_excess : Estimate or None
        The paired excess averaged over the last half of the horizon only, t in [T/2, T).
    control : Estimate or None
        The same left-hand side for PowerSGD (no restart), the statement's negative control.
    control_floor : float or None
        Theorem 1's ε₀ where the problem states one (a floor on the control's E||∇f(X_t)||² at
        every t, in exact arithmetic): the control is predicted to fail where ε₀ > bound.
    notes : list of str
    """

    statement: str
    bound: float
    terms: dict
    measured: Estimate
    trivial: float
    do_nothing: float
    status: str
    would_decide: str
    constants: dict
    settings: dict
    excess: Estimate | None = None
    share: Estimate | None = None
    tail_excess: Estimate | None = None
    control: Estimate | None = None
    control_floor: float | None = None
    notes: list = field(default_factory=list)

    @property
    def vacuous(self) -> bool:
        """Whether the bound could not fail: ≥ ``trivial`` or ≥ ``do_nothing``."""
        return self.bound >= min(self.trivial, self.do_nothing)

    @property
    def compression_term(self) -> float | None:
        """Theorem 4's third term 548L²η²τ²G²/((1 − μ)⁴δ²) at the check's η (for Corollary 1, the
        theorem's term at the corollary's η, ``terms["theorem4"]``); None for the lemmas.
        """
        return self.terms.get("theorem4", self.terms).get("compression")

    @property
    def excess_significant(self) -> bool | None:
        """Whether the paired excess is significantly positive (its one-sided lower bound > 0)."""
        return None if self.excess is None else self.excess.lower > 0

    @property
    def excess_ratio(self) -> float | None:
        """The paired excess over Theorem 4's compression term (what compression may add)."""
        term = self.compression_term
        return None if self.excess is None or not term else self.excess.mean / term

    @property
    def control_status(self) -> str | None:
        """The status of the same bound for the control (PowerSGD), where it was run."""
        if self.control is None:
            return None
        return bound_status(self.control, self.bound, self.trivial, self.do_nothing)[0]

    @property
    def control_predicted(self) -> str | None:
        """``"fails"`` where Theorem 1's ε₀ exceeds the bound, ``""`` where it does not, None without ε₀."""
        if self.control_floor is None:
            return None
        return "fails" if self.control_floor > self.bound else ""

    def line(self) -> str:
        """One line: statement, status, measured against bound (and the vacuity that explains it)."""
        m = self.measured
        text = f"{self.statement}: {self.status} — measured {m.mean:.4g} [{m.lower:.3g}, {m.upper:.3g}]"
        text += f" vs bound {self.bound:.4g}"
        if self.vacuous:
            edge = min(self.trivial, self.do_nothing)
            text += (
                f" (vacuous: the bound is ≥ {edge:.4g}, which the left-hand side cannot exceed or X_0 meets)"
            )
        if self.would_decide:
            text += f"; would decide: {self.would_decide}"
        return text

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            vacuous=self.vacuous,
            control_status=self.control_status,
            control_predicted=self.control_predicted,
            excess_significant=self.excess_significant,
            excess_ratio=self.excess_ratio,
        )
        return d


def _finite_constant(name, value):
    return check_real(name, value, 0.0)


def estimate_constants(
    problem, *, nodes, pilot_steps=200, replicas=64, seed=0, lr=None, samples=32, f_star=None
):
    """Assumptions 1–3 for a problem that does not carry them all, estimated by Monte Carlo.

    ``L`` and ``f_star`` must come from the problem (or ``f_star=``): they cannot be estimated
    from samples. ``variance`` (Assumption 2, sup_X E||∇F_i(X; ξ) − ∇f_i(X)||²) is measured at the
    end points of a pilot run of uncompressed SGD (``samples`` draws per point, the unbiased
    sample variance per node), and ω² is max_t E||∇f(X_t)||² of the pilot. Each is its *lower*
    95% confidence bound, which is ≤ the sup it stands for: the bound built from them is ≤ the
    true bound, so a check that holds with them holds with the true constants (a violation may
    instead come from the estimate). Both cover only the region the pilot visits: said so in
    the notes.

    Returns
    -------
    theory.Constants, list of str
        The constants (``omega_sq_source="visited"``) and notes saying how each was made.

    Raises
    ------
    ValueError
        The problem has no L (or f* is neither given nor carried), or an estimate is not finite.
    """
    if not hasattr(problem, "L"):
        raise ValueError(f"problem {type(problem).__name__} must carry L (it cannot be estimated)")
    L = _finite_constant("problem.L", problem.L)
    f_star = check_real("f_star", f_star if f_star is not None else getattr(problem, "f_star", math.nan))
    samples = check_int("samples", samples, 2)
    lr = 0.5 / (2 * L) if lr is None else lr
    pilot = simulate(
        problem,
        method="full",
        nodes=nodes,
        lr=lr,
        momentum=0.0,
        optimizer="sgd",
        steps=pilot_steps,
        replicas=replicas,
        seed=seed,
        progress=False,
        record=("grad_norm_sq",),
    )
    xs = pilot.x
    streams = NodeStreams(seed + 1, np.arange(len(xs)), np.arange(nodes))  # draws the pilot did not use
    grads = np.array([problem.stochastic_grads(xs, nodes, streams.at(k)) for k in range(samples)])
    # ∇f_i(X) is unknown: the unbiased sample variance of node i's draws, averaged over the nodes
    spread = NUMPY.sqnorm(grads - grads.mean(axis=0)).sum(axis=0) / (samples - 1)  # (R, N)
    variance = mean_bounds(spread.mean(axis=1)).lower
    omega_sq = theory.visited_omega_sq(pilot.grad_norm_sq)
    for name, value in (("variance", variance), ("omega_sq", omega_sq)):
        _finite_constant(f"estimated {name}", value)
    f0 = float(problem.loss(np.asarray(problem.x0, dtype=np.float64)))
    c = theory.Constants(L, variance, omega_sq, f_star, f0 - f_star, tuple(problem.shape), "visited")
    notes = [
        f"variance estimated: lower 95% bound of the per-node sample variance of ∇F_i ({samples} draws "
        f"at the X_T of {replicas} pilot runs, SGD, T = {pilot_steps}): {variance:.4g} (visited region only)",
        f"ω² estimated: lower 95% bound of max_t E||∇f(X_t)||² of the pilot: {omega_sq:.4g}",
        "lower bounds: a check that holds with them holds with the true constants; a violation may come "
        "from them",
    ]
    return c, notes


def _constants(problem, constants, omega_sq):
    """The checked constants: given, or the problem's (NaN and inf refused, naming the constant)."""
    source = "constants" if constants is not None else "problem"
    c = constants if constants is not None else theory.constants(problem, omega_sq)
    for name in ("L", "variance", "omega_sq"):
        _finite_constant(f"{source}.{name}", getattr(c, name))
    check_real(f"{source}.f_star", c.f_star)
    check_real(f"{source}.delta_f", c.delta_f)
    return c


def _window_means(problem, method, windows, kw) -> dict:
    """One run of ``method``; per (start, stop) in ``windows`` the (R,) means of ||∇f(X_t)||² over t in it."""
    steps = max(stop for _, stop in windows)
    trace = simulate(problem, method=method, steps=steps, progress=False, record=("grad_norm_sq",), **kw)
    return {w: trace.grad_norm_sq[:, w[0] : w[1]].mean(axis=1) for w in windows}


def _check_trace(trace, settings):
    """Refuse a trace whose config (the settings it keeps) differs from ``settings``, naming the setting."""
    if trace.grad_norm_sq is None:
        raise ValueError("trace must record grad_norm_sq (simulate(..., record=...))")
    for name, value in settings.items():
        if name not in trace.config or (name == "method" and not isinstance(value, str)):
            continue
        have = trace.config[name]
        if name == "restart_period" and not isinstance(value, int):
            value = repr(value)  # the config keeps a rule by its repr
        if have != value:
            raise ValueError(f"trace was run with {name}={have!r}, not {value!r}")


def _control_floor(problem, nodes):
    """Theorem 1's ε₀ where the problem states one (not with the lock forced: ξ_0 is then outside
    Assumption 2); None elsewhere.
    """
    floor = getattr(problem, "epsilon0", None)
    if floor is None or getattr(problem, "lock_start", False):
        return None
    return float(floor(nodes))


def _method_name(method) -> str:
    return method if isinstance(method, str) else getattr(method, "name", repr(method))


def check_theorem4_at(
    problem,
    *,
    horizons,
    nodes,
    rank=1,
    restart_period=10,
    momentum=0.9,
    lr,
    replicas=100,
    seed=0,
    method="powersgd+",
    constants=None,
    omega_sq=None,
    paired=True,
    control=True,
    corrected=False,
    alpha=0.05,
    trace=None,
    **options,
):
    """Theorem 4 at several horizons T of one run: the theorem holds for every T at a fixed η,
    so one run of max(horizons) steps per method gives each T's left-hand side as a prefix average.

    Parameters
    ----------
    problem
        A problem (:mod:`simsgd.problems`); its constants are read, or pass ``constants=``
        (e.g. from :func:`estimate_constants`) or ``omega_sq=`` for a problem without a global ω².
    horizons : sequence of int
        The horizons T ≥ 2 to check.
    nodes, rank, restart_period, momentum, lr, replicas, seed
        As :func:`simsgd.simulate` (MSGD); η must satisfy η ≤ (1 − μ)/(2L).
    method : str or Compressor
        The method checked (the theorem covers "powersgd+"; any other is checked against the
        same bound, e.g. as a control).
    paired : bool
        Also run uncompressed MSGD on the same seeds: the paired excess, its share of the
        measured mean and its tail (the last half of each horizon).
    control : bool
        Also run PowerSGD (no restart) against the same bound.
    corrected : bool
        Use the third term's constant with the erratum in (19) fixed.
    alpha : float
        One-sided level of each confidence bound.
    trace : Trace, optional
        A run of ``method`` already made at these settings (e.g. one a notebook plotted): its
        ||∇f(X_t)||² is the left-hand side, and ``method`` is not run again (R is the trace's).
        The settings its ``config`` keeps must equal these.
    **options
        Other options of :func:`simsgd.simulate` (``error_feedback``, ``dtype``, …).

    Returns
    -------
    list of BoundCheck
        One per horizon, in the order given.
    """
    horizons = [check_int("horizon", T, 2) for T in horizons]
    if not horizons:
        raise ValueError("horizons must hold at least one T ≥ 2")
    c = _constants(problem, constants, omega_sq)
    d = theory.delta(rank, problem.shape)
    common = dict(lr=lr, momentum=momentum, restart_period=restart_period, nodes=nodes)
    # the hypotheses (η ≤ (1 − μ)/(2L), …) are checked here, before any run
    terms = {T: theory.theorem4_terms(c, delta=d, steps=T, corrected=corrected, **common) for T in horizons}
    kw = dict(common, rank=rank, optimizer="msgd", replicas=replicas, seed=seed, **options)
    windows = [(0, T) for T in horizons] + [(T // 2, T) for T in horizons]
    if trace is None:
        lhs = _window_means(problem, method, windows, kw)
    else:
        _check_trace(trace, dict(kw, method=method, steps=max(horizons)))
        replicas = kw["replicas"] = trace.replicas
        lhs = {w: trace.grad_norm_sq[:, w[0] : w[1]].mean(axis=1) for w in windows}
    base = _window_means(problem, "full", windows, kw) if paired else None
    plain = _window_means(problem, "powersgd", windows, kw) if control else None
    do_nothing = float(NUMPY.sqnorm(problem.grad(np.asarray(problem.x0, dtype=np.float64))))
    checks = []
    for T in horizons:
        y, paired_stats = lhs[(0, T)], {}
        if paired:
            z = base[(0, T)]
            paired_stats = dict(
                excess=mean_bounds(y - z, alpha),
                share=ratio_bounds(y - z, y, alpha, seed=0),
                tail_excess=mean_bounds(lhs[(T // 2, T)] - base[(T // 2, T)], alpha),
            )
        measured = mean_bounds(y, alpha)
        status, would = bound_status(measured, terms[T].total, c.omega_sq, do_nothing)
        settings = dict(N=nodes, r=rank, δ=d, τ=restart_period, μ=momentum, η=lr, T=T, R=replicas, seed=seed)
        checks.append(
            BoundCheck(
                "Theorem 4",
                terms[T].total,
                terms[T]._asdict(),
                measured,
                c.omega_sq,
                do_nothing,
                status,
                would,
                dict(c.to_dict(), omega_sq_source=c.omega_sq_source),
                dict(settings, method=_method_name(method)),
                control=mean_bounds(plain[(0, T)], alpha) if control else None,
                control_floor=_control_floor(problem, nodes) if control else None,
                **paired_stats,
            )
        )
    return checks


def check_theorem4(problem, *, steps, **kwargs):
    """Theorem 4 for ``method`` (PowerSGD+ with MSGD) on ``problem`` at one horizon T = ``steps``:
    (1/T) Σ_{t<T} E||∇f(X_t)||² ≤ bound. Parameters as :func:`check_theorem4_at`.

    Returns
    -------
    BoundCheck

    Raises
    ------
    ValueError
        Outside the theorem's hypotheses (η > (1 − μ)/(2L), …), or a ``trace`` whose settings
        differ from these, naming the setting.
    """
    return check_theorem4_at(problem, horizons=[steps], **kwargs)[0]


def check_corollary1(
    problem,
    *,
    nodes,
    rank=1,
    restart_period=10,
    momentum=0.9,
    steps,
    constants=None,
    omega_sq=None,
    lr_scale=1.0,
    **kwargs,
):
    """Corollary 1: PowerSGD+ at the corollary's step size against its rate (see :func:`check_theorem4`).

    ``terms`` are the rate's three terms, and under ``"theorem4"`` Theorem 4's at that step size.
    ``lr_scale`` ≠ 1 runs at that multiple of the corollary's η against the same rate: outside the
    statement (which claims the rate only at its η), for asking how much the rate depends on it.
    """
    c = _constants(problem, constants, omega_sq)
    d = theory.delta(rank, problem.shape)
    kw = dict(momentum=momentum, restart_period=restart_period, delta=d, nodes=nodes, steps=steps)
    lr = check_real("lr_scale", lr_scale, 0.0, low_open=True) * theory.corollary1_lr(c, **kw)
    rate = theory.corollary1_rate(c, **kw)
    check = check_theorem4(
        problem,
        nodes=nodes,
        rank=rank,
        restart_period=restart_period,
        momentum=momentum,
        lr=lr,
        steps=steps,
        constants=c,
        **kwargs,
    )
    status, would = bound_status(check.measured, rate.total, check.trivial, check.do_nothing)
    return replace(
        check,
        statement="Corollary 1",
        bound=rate.total,
        terms=dict(rate._asdict(), theorem4=check.terms),
        status=status,
        would_decide=would,
    )


def _memory_check(statement, field_name, cols, bound, trivial, problem, c, d, method, control, alpha, kw):
    """max_t E||·||² of ``field_name`` for ``method`` (and PowerSGD) against ``bound``."""
    trace = simulate(problem, method=method, record=(field_name,), **kw)
    measured = max_mean_bounds(getattr(trace, field_name)[:, cols], alpha)
    ctrl = None
    if control:
        plain = simulate(problem, method="powersgd", record=(field_name,), **kw)
        ctrl = max_mean_bounds(getattr(plain, field_name)[:, cols], alpha)
    status, would = bound_status(measured, bound, trivial)
    settings = dict(
        N=kw["nodes"],
        r=kw["rank"],
        δ=d,
        τ=kw["restart_period"],
        μ=kw["momentum"],
        η=kw["lr"],
        T=kw["steps"],
        R=kw["replicas"],
        seed=kw["seed"],
        method=_method_name(method),
    )
    return BoundCheck(
        statement,
        bound,
        {"bound": bound},
        measured,
        trivial,
        math.inf,
        status,
        would,
        c.to_dict(),
        settings,
        control=ctrl,
    )


def _memory_args(problem, constants, omega_sq, rank, kw):
    c = _constants(problem, constants, omega_sq)
    kw.update(rank=rank, optimizer="msgd", progress=False)
    return c, theory.delta(rank, problem.shape)


def check_lemma3(
    problem,
    *,
    nodes,
    rank=1,
    restart_period=10,
    momentum=0.9,
    lr,
    steps,
    replicas=100,
    seed=0,
    method="powersgd+",
    constants=None,
    omega_sq=None,
    control=True,
    alpha=0.05,
    **options,
):
    """Lemma 3: max_t E||(1/N) Σ_i e_t^{(i)}||² ≤ 45 τ² G² / δ² for PowerSGD+ (simultaneous bounds over t).

    ``trivial`` and ``do_nothing`` are inf: no algorithm-free bound caps the error memory (PowerSGD,
    the control, can exceed it), so the check is never vacuous by construction. Other parameters
    as :func:`check_theorem4_at` (``method`` checks another compressor against the same bound).
    """
    kw = dict(nodes=nodes, restart_period=restart_period, momentum=momentum, lr=lr, steps=steps)
    kw.update(replicas=replicas, seed=seed, **options)
    c, d = _memory_args(problem, constants, omega_sq, rank, kw)
    bound = theory.lemma3_bound(restart_period, c.G_sq, d)
    return _memory_check(
        "Lemma 3", "error_norm_sq", slice(None), bound, math.inf, problem, c, d, method, control, alpha, kw
    )


def check_lemma4(
    problem,
    *,
    nodes,
    rank=1,
    restart_period=10,
    momentum=0.9,
    lr,
    steps,
    replicas=100,
    seed=0,
    method="powersgd+",
    constants=None,
    omega_sq=None,
    control=True,
    alpha=0.05,
    **options,
):
    """Lemma 4: max_t E||m_t||² ≤ 92 τ² G² / ((1 − μ)² δ²) (simultaneous bounds over t).

    ``trivial`` is what Lemma 3 already implies, 2(45τ²G²/δ² + G²)/(1 − μ)²: pathwise,
    ||m_t||² ≤ (Σ_k μ^{t−k}) Σ_k μ^{t−k} ||Δ̂_k||² (Cauchy–Schwarz) and ||Δ̂_k||² ≤ ||Δ̄_k||² ≤
    2||ē_k||² + 2||ḡ_k||² (Lemma 1), so E||m_t||² ≤ 2(max_k E||ē_k||² + G²)/(1 − μ)². Lemma 4's bound
    is ≥ that for every τ ≥ 1 and δ ≤ 1 (92τ²/δ² ≥ 90τ²/δ² + 2), so a method whose compressor
    satisfies Lemma 1 and which meets Lemma 3 meets Lemma 4: the check is vacuous by construction,
    and fails only where Lemma 1 or Lemma 3 does. Parameters as :func:`check_lemma3`.
    """
    kw = dict(nodes=nodes, restart_period=restart_period, momentum=momentum, lr=lr, steps=steps)
    kw.update(replicas=replicas, seed=seed, **options)
    c, d = _memory_args(problem, constants, omega_sq, rank, kw)
    bound = theory.lemma4_bound(restart_period, c.G_sq, d, momentum)
    implied = 2.0 * (theory.lemma3_bound(restart_period, c.G_sq, d) + c.G_sq) / (1.0 - momentum) ** 2
    # momentum_norm_sq[:, t + 1] is ||m_t||²; column 0 is m_{-1} = 0
    return _memory_check(
        "Lemma 4",
        "momentum_norm_sq",
        slice(1, None),
        bound,
        implied,
        problem,
        c,
        d,
        method,
        control,
        alpha,
        kw,
    )


@dataclass(frozen=True)
class Excess:
    """A method's E||∇f(X_t)||² minus uncompressed MSGD's on the same seeds, averaged over t in
    [start, stop): past the start-up transient, what compression adds (the stationary excess).

    Attributes
    ----------
    start, stop : int
        The window of t.
    excess : Estimate
        The paired excess (one-sided 95% bounds).
    measured, base : Estimate
        The method's and MSGD's window means.
    compression, corrected : float
        Theorem 4's compression term at these settings with the paper's constant 548/(1 − μ)⁴
        and with the erratum in (19) fixed (:func:`simsgd.theory.compression_constant`).
    settings : dict
    values : ndarray (R,)
        The per-replica excesses (for fits; not in :meth:`to_dict`).
    """

    start: int
    stop: int
    excess: Estimate
    measured: Estimate
    base: Estimate
    compression: float
    corrected: float
    settings: dict
    values: np.ndarray = field(repr=False, compare=False)

    @property
    def ratio(self) -> float:
        """Excess / compression term (the paper's constant)."""
        return self.excess.mean / self.compression

    @property
    def constant(self) -> float:
        """The constant c the excess would need in c·L²η²τ²G²/((1 − μ)⁴δ²): 548 × :attr:`ratio`."""
        return 548.0 * self.ratio

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "values"}
        d.update(ratio=self.ratio, constant=self.constant, ratio_corrected=self.excess.mean / self.corrected)
        return d


def stationary_excess(
    problem,
    *,
    horizons,
    nodes,
    rank=1,
    restart_period=10,
    momentum=0.9,
    lr,
    replicas=100,
    seed=0,
    method="powersgd+",
    window=0.5,
    constants=None,
    omega_sq=None,
    alpha=0.05,
    **options,
):
    """The excess of ``method`` over uncompressed MSGD (same seeds) in the last ``window`` of each
    horizon, t in [T(1 − window), T), beside Theorem 4's compression term; one run per method.

    Past the transient (T ∝ 1/η) the excess no longer falls as 1/T: comparing horizons T and 10T
    tells a stationary excess from a start-up cost. Parameters as :func:`check_theorem4_at`.

    Returns
    -------
    list of Excess
        One per horizon.
    """
    horizons = [check_int("horizon", T, 2) for T in horizons]
    window = check_real("window", window, 0.0, 1.0, low_open=True)
    c = _constants(problem, constants, omega_sq)
    d = theory.delta(rank, problem.shape)
    kw = dict(
        nodes=nodes, rank=rank, lr=lr, momentum=momentum, optimizer="msgd", replicas=replicas, seed=seed
    )
    kw.update(restart_period=restart_period, **options)
    terms = dict(lr=lr, momentum=momentum, restart_period=restart_period, delta=d, nodes=nodes, steps=1)
    third = theory.theorem4_terms(c, **terms).compression
    fixed = theory.theorem4_terms(c, corrected=True, **terms).compression
    windows = [(int(T * (1.0 - window)), T) for T in horizons]
    y = _window_means(problem, method, windows, kw)
    z = _window_means(problem, "full", windows, kw)
    settings = dict(
        N=nodes,
        r=rank,
        δ=d,
        τ=restart_period,
        μ=momentum,
        η=lr,
        R=replicas,
        seed=seed,
        method=_method_name(method),
    )
    return [
        Excess(
            a,
            b,
            mean_bounds(y[(a, b)] - z[(a, b)], alpha),
            mean_bounds(y[(a, b)], alpha),
            mean_bounds(z[(a, b)], alpha),
            third,
            fixed,
            dict(settings, T=b),
            y[(a, b)] - z[(a, b)],
        )
        for a, b in windows
    ]


@dataclass(frozen=True)
class Contraction:
    """Lemma 1/2 on given matrices: ρ = ||Δ̂ − Δ̄||²/||Δ̄||² and κ = ||Δ̂||²/||Δ̄||² per matrix.

    Attributes
    ----------
    rho_max, kappa_max : float
        The largest ρ and κ (Lemma 1: both ≤ 1; Lemma 2: ρ ≤ 1 − δ).
    delta : float or None
        The δ checked (Lemma 2), None for Lemma 1 only.
    status : {"holds", "fails", "vacuous"}
        ``"vacuous"`` where δ ≤ 0 (1 − δ ≥ 1 is Lemma 1's bound: no contraction claimed).
    tolerance : float
        Rounding allowed: ρ ≤ (1 − δ) + tolerance.
    """

    rho_max: float
    kappa_max: float
    delta: float | None
    status: str
    tolerance: float

    def to_dict(self) -> dict:
        return asdict(self)


def check_contraction(compressor, deltas, *, delta=None, ops=NUMPY, state=None, draws=None, t=0):
    """Lemma 1 (||Δ̂||² ≤ ||Δ̄||², ||Δ̂ − Δ̄||² ≤ ||Δ̄||²) and, with ``delta``, Lemma 2
    (||Δ̂ − Δ̄||² ≤ (1 − δ)||Δ̄||²) for one step of ``compressor`` on ``deltas`` (..., N, m, n).

    ``state`` defaults to the compressor's :meth:`init` from a Q_{−1} of ones; a random compressor
    needs ``draws``. Δ̂ is the node-averaged output, Δ̄ the node average of ``deltas``.

    Returns
    -------
    Contraction
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    shape = deltas.shape[-2:]
    if state is None:
        basis = compressor.basis_shape(shape)
        q0 = None if basis is None else np.ones(deltas.shape[:-3] + basis)
        state = compressor.init(q0)
    out, _ = compressor.compress(
        state, deltas, t, errors=np.zeros_like(deltas), ops=ops, draws=draws, want_local=False
    )
    mean = ops.node_mean(deltas)
    norm = ops.sqnorm(mean)
    safe = np.where(norm > 0, norm, 1.0)
    rho = np.where(norm > 0, ops.sqnorm(out.global_hat - mean) / safe, 0.0)
    kappa = np.where(norm > 0, ops.sqnorm(out.global_hat) / safe, 0.0)
    tolerance = 64 * float(np.finfo(np.float64).eps) * max(shape)
    limit = 1.0 if delta is None else 1.0 - check_real("delta", delta, 0.0, 1.0)
    if delta is not None and delta <= 0:
        status = "vacuous"
    else:
        status = "holds" if rho.max() <= limit + tolerance and kappa.max() <= 1 + tolerance else "fails"
    return Contraction(float(rho.max()), float(kappa.max()), delta, status, tolerance)
