"""The constants and bounds of the paper's analysis (Appendix B), with its symbols.

Constants (Assumptions 1–3) of a problem:

L          smoothness of f (Assumption 1)
variance   the bound on E||∇F(X; ξ^{(i)}) − ∇f_i(X)||² of Assumption 2 (the paper's σ²;
           called ``variance`` here because the ψ example uses σ for its noise scale)
omega_sq   ω², the bound on ||∇f(X)||² of Assumption 3
G_sq       G² = variance + ω² (Assumption 3 as the paper states it)
f_star     min f;  delta_f = ΔF = f(X_0) − f*

and the bounds, with δ = r / min(m, n) (the paper's r/n with m ≥ n):

Lemma 3    E||(1/N) Σ_i e_t^{(i)}||² ≤ 45 τ² G² / δ²
Lemma 4    E||m_t||² ≤ 92 τ² G² / ((1 − μ)² δ²)
Theorem 4  (1/T) Σ_{t<T} E||∇f(X_t)||² ≤ 4(1 − μ)ΔF/(ηT) + 2Lη·variance/((1 − μ)N)
                                         + 548 L² η² τ² G² / ((1 − μ)⁴ δ²),
           for η ≤ (1 − μ)/(2L) and 0 ≤ μ < 1
Corollary 1  the step size that balances the three terms, and the rate it gives.

Settings outside a statement's hypotheses raise ValueError naming the parameter.

ω² of :class:`~simsgd.problems.HeterogeneousQuadratic` is unbounded on R^{m×n}
(||∇f(X)|| = ||H(X − X*)||). The proofs of Lemmas 3–4 and Theorem 4 use Assumption 3
only through E||(1/N) Σ_i g_t^{(i)}||² ≤ E||∇f(X_t)||² + variance/N ≤ G² at the iterates
of the run, so for that problem ω² must be supplied as a bound over the region the
iterates visit: :func:`visited_omega_sq` gives max_t E||∇f(X_t)||² of a run, from its
lower confidence bound (so that the bound it enters is not inflated by sampling error).
Results that use it are flagged ``omega_sq="visited"``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from ._checks import check_int, check_real
from .stats import max_mean_bounds

__all__ = [
    "Constants",
    "constants",
    "visited_omega_sq",
    "delta",
    "check_step_size",
    "lemma3_bound",
    "lemma4_bound",
    "Theorem4",
    "theorem4_terms",
    "compression_constant",
    "corollary1_lr",
    "corollary1_rate",
]


@dataclass(frozen=True)
class Constants:
    """Assumptions 1–3 for one problem and start X_0.

    Attributes
    ----------
    L, variance, omega_sq, f_star, delta_f : float
        See the module docstring.
    shape : (int, int)
        (m, n) of X.
    omega_sq_source : str
        ``"analytic"`` (a global bound), ``"given"`` (passed by the caller for a problem with one) or
        ``"visited"`` (a bound over the region the iterates of one run visit; see
        :func:`visited_omega_sq`).
    """

    L: float
    variance: float
    omega_sq: float
    f_star: float
    delta_f: float
    shape: tuple
    omega_sq_source: str = "analytic"

    @property
    def G_sq(self) -> float:
        """G² = variance + ω² (Assumption 3)."""
        return self.variance + self.omega_sq

    def to_dict(self) -> dict:
        return dict(asdict(self), G_sq=self.G_sq)


def constants(problem, omega_sq: float | None = None) -> Constants:
    """The constants of Assumptions 1–3 for any problem that carries them.

    The problem is duck-typed: it must expose ``L``, ``variance``, ``f_star``, ``shape``,
    ``x0`` and ``loss``, and may expose ``omega_sq`` (a global bound on ||∇f||², as
    :class:`~simsgd.problems.Psi2x2` and :class:`~simsgd.problems.GeneralCounterexample`
    do). A problem without ``omega_sq`` (the heterogeneous quadratic, where ||∇f|| is
    unbounded on R^{m×n}) needs ``omega_sq`` from the caller, e.g. from
    :func:`visited_omega_sq`.

    Parameters
    ----------
    problem : problem object
    omega_sq : float ≥ 0, optional
        ω², overriding (or supplying) the problem's own.

    Returns
    -------
    Constants
        ``omega_sq_source`` is ``"analytic"`` (the problem's own), ``"given"`` (passed
        although the problem has one) or ``"visited"`` (passed for a problem without one).

    Raises
    ------
    ValueError
        A missing attribute, or ``omega_sq`` missing for a problem without a global ω².
    """
    missing = [
        name for name in ("L", "variance", "f_star", "shape", "x0", "loss") if not hasattr(problem, name)
    ]
    if missing:
        raise ValueError(
            f"problem {type(problem).__name__} lacks {', '.join(missing)}; cannot state its constants"
        )
    own = getattr(problem, "omega_sq", None)
    if omega_sq is not None:
        omega_sq, source = check_real("omega_sq", omega_sq, 0.0), "given" if own is not None else "visited"
    elif own is not None:
        omega_sq, source = float(own), "analytic"
    else:
        raise ValueError(
            f"omega_sq must be given for {type(problem).__name__}: it has no global bound on ||∇f||²; "
            "pass a bound over the visited region, e.g. simsgd.theory.visited_omega_sq(trace.grad_norm_sq)"
        )
    f0 = float(problem.loss(np.asarray(problem.x0, dtype=np.float64)))
    return Constants(
        float(problem.L),
        float(problem.variance),
        float(omega_sq),
        float(problem.f_star),
        f0 - float(problem.f_star),
        tuple(problem.shape),
        source,
    )


def visited_omega_sq(grad_norm_sq, alpha: float = 0.05) -> float:
    """max_t E||∇f(X_t)||² of a run, as its simultaneous lower confidence bound.

    Parameters
    ----------
    grad_norm_sq : array, shape (R, T+1)
        ``Trace.grad_norm_sq``.
    alpha : float in (0, 0.5)

    Returns
    -------
    float
        A value ≤ max_t E||∇f(X_t)||² with probability ≥ 1 − α (CLT, Bonferroni over
        t), clipped at max_t of the smallest observed value so that it is never
        negative. Using the lower bound keeps every bound that contains G² honest:
        a check that passes with it passes with the true value.
    """
    est = max_mean_bounds(grad_norm_sq, alpha)
    floor = float(np.min(grad_norm_sq, axis=0).max())
    return max(est.lower, floor)


def delta(rank: int, shape) -> float:
    """δ = r / min(m, n): the contraction of the rank-r SVD compressor (Lemma 2)."""
    m, n = (int(s) for s in shape)
    rank = check_int("rank", rank, 1, min(m, n))
    return rank / min(m, n)


def _delta(value) -> float:
    return check_real("delta", value, 0.0, 1.0, low_open=True)


def _momentum(value) -> float:
    return check_real("momentum", value, 0.0, 1.0, high_open=True)


def check_step_size(lr: float, momentum: float, L: float) -> float:
    """Return η if Theorem 4's hypothesis 0 < η ≤ (1 − μ)/(2L) holds; else raise ValueError."""
    mu = _momentum(momentum)
    L = check_real("L", L, 0.0, low_open=True)
    return check_real("lr", lr, 0.0, (1.0 - mu) / (2.0 * L), low_open=True)


def lemma3_bound(restart_period: int, G_sq: float, delta: float) -> float:
    """Lemma 3: 45 τ² G² / δ², the bound on E||(1/N) Σ_i e_t^{(i)}||² for every t."""
    tau = check_int("restart_period", restart_period, 1)
    return 45.0 * tau**2 * check_real("G_sq", G_sq, 0.0) / _delta(delta) ** 2


def lemma4_bound(restart_period: int, G_sq: float, delta: float, momentum: float) -> float:
    """Lemma 4: 92 τ² G² / ((1 − μ)² δ²), the bound on E||m_t||² for every t."""
    tau = check_int("restart_period", restart_period, 1)
    mu = _momentum(momentum)
    return 92.0 * tau**2 * check_real("G_sq", G_sq, 0.0) / ((1.0 - mu) ** 2 * _delta(delta) ** 2)


class Theorem4(NamedTuple):
    """The three terms of Theorem 4's right-hand side."""

    optimization: float  # 4(1 − μ)ΔF / (ηT)
    noise: float  # 2Lη·variance / ((1 − μ)N)
    compression: float  # 548 L² η² τ² G² / ((1 − μ)⁴ δ²)

    @property
    def total(self) -> float:
        return self.optimization + self.noise + self.compression


def compression_constant(momentum: float, corrected: bool = False) -> float:
    """The constant c(μ) of Theorem 4's third term c(μ)·L²η²τ²G²/δ².

    The paper's statement has c = 548/(1 − μ)⁴. Its (19) writes ||X_t − X̃_t||² = η²||ē_t||²,
    but X̃_t = X_t − η/(1 − μ)·ē_t, so the term is η²/(1 − μ)²·||ē_t||²; carried through
    (20)–(21) the constant becomes 180/(1 − μ)² + 368μ²/(1 − μ)⁴ (``corrected=True``),
    which is ≤ 548/(1 − μ)⁴ for every μ in [0, 1): the statement survives the erratum.
    """
    mu = _momentum(momentum)
    if corrected:
        return 180.0 / (1.0 - mu) ** 2 + 368.0 * mu**2 / (1.0 - mu) ** 4
    return 548.0 / (1.0 - mu) ** 4


def theorem4_terms(
    c: Constants,
    *,
    lr: float,
    momentum: float,
    restart_period: int,
    delta: float,
    nodes: int,
    steps: int,
    corrected: bool = False,
) -> Theorem4:
    """Theorem 4's bound on (1/T) Σ_{t=0}^{T-1} E||∇f(X_t)||² for PowerSGD+ with MSGD.

    Parameters
    ----------
    c : Constants
    lr : float, η in (0, (1 − μ)/(2L)]
    momentum : float, μ in [0, 1)
    restart_period : int, τ ≥ 1
    delta : float, δ in (0, 1]
    nodes : int, N ≥ 1
    steps : int, T ≥ 1
    corrected : bool
        Use the constant of the third term with the erratum in (19) fixed
        (:func:`compression_constant`) instead of the statement's 548/(1 − μ)⁴.

    Raises
    ------
    ValueError
        Outside the hypotheses (η > (1 − μ)/(2L), μ ∉ [0, 1), ...), naming the parameter.
    """
    eta = check_step_size(lr, momentum, c.L)
    mu, d = _momentum(momentum), _delta(delta)
    tau = check_int("restart_period", restart_period, 1)
    N, T = check_int("nodes", nodes, 1), check_int("steps", steps, 1)
    return Theorem4(
        4.0 * (1.0 - mu) * c.delta_f / (eta * T),
        2.0 * c.L * eta * c.variance / ((1.0 - mu) * N),
        compression_constant(mu, corrected) * c.L**2 * eta**2 * tau**2 * c.G_sq / d**2,
    )


def _corollary_args(c, momentum, restart_period, delta, nodes, steps):
    if c.delta_f <= 0:
        raise ValueError(f"delta_f must be > 0 for Corollary 1 (X_0 is already optimal), got {c.delta_f}")
    return (
        _momentum(momentum),
        check_int("restart_period", restart_period, 1),
        _delta(delta),
        check_int("nodes", nodes, 1),
        check_int("steps", steps, 1),
    )


def corollary1_lr(
    c: Constants, *, momentum: float, restart_period: int, delta: float, nodes: int, steps: int
) -> float:
    """Corollary 1's step size η = (2L/(1−μ) + √(Lσ²T/(2(1−μ)²NΔF)) + ∛(274L²τ²G²T/((1−μ)⁵δ²ΔF)))⁻¹."""
    mu, tau, d, N, T = _corollary_args(c, momentum, restart_period, delta, nodes, steps)
    return 1.0 / (
        2.0 * c.L / (1.0 - mu)
        + math.sqrt(c.L * c.variance * T / (2.0 * (1.0 - mu) ** 2 * N * c.delta_f))
        + (274.0 * c.L**2 * tau**2 * c.G_sq * T / ((1.0 - mu) ** 5 * d**2 * c.delta_f)) ** (1 / 3)
    )


def corollary1_rate(
    c: Constants, *, momentum: float, restart_period: int, delta: float, nodes: int, steps: int
) -> Theorem4:
    """Corollary 1's rate, as three terms (in the fields of :class:`Theorem4`).

    ``optimization`` = 8LΔF/T, ``noise`` = √(32Lσ²ΔF/(NT)),
    ``compression`` = 6·∛274·(LτGΔF)^{2/3} / (T^{2/3} δ^{2/3} (1−μ)^{2/3}).
    """
    mu, tau, d, N, T = _corollary_args(c, momentum, restart_period, delta, nodes, steps)
    G = math.sqrt(c.G_sq)
    return Theorem4(
        8.0 * c.L * c.delta_f / T,
        math.sqrt(32.0 * c.L * c.variance * c.delta_f / (N * T)),
        6.0
        * 274.0 ** (1 / 3)
        * (c.L * tau * G * c.delta_f) ** (2 / 3)
        / (T ** (2 / 3) * d ** (2 / 3) * (1.0 - mu) ** (2 / 3)),
    )
