"""Rows of the bounds report, their verdicts, and the atomic writers of REPORT.md and JSON."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field

from simsgd.stats import Estimate

__all__ = ["Row", "verdict", "write_atomic", "markdown_table", "fmt"]


def verdict(measured: Estimate, bound: float) -> str:
    """``pass`` iff the upper confidence bound is ≤ the bound; a failure is ``violated``
    when even the lower confidence bound exceeds it, ``inconclusive`` otherwise.
    """
    if measured.upper <= bound:
        return "pass"
    return "FAIL (violated)" if measured.lower > bound else "FAIL (inconclusive)"


@dataclass
class Row:
    """One measured statement set against its bound.

    ``params`` holds the parameters (N, r, τ, μ, η, T, ...); ``terms`` the parts of a
    bound that has several (Theorem 4); ``notes`` flags (e.g. ω² from the visited region);
    ``constants`` the problem's :class:`simsgd.theory.Constants` as a dict.
    """

    study: str
    statement: str
    problem: str
    params: dict
    measured: Estimate
    bound: float
    terms: dict = field(default_factory=dict)
    notes: str = ""
    constants: dict = field(default_factory=dict)

    @property
    def slack(self) -> float:
        """Measured / bound (point estimate)."""
        return self.measured.mean / self.bound if self.bound > 0 else float("inf")

    @property
    def verdict(self) -> str:
        return verdict(self.measured, self.bound)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["measured"] = self.measured.to_dict()
        d.update(slack=self.slack, verdict=self.verdict)
        return d


def fmt(x: float) -> str:
    """Four significant digits, plain or scientific."""
    return f"{x:.4g}"


def _params(p: dict) -> str:
    return ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in p.items())


def markdown_table(rows) -> str:
    """The table: statement, problem, parameters, measured [95% one-sided bounds], bound, slack, verdict."""
    lines = [
        "| statement | problem | parameters | measured (mean [LCB, UCB]) | bound | slack | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r.measured
        note = f" ({r.notes})" if r.notes else ""
        lines.append(
            f"| {r.statement} | {r.problem}{note} | {_params(r.params)} | "
            f"{fmt(m.mean)} [{fmt(m.lower)}, {fmt(m.upper)}] | {fmt(r.bound)} | "
            f"{fmt(r.slack)} | {r.verdict} |"
        )
    return "\n".join(lines)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (temp file in the same folder, then os.replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def to_json(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=False, default=float)
