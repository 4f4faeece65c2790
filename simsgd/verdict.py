"""Whether a Monte Carlo run can decide a claim E[Y] ≥ c (or ≤ c), and the verdict it supports.

A command that prints "holds" or "fails" asks :func:`decide` first. It returns a
:class:`Verdict`: ``"holds"``, ``"fails"`` or ``"inconclusive"``, with the reason and, when
inconclusive, what would decide it. The rules, each with its numbers:

1. **Interval.** The 95% normal interval m ± 1.96·s/√R needs R ≥ :data:`MIN_REPLICAS` = 30:
   with fewer, s is too unstable for the normal quantile (Student's t₀.₉₇₅ is 2.05 at R = 30
   but 12.7 at R = 2), and at R = 1 there is no s at all: the "interval" [m, m] of R = 1 is
   never a CI. An interval of zero width (all R values equal) is refused at any R: the values
   have not spread, which says nothing about how far E[Y] can be from m.
2. **Rare event.** When E[Y] is carried by an event of probability p (Theorem 1: the lock,
   p = 2^−N), the run must expect R·p ≥ :data:`MIN_EVENTS` = 10 such events, the usual
   condition for the normal approximation to a binomial count; with R·p = 10 the sample
   misses the event entirely with probability e^−10 ≈ 5·10^−5. (N = 4 needs R ≥ 160;
   N = 1024 would need R ≥ 10·2^1024, more than a float can hold.)
3. **Resolution.** c must be at least :data:`RESOLUTION_FACTOR` = 2¹⁰ times the float
   resolution of Y, the size rounding alone gives it (:func:`grad_norm_sq_resolution`:
   (L·u·||X||)² for ||∇f(X)||²), so that rounding moves Y by under 0.1% of c. For the ψ
   problem in float64 (L = 8, ||X_0|| = √2) this is 6.5·10^−27 = 2^−87, so ε₀ = 16·2^−N is
   resolved up to N = 90; ε₀ = 8.9·10^−308 at N = 1024 is not.
4. **Separation** ("holds" only, when a control is given). A claim that the subject stays
   above c (e.g. PowerSGD does not converge) is tested only if a control run with the same
   R, T and η (PowerSGD+) ends below the subject, their 95% intervals disjoint; otherwise the
   run cannot tell "the subject stalls" from "nothing moved in T steps" (T = 1), "every run
   diverged or stayed put" (σ = 10^150), or "the control does no better".
5. **Margin** ("holds" only). "Holds" is a non-inferiority test: the subject's interval must
   reach no further than ``margin``·|c| past c on the wrong side (default 50%: the lower end
   ≥ c/2 for E[Y] ≥ c). A bound attained by the construction (Theorem 1: E = ε₀ when 2^−N of
   the runs lock and the rest converge) can never be shown strictly above c, only not below
   it by more than the margin; with the default margin the run tells E ≥ c from E ≤ c/2.

Decision: **fails** when rules 1–3 hold and the whole interval lies on the wrong side of c
(a significant violation); **holds** when rules 1–5 hold and the interval reaches c;
**inconclusive** otherwise, listing every rule that failed and what would decide it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .stats import mean_ci

__all__ = [
    "Interval",
    "Names",
    "Verdict",
    "decide",
    "before_run",
    "grad_norm_sq_resolution",
    "MIN_REPLICAS",
    "MIN_EVENTS",
    "RESOLUTION_FACTOR",
]

MIN_REPLICAS = 30
MIN_EVENTS = 10
RESOLUTION_FACTOR = 2.0**10
KINDS = ("holds", "fails", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """An estimate of E[Y] with its 95% interval [low, high] from n replicas.

    Attributes
    ----------
    mean, low, high : float
    n : int
        Replicas R behind it.
    """

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, samples, floor: float | None = None) -> Interval:
        """The normal 95% interval m ± 1.96·s/√R of R per-replica values (s = 0 when R = 1).

        ``floor``: clip the interval's ends at this value (0 for a quantity that is ≥ 0).
        """
        values = np.asarray(samples, dtype=np.float64).ravel()
        mean, half = mean_ci(values)
        low, high = float(mean - half), float(mean + half)
        if floor is not None:
            low, high = max(floor, low), max(floor, high)
        return cls(float(mean), low, high, int(values.size))


@dataclass(frozen=True)
class Names:
    """How the verdict's sentences name things (defaults are generic).

    Attributes
    ----------
    quantity : str
        Y's expectation, e.g. ``"E||∇f(X_T)||²"``.
    threshold : str
        c, e.g. ``"ε₀"``.
    subject, control : str
        The run the claim is about and the run it must be told apart from.
    event : str
        The rare event of rule 2, e.g. ``"locked run"``.
    replicas : str
        The option that sets R, e.g. ``"--replicas"``.
    remedy : str
        What moves the runs further (rules 1 and 4 when more replicas cannot help).
    event_remedy : str
        What makes the rare event likelier (rule 2 when R·p ≥ 10 is out of reach).
    threshold_remedy : str
        What makes c resolvable (rule 3).
    """

    quantity: str = "E[Y]"
    threshold: str = "c"
    subject: str = "the run"
    control: str = "the control"
    event: str = "event"
    replicas: str = "replicas"
    remedy: str = "more steps or a larger step size"
    event_remedy: str = "a likelier event"
    threshold_remedy: str = "a larger threshold"


@dataclass(frozen=True)
class Verdict:
    """What a run says about a claim.

    Attributes
    ----------
    kind : {"holds", "fails", "inconclusive"}
    reason : str
        Why, with the numbers.
    would_decide : str
        For "inconclusive": what run would decide it ("" otherwise).
    """

    kind: str
    reason: str
    would_decide: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def decided(self) -> bool:
        return self.kind != "inconclusive"

    def line(self) -> str:
        """``kind: reason`` (and ``; would decide: …`` when inconclusive)."""
        tail = f"; would decide: {self.would_decide}" if self.would_decide else ""
        return f"{self.kind}: {self.reason}{tail}"

    def to_dict(self) -> dict:
        return asdict(self)


def grad_norm_sq_resolution(lipschitz: float, x_norm: float, dtype="float64") -> float:
    """(L·u·||X||)²: the size of ||∇f(X)||² that rounding X alone can give an L-smooth f.

    X is stored to a relative error u (machine epsilon of ``dtype``), so even at an exact
    stationary point the computed gradient can be as large as L·u·||X||.
    """
    return (lipschitz * float(np.finfo(np.dtype(dtype)).eps) * x_norm) ** 2


def _fmt(est: Interval) -> str:
    return f"{est.mean:.4g} [{est.low:.3g}, {est.high:.3g}]"


def _replicas_needed(est: Interval, distance: float) -> int:
    """R at which the interval's half-width shrinks (as 1/√R) to ``distance``."""
    half = max(est.high - est.mean, est.mean - est.low)
    return math.ceil(est.n * (half / distance) ** 2)


def _a_priori(replicas, threshold, resolution, event_probability, names):
    """Rules 1-3 as far as they are known before a run: (problems, remedies, least R)."""
    q, c = names.quantity, names.threshold
    problems, remedies, least = [], [], 0
    if replicas < MIN_REPLICAS:
        problems.append(
            f"R = {replicas} is below {MIN_REPLICAS} replicas, the fewest for a normal 95% interval"
            + (" (R = 1 has no spread: its zero-width interval is no CI)" if replicas == 1 else "")
        )
        least = MIN_REPLICAS
    if event_probability is not None and replicas * event_probability < MIN_EVENTS:
        problems.append(
            f"R·p = {replicas * event_probability:.2g} expected {names.event}s (p = {event_probability:.3g}) "
            f"is below {MIN_EVENTS}: the sample can miss what carries {q}"
        )
        if event_probability * 2**63 > MIN_EVENTS:
            least = max(least, math.ceil(MIN_EVENTS / event_probability))
        else:
            reach = (
                f"R ≥ 10^{math.log10(MIN_EVENTS) - math.log10(event_probability):.0f}"
                if event_probability
                else "no R"
            )
            remedies.append(f"{names.event_remedy} ({reach} is out of reach)")
    if abs(threshold) < RESOLUTION_FACTOR * resolution:
        problems.append(
            f"{c} = {threshold:.3g} is below 2^10 × the float resolution {resolution:.3g} of {q}: "
            "rounding alone moves it by more than 0.1% of " + c
        )
        remedies.append(f"{names.threshold_remedy} ({c} ≥ {RESOLUTION_FACTOR * resolution:.3g})")
    return problems, remedies, least


def before_run(
    replicas: int,
    threshold: float,
    *,
    resolution: float = 0.0,
    event_probability: float | None = None,
    names: Names = Names(),
) -> Verdict | None:
    """The "inconclusive" verdict that rules 1-3 force before any step is run, or None.

    A command calls it first so that a run that cannot decide says so at once, not after
    computing (Theorem 1 at N = 1024: ε₀ = 8.9·10^−308 is below the float resolution).

    Parameters are :func:`decide`'s, with the R the run will have.
    """
    problems, remedies, least = _a_priori(replicas, threshold, resolution, event_probability, names)
    if not problems:
        return None
    wanted = ([f"R ≥ {least} ({names.replicas})"] if least > replicas else []) + remedies
    return Verdict("inconclusive", "; ".join(problems), ", and ".join(dict.fromkeys(wanted)))


def decide(
    subject,
    comparison: str,
    threshold: float,
    *,
    control=None,
    margin: float = 0.5,
    resolution: float = 0.0,
    event_probability: float | None = None,
    names: Names = Names(),
) -> Verdict:
    """The verdict a run supports on the claim ``E[Y] comparison threshold`` (see the module rules).

    Parameters
    ----------
    subject : Interval or array_like (R,)
        Y's estimate, or the R per-replica values (a normal 95% interval is made of them).
    comparison : {">=", "<="}
    threshold : float
        c, finite.
    control : Interval or array_like, optional
        The run the subject must be told apart from (rule 4); none: rule 4 is skipped.
    margin : float in (0, 1]
        Rule 5's non-inferiority margin, relative to |c|.
    resolution : float ≥ 0
        Y's float resolution (rule 3), e.g. :func:`grad_norm_sq_resolution`.
    event_probability : float in [0, 1], optional
        p of rule 2, when E[Y] is carried by a rare event.
    names : Names

    Returns
    -------
    Verdict
    """
    if comparison not in (">=", "<="):
        raise ValueError(f"comparison must be '>=' or '<=', got {comparison!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1], got {margin}")
    est = subject if isinstance(subject, Interval) else Interval.of(subject)
    ctrl = control if control is None or isinstance(control, Interval) else Interval.of(control)
    sign = 1.0 if comparison == ">=" else -1.0
    # The interval's end nearer to violating the claim, and the farther one.
    near, far = (est.low, est.high) if sign > 0 else (est.high, est.low)
    q, c, op = names.quantity, names.threshold, comparison.replace(">=", "≥").replace("<=", "≤")
    replicas = [0]

    def need(n):
        replicas[0] = max(replicas[0], n)

    # Rules 1-3: without them neither "holds" nor "fails" can be drawn.
    problems, remedies, least = _a_priori(est.n, threshold, resolution, event_probability, names)
    need(least)
    if est.n >= MIN_REPLICAS and est.low == est.high:
        problems.append(
            f"all {est.n} values of {q} equal {est.mean:.4g}: a zero-width interval is no CI "
            "(the values have not spread)"
        )
        remedies.append(names.remedy)
    valid = not problems
    if valid and sign * (far - threshold) < 0:
        side = "below" if sign > 0 else "above"
        return Verdict(
            "fails",
            f"{names.subject}'s {q} = {_fmt(est)}: its 95% interval lies {side} {c} = {threshold:.4g}",
        )
    # Rule 4: the control must end on the other side of the subject.
    if ctrl is not None:
        ctrl_far = ctrl.high if sign > 0 else ctrl.low
        if sign * (near - ctrl_far) <= 0:
            problems.append(
                f"{names.control} ({_fmt(ctrl)}) does not end {'below' if sign > 0 else 'above'} "
                f"{names.subject} ({_fmt(est)}): the run cannot tell them apart"
            )
            gap = sign * (est.mean - ctrl.mean)
            half = (est.high - est.low + ctrl.high - ctrl.low) / 2
            if gap > 0 and half > 0 and valid:  # the means are apart: only the widths overlap
                need(math.ceil(max(est.n, ctrl.n) * (half / gap) ** 2))
            else:
                remedies.append(names.remedy)
    # Rule 5: non-inferiority with margin·|c| (only where the interval means something).
    edge = threshold - sign * margin * abs(threshold)
    if valid and sign * (near - edge) < 0:
        problems.append(
            f"{q} = {_fmt(est)} reaches past {edge:.4g} ({c} {'−' if sign > 0 else '+'} "
            f"{margin:.0%}): too wide to tell {q} {op} {c} from a violation by {margin:.0%}"
        )
        need(_replicas_needed(est, max(sign * (threshold - est.mean), sign * (est.mean - edge))))
    if problems:
        wanted = ([f"R ≥ {replicas[0]} ({names.replicas})"] if replicas[0] > est.n else []) + remedies
        return Verdict("inconclusive", "; ".join(problems), ", and ".join(dict.fromkeys(wanted)))
    side = "below" if sign > 0 else "above"
    return Verdict(
        "holds",
        f"{names.subject}'s {q} = {_fmt(est)}: its 95% interval reaches {c} = {threshold:.4g} and stays "
        f"{'above' if sign > 0 else 'below'} {edge:.4g} ({c} {'−' if sign > 0 else '+'} {margin:.0%})"
        + (f"; {names.control} ({_fmt(ctrl)}) ends {side} it" if ctrl else ""),
    )
