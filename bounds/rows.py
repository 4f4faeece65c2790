"""A checked statement: measured left-hand side, bound, what doing nothing scores, and a negative control."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from simsgd.stats import Estimate

__all__ = ["verdict", "Control", "Row", "fmt"]


def verdict(measured: Estimate, bound: float) -> str:
    """``pass`` iff the upper confidence bound is ≤ the bound; ``violated`` when even the lower
    confidence bound exceeds it; ``inconclusive`` otherwise.
    """
    if measured.upper <= bound:
        return "pass"
    return "violated" if measured.lower > bound else "inconclusive"


@dataclass
class Control:
    """The same left-hand side measured for a method the statement does not cover, against the same bound.

    ``expected`` says what theory predicts for it (``"violated"`` where Theorem 1's ε₀ is
    above the bound, else ``""``: no prediction).
    """

    method: str
    measured: Estimate
    bound: float
    expected: str = ""

    @property
    def verdict(self) -> str:
        return verdict(self.measured, self.bound)

    def to_dict(self) -> dict:
        return dict(
            method=self.method, measured=self.measured.to_dict(), verdict=self.verdict, expected=self.expected
        )


@dataclass
class Row:
    """One statement of the paper set against measurement.

    Attributes
    ----------
    statement : str
        ``"Theorem 4"``, ``"Corollary 1"``, ``"Lemma 3"`` or ``"Lemma 4"``.
    problem : str
        The problem's label; ``spec`` the dict :func:`bounds.problems.make` builds it from.
    params : dict
        N, r, δ, τ, μ, η, T and the method: with ``constants`` everything the bound needs.
    constants : dict
        :class:`simsgd.theory.Constants` as a dict (L, variance, ω², G², f*, ΔF).
    bound : float
        The statement's right-hand side; ``terms`` its parts where it has several.
    measured : Estimate
        The left-hand side for PowerSGD+ (mean, one-sided LCB and UCB).
    trivial_bound : float
        What doing nothing scores on the same left-hand side: ||∇f(X_0)||² for Theorem 4 /
        Corollary 1 (X_t ≡ X_0); for Lemmas 3–4 the mean of the same quantity for PowerSGD
        (never restarted). ``vacuous`` = bound ≥ trivial_bound: the row could not fail.
    control : Control
        The negative control on the same problem and schedule.
    baseline : Estimate or None
        The same left-hand side for uncompressed MSGD (``method="full"``), same seeds.
    """

    statement: str
    problem: str
    spec: dict
    params: dict
    constants: dict
    bound: float
    measured: Estimate
    trivial_bound: float
    control: Control
    terms: dict = field(default_factory=dict)
    baseline: Estimate | None = None
    notes: str = ""

    @property
    def vacuous(self) -> bool:
        return self.bound >= self.trivial_bound

    @property
    def verdict(self) -> str:
        """The statistical verdict; a vacuous row that passes is ``vacuous``, never ``pass``."""
        v = verdict(self.measured, self.bound)
        return "vacuous" if v == "pass" and self.vacuous else v

    @property
    def slack(self) -> float:
        """Measured mean / bound."""
        return self.measured.mean / self.bound if self.bound > 0 else float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            measured=self.measured.to_dict(),
            control=self.control.to_dict(),
            baseline=None if self.baseline is None else self.baseline.to_dict(),
            vacuous=self.vacuous,
            verdict=self.verdict,
            slack=self.slack,
        )
        return d


def fmt(x) -> str:
    """Four significant digits, plain or scientific; ints as they are."""
    return str(x) if isinstance(x, (int, str)) else f"{x:.4g}"
