"""One setting of the study as rows: Theorem 4, Corollary 1, Lemma 3 or Lemma 4 checked by
:mod:`simsgd.check` — the one home of the bounds, their terms, vacuity and status — with what the
study adds: the row's id, the problem's spec and label, and the scope of the control's predicted
violation (:func:`bounds.problems.control_scope`).

A Theorem 4 setting gives one row per horizon T from one run per method (prefix averages: the
theorem holds for every T at a fixed η). A row *tests compression* when it is non-vacuous, holds,
and PowerSGD+'s paired excess over uncompressed MSGD is significant (one-sided 95% lower bound
> 0): only then does the bound's pass say something about the compressed method rather than MSGD.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from simsgd import check

from . import problems

__all__ = ["Setting", "run", "tests_compression", "verdict", "share_model"]

STATEMENTS = ("Theorem 4", "Corollary 1", "Lemma 3", "Lemma 4")


@dataclass(frozen=True)
class Setting:
    """One problem and schedule of the study.

    Attributes
    ----------
    name : str
        The prefix of its rows' ids.
    statement : str
        One of :data:`STATEMENTS`.
    spec : dict
        The problem (:func:`bounds.problems.make`).
    nodes, rank, restart_period, momentum
        N, r, τ, μ (MSGD).
    lr : float or None
        η; None for Corollary 1 (its own η at T).
    horizons : tuple of int
        Theorem 4: the T of each row; the others: (T,).
    replicas : int
    seed : int
        Added to the study's seed (another seed set for the same setting).
    lr_scale : float
        Corollary 1 only: run at this multiple of its η (≠ 1 is outside the statement: a sensitivity).
    control : bool
        Also run PowerSGD (no restart) against the same bound (Theorem 4, Corollary 1). Off where
        Theorem 1 predicts nothing (ε₀ below the bound) and the run is long: it costs as much as
        PowerSGD+.
    """

    name: str
    statement: str
    spec: dict
    nodes: int
    rank: int
    restart_period: int
    momentum: float
    lr: float | None
    horizons: tuple
    replicas: int
    seed: int = 0
    lr_scale: float = 1.0
    control: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def _checks(s: Setting, problem, seed: int, alpha: float) -> list:
    kw = dict(
        nodes=s.nodes,
        rank=s.rank,
        restart_period=s.restart_period,
        momentum=s.momentum,
        replicas=s.replicas,
        seed=seed + s.seed,
        omega_sq=problems.omega_sq_for(problem),
        alpha=alpha,
    )
    if s.statement == "Theorem 4":
        return check.check_theorem4_at(problem, horizons=s.horizons, lr=s.lr, control=s.control, **kw)
    if s.statement == "Corollary 1":
        return [
            check.check_corollary1(problem, steps=s.horizons[0], lr_scale=s.lr_scale, control=s.control, **kw)
        ]
    lemma = {"Lemma 3": check.check_lemma3, "Lemma 4": check.check_lemma4}[s.statement]
    return [lemma(problem, lr=s.lr, steps=s.horizons[0], **kw)]


def run(s: Setting, seed: int, alpha: float = 0.05) -> list:
    """The rows of one setting, as JSON-ready dicts (:meth:`simsgd.check.BoundCheck.to_dict` and
    ``id``, ``setting``, ``problem``, ``spec``, ``control_scope``, ``tests_compression``).
    """
    if s.statement not in STATEMENTS:
        raise ValueError(f"statement must be one of {STATEMENTS}, got {s.statement!r}")
    problem = problems.make(s.spec, s.nodes)
    rows = []
    for c in _checks(s, problem, seed, alpha):
        row = c.to_dict()
        row.update(
            id=f"{s.name}@T={c.settings['T']}",
            setting=s.name,
            problem=problems.label(s.spec),
            spec=dict(s.spec),
            control_scope=problems.control_scope(s.spec),
        )
        row["tests_compression"] = tests_compression(row)
        rows.append(row)
    return rows


def tests_compression(row: dict) -> bool:
    """Non-vacuous, holds, and the paired excess over MSGD is significant."""
    return row["status"] == "holds" and not row["vacuous"] and bool(row.get("excess_significant"))


def verdict(rows: list) -> str:
    """A claim's verdict from its rows, in the claims ledger's words: ``"fails"`` if any fails;
    ``"vacuous"`` if none is non-vacuous; ``"open"`` if any non-vacuous row is inconclusive, or
    (Theorem 4 and Corollary 1) no row tests compression; else ``"holds in scope"`` (what finite
    runs can say).
    """
    live = [r for r in rows if not r["vacuous"]]
    if any(r["status"] == "fails" for r in rows):
        return "fails"
    if not live:
        return "vacuous"
    if any(r["status"] == "inconclusive" for r in live):
        return "open"
    paired = [r for r in live if r.get("excess") is not None]
    if paired and not any(tests_compression(r) for r in paired):
        return "open"
    return "holds in scope"


def share_model(row: dict, T: int) -> float:
    """The excess share a Theorem 4 row predicts at horizon ``T``: (C + eT)/(M + C + eT).

    From the row's horizon T₀: e = the paired excess over t in [T₀/2, T₀) (the stationary part),
    M = T₀ × MSGD's mean (ψ's MSGD has no floor: its sum has converged), C = T₀ × excess − e·T₀
    (the start-up part). Where e still grows after T₀ (the aligned basis) the prediction is low.
    """
    T0 = row["settings"]["T"]
    e, total = row["tail_excess"]["mean"], row["excess"]["mean"] * T0
    msgd = (row["measured"]["mean"] - row["excess"]["mean"]) * T0
    c = total - e * T0
    return (c + e * T) / (msgd + c + e * T)
