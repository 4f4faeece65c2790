"""The claims ledger: one entry per statement of the paper and per finding of the project.

``claims/ledger.toml`` holds, for each claim: ``id``; ``title``; ``source`` ("paper" or
"project"); ``statement`` (quoted or paraphrased, with its section); ``verdict`` (one of
:data:`VERDICTS`); ``scope`` (problem, N, basis, σ, η, T, precision, QR(0) convention, …);
``command`` (what regenerates the evidence) and ``evidence`` (the generated file and the key of
the claim in it, or a pytest node that decides it); ``quick`` (the same at small scale, for
``python -m claims --quick``); ``control`` (the input or algorithm that makes the check fail, and
that it does); ``sensitivity`` (the verdict when η, T, σ, seeds, precision or convention change);
``independent`` (how the number was re-derived without the project's code path); and, for the
findings the README states, ``readme`` (its group there).

The numbers are not retyped here: each evidence file's claim record (written by the command)
carries them, and :mod:`claims.render` quotes them from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["Entry", "load", "ROOT", "LEDGER", "VERDICTS", "FIELDS", "evidence_record"]

ROOT = Path(__file__).resolve().parents[1]
LEDGER = Path(__file__).with_name("ledger.toml")
VERDICTS = ("holds", "holds in scope", "fails", "vacuous", "open")
FIELDS = (
    "id",
    "title",
    "source",
    "statement",
    "verdict",
    "scope",
    "command",
    "evidence",
    "quick",
    "control",
    "sensitivity",
    "independent",
)


@dataclass(frozen=True)
class Entry:
    """One claim of the ledger (see the module docstring for the fields)."""

    id: str
    title: str
    source: str
    statement: str
    verdict: str
    scope: dict
    command: str
    evidence: dict
    quick: dict
    control: str
    sensitivity: dict
    independent: str
    readme: str = ""
    docs: str = ""
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def pytest(self) -> str | None:
        """The pytest node that decides the claim, if its evidence is a test rather than a file."""
        return self.evidence.get("pytest")


def load(path=LEDGER) -> list[Entry]:
    """The ledger's entries, checked: every field present and non-empty, ids unique, verdicts known.

    Raises
    ------
    ValueError
        Naming the entry and the field at fault.
    """
    with open(path, "rb") as f:
        data = tomllib.load(f)
    entries, seen = [], set()
    for i, raw in enumerate(data.get("claim", [])):
        name = raw.get("id", f"#{i}")
        missing = [k for k in FIELDS if not raw.get(k)]
        if missing:
            raise ValueError(f"claim {name}: missing or empty {missing}")
        if raw["verdict"] not in VERDICTS:
            raise ValueError(f"claim {name}: verdict must be one of {VERDICTS}, got {raw['verdict']!r}")
        if raw["source"] not in ("paper", "project"):
            raise ValueError(f"claim {name}: source must be 'paper' or 'project', got {raw['source']!r}")
        if name in seen:
            raise ValueError(f"claim {name}: id used twice")
        if not ("file" in raw["evidence"] and "key" in raw["evidence"]) and "pytest" not in raw["evidence"]:
            raise ValueError(f"claim {name}: evidence needs file and key, or pytest")
        seen.add(name)
        known = {f for f in Entry.__dataclass_fields__ if f != "extra"}
        entries.append(
            Entry(
                **{k: v for k, v in raw.items() if k in known},
                extra={k: v for k, v in raw.items() if k not in known},
            )
        )
    return entries


def evidence_record(entry: Entry, root=ROOT) -> dict | None:
    """The claim's record in its committed evidence file (None for a pytest-decided claim).

    Raises
    ------
    ValueError
        The file or the key is missing.
    """
    if entry.pytest:
        return None
    path = Path(root) / entry.evidence["file"]
    if not path.exists():
        raise ValueError(f"claim {entry.id}: evidence file {entry.evidence['file']} does not exist")
    record = json.loads(path.read_text(encoding="utf-8"))
    for part in entry.evidence["key"].split("/"):
        if not isinstance(record, dict) or part not in record:
            raise ValueError(f"claim {entry.id}: {entry.evidence['file']} has no {entry.evidence['key']!r}")
        record = record[part]
    return record
