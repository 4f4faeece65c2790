"""Check the paper's statements on your own problem and compressor: the check API.

Every check returns a :class:`BoundCheck` — the statement's right-hand side with its terms, the
measured left-hand side with a one-sided 95% bound on each side, what no algorithm could exceed
(``trivial``) and what doing nothing scores (``do_nothing``), and a ``status``:

``"holds"``         the measured upper confidence bound is ≤ the bound, and the bound is below
                    what doing nothing scores (so the check could have failed);
``"vacuous"``       the measurement is ≤ the bound, but the bound is ≥ ``trivial`` (no algorithm
                    could exceed it) or ≥ ``do_nothing`` (staying at X_0 meets it): a pass that
                    says nothing, never counted as one;
``"fails"``         even the lower confidence bound exceeds the bound: a significant violation;
``"inconclusive"``  the interval straddles the bound, or the run is too small to decide
                    (:data:`simsgd.verdict.MIN_REPLICAS`); ``would_decide`` says what would.

Constants (Assumptions 1–3) come from the problem when it carries them (``L``, ``variance``,
``f_star``, ``omega_sq``: :class:`simsgd.problems.ProblemWithConstants`); ``variance`` and ω² can
be estimated instead (:func:`estimate_constants`: Monte Carlo over the iterates of a pilot run,
a bound over the region the run visits, said so in ``notes``). NaN or infinite constants are
refused.

Lemma 1 and 2 are properties of a compressor on given matrices (:func:`check_contraction`);
Theorem 4, Corollary 1 and Lemma 3 are properties of a run (:func:`check_theorem4`,
:func:`check_lemma3`), which also measure PowerSGD+'s excess over uncompressed MSGD on the same
seeds (paired: the same ξ and X_0), beside Theorem 4's compression term.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from . import theory
from ._checks import check_int, check_real
from .engine import simulate
from .ops import NUMPY
from .stats import Estimate, max_mean_bounds, mean_bounds
from .streams import NodeStreams
from .verdict import MIN_REPLICAS

__all__ = [
    "BoundCheck",
    "Contraction",
    "check_theorem4",
    "check_corollary1",
    "check_lemma3",
    "check_contraction",
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
        A value no algorithm's left-hand side can exceed (ω² for an average of ||∇f||²; inf
        where there is none).
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
    control : Estimate or None
        The same left-hand side for PowerSGD (no restart), the statement's negative control.
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
    control: Estimate | None = None
    notes: list = field(default_factory=list)

    @property
    def vacuous(self) -> bool:
        """Whether the bound could not fail: ≥ ``trivial`` or ≥ ``do_nothing``."""
        return self.bound >= min(self.trivial, self.do_nothing)

    @property
    def compression_term(self) -> float | None:
        return self.terms.get("compression")

    @property
    def excess_share(self) -> float | None:
        """The paired excess over uncompressed MSGD as a share of the measured mean."""
        return None if self.excess is None else self.excess.mean / self.measured.mean

    @property
    def control_status(self) -> str | None:
        """The status of the same bound for the control (PowerSGD), where it was run."""
        if self.control is None:
            return None
        return bound_status(self.control, self.bound, self.trivial, self.do_nothing)[0]

    def line(self) -> str:
        """One line: statement, status, measured against bound (and the vacuity that explains it)."""
        m = self.measured
        text = f"{self.statement}: {self.status} — measured {m.mean:.4g} [{m.lower:.3g}, {m.upper:.3g}]"
        text += f" vs bound {self.bound:.4g}"
        if self.vacuous:
            edge = min(self.trivial, self.do_nothing)
            text += f" (vacuous: the bound is ≥ {edge:.4g}, which no run can exceed or staying at X_0 meets)"
        if self.would_decide:
            text += f"; would decide: {self.would_decide}"
        return text

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(vacuous=self.vacuous, control_status=self.control_status, excess_share=self.excess_share)
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
        problem, method="full", nodes=nodes, lr=lr, momentum=0.0, optimizer="sgd", steps=pilot_steps,
        replicas=replicas, seed=seed, progress=False, record=("grad_norm_sq",),
    )  # fmt: skip
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


def _run_lhs(problem, method, steps, kw):
    trace = simulate(problem, method=method, steps=steps, progress=False, **kw)
    return trace, np.cumsum(trace.grad_norm_sq[:, :steps], axis=1)


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


def check_theorem4(
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
    paired=True,
    control=True,
    corrected=False,
    alpha=0.05,
    trace=None,
    **options,
):
    """Theorem 4 for ``method`` (PowerSGD+ with MSGD) on ``problem``: (1/T) Σ_{t<T} E||∇f(X_t)||² ≤ bound.

    Parameters
    ----------
    problem
        A problem (:mod:`simsgd.problems`); its constants are read, or pass ``constants=``
        (e.g. from :func:`estimate_constants`) or ``omega_sq=`` for a problem without a global ω².
    nodes, rank, restart_period, momentum, lr, steps, replicas, seed
        As :func:`simsgd.simulate` (MSGD); η must satisfy η ≤ (1 − μ)/(2L).
    method : str or Compressor
        The method checked (the theorem covers "powersgd+"; any other is checked against the
        same bound, e.g. as a control).
    paired : bool
        Also run uncompressed MSGD on the same seeds and report the paired excess.
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
    BoundCheck

    Raises
    ------
    ValueError
        Outside the theorem's hypotheses (η > (1 − μ)/(2L), …), or a ``trace`` whose settings
        differ from these, naming the setting.
    """
    steps = check_int("steps", steps, 1)
    c, notes = _constants(problem, constants, omega_sq), []
    d = theory.delta(rank, problem.shape)
    terms = theory.theorem4_terms(
        c,
        lr=lr,
        momentum=momentum,
        restart_period=restart_period,
        delta=d,
        nodes=nodes,
        steps=steps,
        corrected=corrected,
    )
    kw = dict(
        nodes=nodes,
        rank=rank,
        lr=lr,
        momentum=momentum,
        optimizer="msgd",
        replicas=replicas,
        seed=seed,
        restart_period=restart_period,
        **options,
    )
    if trace is None:
        _, sums = _run_lhs(problem, method, steps, kw)
    else:
        _check_trace(trace, dict(kw, method=method, steps=steps))
        replicas = kw["replicas"] = trace.replicas
        sums = np.cumsum(trace.grad_norm_sq[:, :steps], axis=1)
    lhs = sums[:, -1] / steps
    measured = mean_bounds(lhs, alpha)
    excess = ctrl = None
    if paired:
        _, base = _run_lhs(problem, "full", steps, kw)
        excess = mean_bounds(lhs - base[:, -1] / steps, alpha)
    if control:
        _, plain = _run_lhs(problem, "powersgd", steps, kw)
        ctrl = mean_bounds(plain[:, -1] / steps, alpha)
    do_nothing = float(NUMPY.sqnorm(problem.grad(np.asarray(problem.x0, dtype=np.float64))))
    trivial = c.omega_sq
    status, would = bound_status(measured, terms.total, trivial, do_nothing)
    settings = dict(
        N=nodes,
        r=rank,
        δ=d,
        τ=restart_period,
        μ=momentum,
        η=lr,
        T=steps,
        R=replicas,
        seed=seed,
        method=method if isinstance(method, str) else getattr(method, "name", repr(method)),
    )
    return BoundCheck(
        "Theorem 4",
        terms.total,
        terms._asdict(),
        measured,
        trivial,
        do_nothing,
        status,
        would,
        dict(c.to_dict(), omega_sq_source=c.omega_sq_source),
        settings,
        excess,
        ctrl,
        notes,
    )


def check_corollary1(
    problem, *, nodes, rank=1, restart_period=10, momentum=0.9, steps, constants=None, omega_sq=None, **kwargs
):
    """Corollary 1: PowerSGD+ at the corollary's step size against its rate (see :func:`check_theorem4`)."""
    c = _constants(problem, constants, omega_sq)
    d = theory.delta(rank, problem.shape)
    kw = dict(momentum=momentum, restart_period=restart_period, delta=d, nodes=nodes, steps=steps)
    lr = theory.corollary1_lr(c, **kw)
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
        terms=rate._asdict(),
        status=status,
        would_decide=would,
    )


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
    constants=None,
    omega_sq=None,
    control=True,
    alpha=0.05,
    **options,
):
    """Lemma 3: max_t E||(1/N) Σ_i e_t^{(i)}||² ≤ 45 τ² G² / δ² for PowerSGD+ (simultaneous bounds over t).

    ``trivial`` and ``do_nothing`` are inf: no algorithm-free bound caps the error memory (PowerSGD,
    the control, can exceed it), so the check is never vacuous by construction.
    """
    c, notes = _constants(problem, constants, omega_sq), []
    d = theory.delta(rank, problem.shape)
    bound = theory.lemma3_bound(restart_period, c.G_sq, d)
    kw = dict(
        nodes=nodes,
        rank=rank,
        lr=lr,
        momentum=momentum,
        optimizer="msgd",
        replicas=replicas,
        seed=seed,
        steps=steps,
        progress=False,
        record=("error_norm_sq",),
        **options,
    )
    trace = simulate(problem, method="powersgd+", restart_period=restart_period, **kw)
    measured = max_mean_bounds(trace.error_norm_sq, alpha)
    ctrl = (
        max_mean_bounds(simulate(problem, method="powersgd", **kw).error_norm_sq, alpha) if control else None
    )
    status, would = bound_status(measured, bound)
    settings = dict(N=nodes, r=rank, δ=d, τ=restart_period, μ=momentum, η=lr, T=steps, R=replicas, seed=seed)
    return BoundCheck(
        "Lemma 3",
        bound,
        {"bound": bound},
        measured,
        math.inf,
        math.inf,
        status,
        would,
        c.to_dict(),
        settings,
        None,
        ctrl,
        notes,
    )


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
