"""Theorem 1 checked in exact rational arithmetic: PowerSGD (Algorithm 2) on the ψ problem.

QR needs square roots, but SSP-COMP only needs the column space of P: with rank r = 1
the compressor is the projector Π = P (PᵀP)⁻¹ Pᵀ, and Q_t = Δᵀ P̃ is needed only up to a
non-zero right factor (the next P = Δ Q_t then changes by the same factor and spans the
same line). Both are rational, so every iterate is a ``fractions.Fraction``.

:func:`run_exact` runs one trajectory with the forced start ξ_0 ≡ 1 of Claim 1 and checks,
after every step t, the proof's invariants (Appendix A):

====================  =====================================================
``P_tilde in span(C)``  P̃_t ∝ C (a zero P̃, convention ``"zero"``, counts as 0·C)
``Q in span(C)``        Q_t ∈ span(C)
``e in span(A)``        e_{t+1}^{(i)} ∈ span(A) on every node
``m in span(B)``        m_t ∈ span(B) (Δ̂_t for SGD, the first moment for Adam)
``X - X0 in span(B)``   X_{t+1} − X_0 ∈ span(B)
``grad_norm_sq``        ||∇f(X_{t+1})||² = 4 ψ'(⟨A, X_0⟩)² exactly
====================  =====================================================

It stops at the first broken invariant (that is the answer; once the lock breaks the
rationals' sizes explode) or when a bound on steps, seconds or bits is reached.

The degenerate step P_t = 0 (even N with Σ_i ξ_t^{(i)} = 0, or Q_{t-1} = 0) follows
``degenerate_qr``: ``"previous"`` keeps P̃_{t-1}; ``"native"`` is LAPACK's Householder
answer, the unit vector e₁; ``"zero"`` is P̃ = 0 (PyTorch's Gram–Schmidt with ε > 0);
``"raise"`` stops the run as undefined (PyTorch's Gram–Schmidt with ε = 0 divides 0 by
0 and returns NaN).

Adam needs √v̂. Its update η m̂/(√v̂ + ε) is not rational, but it lies in span(B)
whenever m ∈ span(B), v ∈ span(B∘B) and B's non-zero entries share one magnitude (true
in the paper's and the aligned basis, false in a generic rotated one): then
X_t − X_0 ∈ span(B) with an irrational coefficient that nothing else depends on, since
⟨A, B⟩ = 0. For Adam the run checks exactly that, and does not store X_t.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ._checks import check_choice, check_int, check_real
from .streams import NodeStreams, initial_q

__all__ = [
    "ExactPsi",
    "ExactRun",
    "ExactState",
    "ExactStep",
    "Invariant",
    "exact_step",
    "broken_invariants",
    "run_exact",
    "as_fraction",
    "INVARIANTS",
    "EXACT_BASES",
    "EXACT_OPTIMIZERS",
    "EXACT_DEGENERATE_QR",
]


class Invariant(str, enum.Enum):
    """Claim 1's invariants, in the order a step meets them (values are the report names)."""

    P_TILDE = "P_tilde in span(C)"
    Q = "Q in span(C)"
    ERROR = "e in span(A)"
    MOMENTUM = "m in span(B)"
    X = "X - X0 in span(B)"
    GRAD_NORM = "grad_norm_sq"


INVARIANTS = tuple(i.value for i in Invariant)
EXACT_BASES = ("paper", "aligned", "pythagorean")
EXACT_OPTIMIZERS = ("sgd", "msgd", "adam")
EXACT_DEGENERATE_QR = ("previous", "native", "zero", "raise")

# 2×2 matrices are flat row-major 4-tuples, vectors 2-tuples, all of Fractions.
_ZERO = Fraction(0)


def as_fraction(name: str, value) -> Fraction:
    """``value`` as a Fraction; a float is read through its shortest repr (0.1 -> 1/10).

    Raises
    ------
    ValueError
        If ``value`` is not a finite real number (naming ``name``).
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return Fraction(int(value))
    if isinstance(value, str):
        try:
            return Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name} must be a finite rational number, got {value!r}") from None
    return Fraction(repr(check_real(name, value)))


def _mv(m, v):
    return (m[0] * v[0] + m[1] * v[1], m[2] * v[0] + m[3] * v[1])


def _mtv(m, v):
    return (m[0] * v[0] + m[2] * v[1], m[1] * v[0] + m[3] * v[1])


def _outer(u, v):
    return (u[0] * v[0], u[0] * v[1], u[1] * v[0], u[1] * v[1])


def _add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def _sub(a, b):
    return tuple(x - y for x, y in zip(a, b))


def _scale(s, a):
    return tuple(s * x for x in a)


def _inner(a, b):
    return sum(x * y for x, y in zip(a, b))


def _mean(items):
    total = items[0]
    for item in items[1:]:
        total = _add(total, item)
    return _scale(Fraction(1, len(items)), total)


def _parallel(a, b) -> bool:
    """A ∈ span(b) for b ≠ 0 (all 2×2 minors of [a; b] vanish)."""
    return all(a[i] * b[j] == a[j] * b[i] for i in range(len(a)) for j in range(i + 1, len(a)))


def _bits(values) -> int:
    return max((max(abs(v.numerator).bit_length(), v.denominator.bit_length()) for v in values), default=0)


def _psi_prime(s: Fraction) -> Fraction:
    return 2 * min(max(s, Fraction(-1)), Fraction(1))


@dataclass(frozen=True)
class ExactPsi:
    """The ψ problem of eq. (10) with rational data, in one of three orthonormal bases.

    ``"paper"``: A = DDᵀ, B = 11ᵀ, C ∝ (1, 1). ``"aligned"``: the problem in the basis
    (1, 1)/√2, (1, −1)/√2, where A = diag(0, 2), B = diag(2, 0), C = e₁.
    ``"pythagorean"``: rotated by the rational rotation U = [[3/5, −4/5], [4/5, 3/5]]
    (X' = U X Uᵀ), where neither LAPACK's e₁ nor B's entries are special.

    Attributes
    ----------
    A, B : 4-tuples of Fraction
        Row-major 2×2 matrices; ∇f(X) = ψ'(⟨A, X⟩) A, ||A||² = ||B||² = 4, ⟨A, B⟩ = 0.
    c : 2-tuple of Fraction
        A non-zero vector along C (C itself is c/||c||, irrational in the paper basis).
    x0 : 4-tuple of Fraction
        Default X_0: the paper's I₂ written in this basis (⟨A, X_0⟩ = 2).
    """

    basis: str = "paper"

    def __post_init__(self):
        check_choice("basis", self.basis, EXACT_BASES)

    @property
    def _rotation(self):
        if self.basis == "pythagorean":
            return (Fraction(3, 5), Fraction(-4, 5), Fraction(4, 5), Fraction(3, 5))
        return None

    def _rotate(self, m):
        u = self._rotation
        if u is None:
            return m
        ut = (u[0], u[2], u[1], u[3])
        return _matmul(_matmul(u, m), ut)

    @property
    def A(self):
        if self.basis == "aligned":
            return tuple(map(Fraction, (0, 0, 0, 2)))
        return self._rotate(tuple(map(Fraction, (1, -1, -1, 1))))

    @property
    def B(self):
        if self.basis == "aligned":
            return tuple(map(Fraction, (2, 0, 0, 0)))
        return self._rotate(tuple(map(Fraction, (1, 1, 1, 1))))

    @property
    def c(self):
        if self.basis == "aligned":
            return (Fraction(1), _ZERO)
        u = self._rotation
        one = (Fraction(1), Fraction(1))
        return one if u is None else _mv(u, one)

    @property
    def x0(self):
        return tuple(map(Fraction, (1, 0, 0, 1)))  # U I Uᵀ = I in every basis

    def grad(self, x):
        """∇f(X) = ψ'(⟨A, X⟩) A (4-tuple)."""
        return _scale(_psi_prime(_inner(self.A, x)), self.A)

    def target_grad_norm_sq(self, x0) -> Fraction:
        """4 ψ'(⟨A, X_0⟩)², the value Claim 1 keeps ||∇f(X_t)||² at."""
        return 4 * _psi_prime(_inner(self.A, x0)) ** 2


def _matmul(a, b):
    return (
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
    )


@dataclass
class ExactRun:
    """Outcome of :func:`run_exact`.

    Attributes
    ----------
    outcome : {"held", "broken", "undefined", "budget"}
        All invariants held for every step; one broke; a degenerate step under
        ``degenerate_qr="raise"`` (0/0); or a bound on seconds/bits stopped the run.
    steps_run : int
        Steps completed (t = 0 .. steps_run − 1).
    broken_invariant : str or None
        The first invariant that failed (one of :data:`INVARIANTS`).
    broken_at : int or None
        The step t at which it failed (or the undefined step).
    degenerate_steps : list of int
        Steps whose P_t was 0.
    grad_norm_sq : list of Fraction, length steps_run + 1
        ||∇f(X_t)||², t = 0..steps_run (only while X is rational: not for Adam).
    target : Fraction
        4 ψ'(⟨A, X_0⟩)².
    frozen_from : int or None
        Under ``"zero"``: the step from which Q = 0 and X no longer moves.
    conclusion_broken_at : int or None
        The first t with ||∇f(X_{t+1})||² ≠ target (Theorem 1's conclusion fails).
    max_bits : int
        Largest numerator/denominator bit length met in the state.
    seconds : float
    xi : list of tuple of int
        ξ_t^{(i)} used at each step run.
    x : 4-tuple of Fraction or None
        The last X reached (row-major; None for Adam, whose X is irrational).
    note : str
    stopped_by : {"seconds", "bits"} or None
        For outcome ``"budget"``: which bound stopped the run before ``steps``.
    """

    outcome: str
    steps_run: int
    broken_invariant: str | None
    broken_at: int | None
    degenerate_steps: list = field(default_factory=list)
    grad_norm_sq: list = field(default_factory=list)
    target: Fraction = Fraction(0)
    frozen_from: int | None = None
    conclusion_broken_at: int | None = None
    max_bits: int = 0
    seconds: float = 0.0
    xi: list = field(default_factory=list)
    x: tuple | None = None
    note: str = ""
    stopped_by: str | None = None

    def summary(self) -> dict:
        """JSON-ready dict (Fractions as strings)."""
        return {
            "outcome": self.outcome,
            "steps_run": self.steps_run,
            "broken_invariant": self.broken_invariant,
            "broken_at": self.broken_at,
            "degenerate_steps": len(self.degenerate_steps),
            "first_degenerate_step": self.degenerate_steps[0] if self.degenerate_steps else None,
            "target_grad_norm_sq": str(self.target),
            "frozen_from": self.frozen_from,
            "conclusion_broken_at": self.conclusion_broken_at,
            "max_bits": self.max_bits,
            "seconds": round(self.seconds, 3),
            "note": self.note,
            "stopped_by": self.stopped_by,
        }


def _noise_scales(noise_scale, nodes):
    """σ_i of every node as Fractions: one rational for all, or N of them."""
    if np.ndim(noise_scale) == 0:
        values = [noise_scale] * nodes
    else:
        values = list(np.ravel(np.asarray(noise_scale, dtype=object)))
        if len(values) != nodes:
            raise ValueError(f"noise_scale must have nodes = {nodes} entries, got {len(values)}")
    sigmas = [as_fraction(f"noise_scale[{i}]", v) for i, v in enumerate(values)]
    for i, sigma in enumerate(sigmas):
        if sigma < 0:
            raise ValueError(f"noise_scale[{i}] must be a rational number in [0, ∞), got {sigma}")
    return sigmas


def _noise(xi, seed, replica, nodes, steps, lock_start):
    """A function t -> ξ_t^{(i)} ∈ {−1, 1}: given, or drawn when asked (a run that stops early
    draws no more) from the engine's counter-based streams (same seed, replica and node ids
    as :func:`simsgd.simulate`, so float and exact runs share ξ).
    """
    if xi is not None:
        xi = np.asarray(xi)
        if xi.shape != (steps, nodes) or not np.all(np.isin(xi, (-1, 1))):
            raise ValueError(f"xi must be an array of ±1 of shape (steps, nodes) = ({steps}, {nodes})")
        rows = [tuple(int(v) for v in row) for row in xi]
        draw = rows.__getitem__
    else:
        streams = NodeStreams(seed, [replica], np.arange(nodes))
        draw = lambda t: tuple(int(v) for v in streams.at(t).rademacher()[0])  # noqa: E731

    def at(t):
        return (1,) * nodes if lock_start and t == 0 else draw(t)

    return at


@dataclass(frozen=True)
class ExactState:
    """PowerSGD's state between exact steps (rationals; 2×2 matrices as row-major 4-tuples).

    x : X_t;  m, v : the optimiser's moments (v: Adam only);  errors : e_t^{(i)} per node;
    q : Q_{t-1} up to a positive factor;  previous : P̃_{t-1} up to a non-zero factor (None
    before the first step);  decay : Π_{s<t} (1 − η_s λ), the factor decoupled weight decay
    has put on X_0 (1 without decay).
    """

    x: tuple
    m: tuple
    v: tuple
    errors: tuple
    q: tuple
    previous: tuple | None = None
    decay: Fraction = Fraction(1)


@dataclass(frozen=True)
class ExactStep:
    """What one exact step made, for the invariant checker.

    p_tilde : P̃_t up to a factor, or None (P̃ = 0 under ``"zero"``);  degenerate : P_t = 0;
    undefined : P_t = 0 under ``"raise"`` (QR(0) is 0/0; nothing else was computed).
    """

    state: ExactState
    p_tilde: tuple | None
    degenerate: bool
    undefined: bool = False


@dataclass(frozen=True)
class _Options:
    sigmas: tuple
    mu: Fraction
    optimizer: str
    degenerate_qr: str
    weight_decay: Fraction


def exact_step(problem: ExactPsi, state: ExactState, xi, eta: Fraction, options: _Options) -> ExactStep:
    """One iteration of PowerSGD (rank 1, local error feedback) in rational arithmetic; pure.

    ``xi`` are the N signs ξ_t^{(i)}. QR is replaced by the projector Π = P(PᵀP)⁻¹Pᵀ (see the
    module docstring); on P_t = 0 the convention ``options.degenerate_qr`` applies.
    """
    zero4 = (_ZERO,) * 4
    grad = problem.grad(state.x)
    deltas = [
        _add(_add(grad, _scale(Fraction(s), _sub(_scale(sigma, problem.B), grad))), e)
        for s, sigma, e in zip(xi, options.sigmas, state.errors)
    ]  # Δ^{(i)} = g^{(i)} + e^{(i)}
    p = _mean([_mv(d, state.q) for d in deltas])  # P = mean_i Δ^{(i)} Q_{t-1}
    degenerate = p == (_ZERO, _ZERO)
    if degenerate:
        if options.degenerate_qr == "raise":
            return ExactStep(state, None, True, undefined=True)
        if options.degenerate_qr == "zero":
            p = None
        elif options.degenerate_qr == "previous" and state.previous is not None:
            p = state.previous
        else:  # LAPACK's answer: e₁
            p = (Fraction(1), _ZERO)
    if p is None:  # P̃ = 0: nothing sent
        q_local = [(_ZERO, _ZERO)] * len(deltas)
        local_hat = [zero4] * len(deltas)
    else:
        pp = _inner(p, p)
        q_local = [_mtv(d, p) for d in deltas]  # Q^{(i)} = Δ^{(i)ᵀ} P (up to 1/||P||)
        local_hat = [_scale(1 / pp, _outer(p, qi)) for qi in q_local]  # Π Δ^{(i)}
    q_new = _mean(q_local)
    scale = max(abs(q_new[0]), abs(q_new[1]))
    q = q_new if scale == 0 else _scale(1 / scale, q_new)  # a positive right factor
    errors = tuple(_sub(d, h) for d, h in zip(deltas, local_hat))  # e_{t+1} = Δ − P̃ Q^{(i)ᵀ}
    delta_hat = _mean(local_hat)
    m, v, x, decay = state.m, state.v, state.x, state.decay
    if options.optimizer == "adam":
        beta1, beta2 = Fraction(9, 10), Fraction(999, 1000)
        m = _add(_scale(beta1, m), _scale(1 - beta1, delta_hat))
        v = _add(_scale(beta2, v), _scale(1 - beta2, tuple(h * h for h in delta_hat)))
    else:
        m = _add(_scale(options.mu if options.optimizer == "msgd" else _ZERO, m), delta_hat)
        shrink = 1 - eta * options.weight_decay  # decoupled weight decay
        x, decay = _sub(_scale(shrink, x), _scale(eta, m)), decay * shrink
    new = ExactState(x, m, v, errors, q, p if p is not None else state.previous, decay)
    return ExactStep(new, p, degenerate)


def broken_invariants(problem: ExactPsi, step: ExactStep, x0, target, optimizer: str) -> list:
    """The :class:`Invariant` s that ``step`` breaks, in the order the step meets them.

    X's invariant is X_{t+1} − d_t X_0 ∈ span(B) with d_t the weight-decay factor
    (``ExactState.decay``; d = 1 without decay). For Adam (whose X is irrational) X's
    invariant is the sufficient condition of the module docstring and the gradient is not
    checked.
    """
    A, B, c = problem.A, problem.B, problem.c
    zero2, zero4 = (_ZERO, _ZERO), (_ZERO,) * 4
    s = step.state
    broken = []
    if step.p_tilde is not None and not _parallel(step.p_tilde, c):
        broken.append(Invariant.P_TILDE)
    if s.q != zero2 and not _parallel(s.q, c):
        broken.append(Invariant.Q)
    if not all(e == zero4 or _parallel(e, A) for e in s.errors):
        broken.append(Invariant.ERROR)
    if s.m != zero4 and not _parallel(s.m, B):
        broken.append(Invariant.MOMENTUM)
    if optimizer == "adam":
        b_squared = tuple(b * b for b in B)
        in_span = len({abs(b) for b in B if b != 0}) == 1
        if not ((s.v == zero4 or _parallel(s.v, b_squared)) and (s.m == zero4 or in_span)):
            broken.append(Invariant.X)
        return broken
    moved = _sub(s.x, _scale(s.decay, x0))
    if moved != zero4 and not _parallel(moved, B):
        broken.append(Invariant.X)
    grad = problem.grad(s.x)
    if _inner(grad, grad) != target:
        broken.append(Invariant.GRAD_NORM)
    return broken


def run_exact(
    noise_scale,
    nodes: int,
    steps: int,
    *,
    x0=None,
    q_init=None,
    lr="1/1000",
    momentum="9/10",
    optimizer: str = "msgd",
    basis: str = "paper",
    degenerate_qr: str = "previous",
    lock_start: bool = True,
    xi=None,
    seed: int = 0,
    replica: int = 0,
    max_seconds: float = 10.0,
    max_bits: int = 200_000,
    stop_on=INVARIANTS,
    weight_decay=0,
) -> ExactRun:
    """Run PowerSGD (SSP-COMP every step, rank 1, local error feedback) exactly and check
    Claim 1's invariants after every step: :func:`exact_step`, then :func:`broken_invariants`.

    Parameters
    ----------
    noise_scale : rational σ ≥ 0, or N of them (σ_i per node)
    nodes : int, N ≥ 1
    steps : int, T ≥ 1
    x0 : 4 rationals (row-major 2×2), optional
        X_0 in this basis; default the paper's I₂.
    q_init : 2 rationals, optional
        Q_{-1}; default the engine's standard-normal draw for (seed, replica), read exactly.
    lr : rational > 0 or callable t -> rational
        η_t (floats are read through their repr, 0.001 -> 1/1000).
    momentum : rational in [0, 1)
        μ of MSGD (ignored by SGD and Adam).
    optimizer : {"sgd", "msgd", "adam"}
        Adam: β₁ = 9/10, β₂ = 999/1000 (the engine's); see the module docstring.
    basis : {"paper", "aligned", "pythagorean"}
    degenerate_qr : {"previous", "native", "zero", "raise"}
    lock_start : bool
        Force ξ_0 ≡ 1 (the event of Claim 1).
    xi : array (steps, nodes) of ±1, optional
        The noise; default the engine's streams for (seed, replica).
    seed, replica : int ≥ 0
    max_seconds : float > 0
    max_bits : int ≥ 64
        Stop (outcome ``"budget"``) when a numerator or denominator gets this long.
    stop_on : iterable of str
        The invariants whose failure stops the run (default all). With
        ``stop_on=("grad_norm_sq",)`` the run goes on past a broken basis invariant until
        Theorem 1's conclusion itself fails (Adam always stops when X leaves span(B)).
    weight_decay : rational λ ≥ 0
        Decoupled weight decay of SGD/MSGD, X ← (1 − ηλ) X − η m (as
        ``simulate(weight_decay=λ)``); X's invariant becomes X_t − d_t X_0 ∈ span(B).

    Returns
    -------
    ExactRun
    """
    nodes = check_int("nodes", nodes, 1)
    sigmas = _noise_scales(noise_scale, nodes)
    steps = check_int("steps", steps, 1)
    check_choice("optimizer", optimizer, EXACT_OPTIMIZERS)
    check_choice("degenerate_qr", degenerate_qr, EXACT_DEGENERATE_QR)
    seed, replica = check_int("seed", seed, 0), check_int("replica", replica, 0)
    check_real("max_seconds", max_seconds, 0.0, low_open=True)
    check_int("max_bits", max_bits, 64)
    mu = as_fraction("momentum", momentum)
    if not 0 <= mu < 1:
        raise ValueError(f"momentum must be a rational number in [0, 1), got {mu}")
    decay = as_fraction("weight_decay", weight_decay)
    if decay < 0 or (decay > 0 and optimizer == "adam"):
        raise ValueError(f"weight_decay must be a rational number ≥ 0 (0 for Adam), got {decay}")
    problem = ExactPsi(basis)
    x0 = problem.x0 if x0 is None else tuple(as_fraction("x0", v) for v in np.ravel(x0).tolist())
    if len(x0) != 4:
        raise ValueError("x0 must have 4 entries (a 2×2 matrix, row-major)")
    if q_init is None:
        q_init = initial_q(seed, [replica], 2, 1)[0, :, 0].tolist()
    q = tuple(as_fraction("q_init", v) for v in np.ravel(q_init).tolist())
    if len(q) != 2:
        raise ValueError("q_init must have 2 entries (Q_{-1} of shape (2, 1))")
    stop_on = (
        set(INVARIANTS)
        if optimizer == "adam"
        else {Invariant(name).value for name in stop_on_checked(stop_on)}
    )

    def eta(t):
        value = as_fraction(f"lr({t})" if callable(lr) else "lr", lr(t) if callable(lr) else lr)
        if value <= 0:
            raise ValueError(f"lr must be a rational number in (0, ∞), got {value}")
        return value

    options = _Options(tuple(sigmas), mu, optimizer, degenerate_qr, decay)
    target = problem.target_grad_norm_sq(x0)
    noise = _noise(xi, seed, replica, nodes, steps, lock_start)
    zero4 = (_ZERO,) * 4
    state = ExactState(x0, zero4, zero4, (zero4,) * nodes, q)
    run = ExactRun(
        "held",
        0,
        None,
        None,
        target=target,
        xi=[],
        grad_norm_sq=[_inner(problem.grad(x0), problem.grad(x0))],
    )
    start = time.monotonic()
    reached = [x0]  # the last X the run computed before it stopped

    def finish(outcome, note=""):
        if run.broken_invariant is None:  # "broken" keeps the first broken invariant's outcome
            run.outcome = outcome
        run.note, run.x = note, None if optimizer == "adam" else reached[0]
        run.seconds = time.monotonic() - start
        return run

    for t in range(steps):
        run.xi.append(noise(t))
        step = exact_step(problem, state, run.xi[-1], eta(t), options)
        if step.degenerate:
            run.degenerate_steps.append(t)
        if step.undefined:
            run.broken_at = t
            return finish(
                "undefined", "P_t = 0: QR(P_t) divides 0 by 0 (PyTorch's Gram–Schmidt with ε = 0 returns NaN)"
            )
        state = step.state
        if state.q == (_ZERO, _ZERO) and step.p_tilde is None and run.frozen_from is None:
            run.frozen_from = t
        broken = broken_invariants(problem, step, x0, target, optimizer)
        stop = next((name for name in broken if name.value in stop_on), None)
        for name in broken[: broken.index(stop) + 1] if stop else broken:  # as far as the step got
            if run.broken_invariant is None:
                run.outcome, run.broken_invariant, run.broken_at = "broken", name.value, t
            if name is Invariant.GRAD_NORM and run.conclusion_broken_at is None:
                run.conclusion_broken_at = t
        if stop in (None, Invariant.X, Invariant.GRAD_NORM) and not (optimizer == "adam" and stop):
            run.steps_run = t + 1  # X_{t+1} was reached (and, for Adam, is known to be in the lock)
            reached[0] = state.x
            if optimizer != "adam":
                grad = problem.grad(state.x)
                run.grad_norm_sq.append(_inner(grad, grad))
        if stop is not None:
            note = ""
            if optimizer == "adam" and stop is Invariant.X:
                note = (
                    "Adam's elementwise √v̂ leaves span(B): "
                    "B's non-zero entries differ in magnitude in this basis"
                )
            return finish("broken", note)
        run.max_bits = max(run.max_bits, _bits(state.x + state.m + state.v + state.q + state.errors[0]))
        if run.max_bits >= max_bits or time.monotonic() - start > max_seconds:
            run.stopped_by = "bits" if run.max_bits >= max_bits else "seconds"
            return finish(
                "budget",
                f"stopped after {t + 1} steps: {run.max_bits} bits, {time.monotonic() - start:.1f} s",
            )
    return finish("held")


def stop_on_checked(stop_on):
    """``stop_on`` as a set of invariant names, each one of :data:`INVARIANTS`."""
    names = {getattr(name, "value", name) for name in stop_on}
    unknown = names - set(INVARIANTS)
    if unknown:
        raise ValueError(f"stop_on must be a subset of {INVARIANTS}; got {sorted(unknown)}")
    return names
