"""A grid of runs as a table: :func:`sweep`.

``sweep(problem, methods=["powersgd", "powersgd+"], taus=[1, 10, 100], ranks=[1, 2], ...)`` runs
:func:`simsgd.simulate` once per (method, τ, r) cell — τ only for methods that restart — and
returns a :class:`Table` of records: the final E||∇f(X_T)||², the average (1/T) Σ_t E||∇f(X_t)||²
(Theorem 4's left-hand side) and the final E f(X_T), each with its normal 95% interval, and the
mean floats one node sends per step. Every cell uses the same seed, so the cells are paired
(the same ξ and X_0 in replica k). Results are cached in memory by (problem, settings, seed), and
on disk under ``cache_dir`` when given, so a repeated call (a notebook's slider moved back) costs
nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import weakref
from collections.abc import Iterable

import numpy as np

from .engine import simulate
from .output import atomic_write_json
from .stats import mean_ci

__all__ = ["sweep", "Table", "COLUMNS"]

COLUMNS = (
    "method",
    "tau",
    "rank",
    "final_grad_sq",
    "final_grad_sq_low",
    "final_grad_sq_high",
    "avg_grad_sq",
    "avg_grad_sq_low",
    "avg_grad_sq_high",
    "final_loss",
    "final_loss_low",
    "final_loss_high",
    "floats_per_step",
    "restarts",
)
_RESTARTING = ("powersgd+", "galore")  # the built-in methods whose restart_period matters

_MEMORY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # problem -> {key: record}


class Table(list):
    """A list of records (dicts with :data:`COLUMNS`), with a few conveniences."""

    def column(self, name) -> np.ndarray:
        return np.array([row[name] for row in self])

    def where(self, **match) -> Table:
        """The records whose fields equal ``match``."""
        return Table(row for row in self if all(row[k] == v for k, v in match.items()))

    def to_structured(self) -> np.ndarray:
        """The table as a NumPy structured array (method as a string field)."""
        dtype = [("method", "U32")] + [(name, np.float64) for name in COLUMNS[1:]]
        return np.array([tuple(row[name] for name in COLUMNS) for row in self], dtype=dtype)

    def to_markdown(self, columns=("method", "tau", "rank", "final_grad_sq", "floats_per_step")) -> str:
        def cell(v):
            return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in self]
        return "\n".join(lines) + "\n"


def _interval(values):
    mean, half = mean_ci(values)
    return float(mean), float(mean - half), float(mean + half)


def _record(method, tau, rank, trace) -> dict:
    final = _interval(trace.grad_norm_sq[:, -1])
    average = _interval(trace.grad_norm_sq[:, :-1].mean(axis=1))
    loss = _interval(trace.loss[:, -1])
    return dict(
        zip(
            COLUMNS,
            (
                method,
                tau,
                rank,
                *final,
                *average,
                *loss,
                float(trace.floats_sent.mean()),
                int(trace.restart_steps.sum()),
            ),
        )
    )


def _key(*parts) -> str | None:
    """A content hash of ``parts`` (pickled: arrays by their bytes), or None if they do not pickle
    (e.g. a step-size schedule written as a lambda: then the cell is not cached).
    """
    try:
        return hashlib.sha256(pickle.dumps(parts)).hexdigest()[:24]
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def _cell(problem, cell, memory, cache_dir, progress, labels):
    """One cell's record: from memory, from ``cache_dir``, or run (and kept in both)."""
    key = _key(sorted(cell.items()))
    disk = None if key is None or cache_dir is None else _key(problem, key)
    path = None if disk is None else os.path.join(cache_dir, disk + ".json")
    if key in memory:
        return memory[key]
    if path is not None and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    else:
        trace = simulate(problem, record=("grad_norm_sq", "loss"), progress=progress, **cell)
        record = _record(*labels, trace)
        if path is not None:
            os.makedirs(cache_dir, exist_ok=True)
            atomic_write_json(path, record)
    if key is not None:
        memory[key] = record
    return record


def sweep(
    problem,
    *,
    methods: Iterable = ("powersgd", "powersgd+"),
    taus: Iterable = (10,),
    ranks: Iterable = (1,),
    cache_dir: str | os.PathLike | None = None,
    progress=None,
    **options,
) -> Table:
    """Run ``methods`` × ``taus`` × ``ranks`` on ``problem`` and return a :class:`Table`.

    Parameters
    ----------
    problem
        A problem object (:mod:`simsgd.problems`).
    methods : iterable of str
        Registered names (τ is swept only for "powersgd+" and "galore"; the others get one row
        per rank with ``tau`` None).
    taus : iterable of int
        Restart periods τ ≥ 1.
    ranks : iterable of int
        Ranks r (1 ≤ r ≤ min(m, n)).
    cache_dir : path, optional
        Keep each cell's record in a JSON file there, keyed by a hash of the problem and settings.
    progress : bool or None
        Passed to each run.
    **options
        Any other option of :func:`simsgd.simulate` (``nodes``, ``lr``, ``steps``, ``replicas``,
        ``seed``, ``backend``, …), the same for every cell.

    Returns
    -------
    Table
        One record per cell, in the order methods × ranks × taus.

    Raises
    ------
    ValueError
        As :func:`simsgd.simulate`, naming the option.
    """
    for name in ("method", "rank", "restart_period", "record"):
        if name in options:
            raise ValueError(f"{name} is swept (methods=, ranks=, taus=) or fixed by sweep; do not pass it")
    memory = _MEMORY.setdefault(problem, {})
    table = Table()
    for method in methods:
        restarting = method in _RESTARTING
        for rank in ranks:
            for tau in taus if restarting else (None,):
                cell = dict(options, method=method, rank=rank, restart_period=tau if restarting else 10)
                table.append(dict(_cell(problem, cell, memory, cache_dir, progress, (method, tau, rank))))
    return table
