"""Replay the ledger: run each claim's command (quick or full) and compare its verdict with the ledger's.

Claims sharing a command share one run. Commands run as ``python -m …`` subprocesses from the
repository root, ``jobs`` at a time; a claim decided by a test runs that test with pytest. A quick
command with ``inputs`` starts from copies of those committed files in its folder: it re-derives
the verdict from the committed raw data with today's code (for runs too long to repeat quickly).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .ledger import ROOT, Entry

__all__ = ["replay", "Outcome"]

Outcome = dict  # id, ledger, evidence, replayed, agrees, seconds, error


def _argv(command: str, out: Path) -> list[str]:
    words = shlex.split(command.replace("{out}", str(out)))
    if words[:2] != ["python", "-m"]:
        raise ValueError(f"a claim's command must start with 'python -m', got {command!r}")
    return [sys.executable, *words[1:]]


def _run(argv, timeout) -> tuple[int, float, str]:
    start = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        return done.returncode, time.perf_counter() - start, done.stderr[-2000:] + done.stdout[-1000:]
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - start, f"timed out after {timeout} s"


def _record(path: Path, key: str):
    record = json.loads(path.read_text(encoding="utf-8"))
    for part in key.split("/"):
        record = record[part]
    return record


def replay(entries: list[Entry], out, *, quick=True, jobs=2, timeout=900) -> list[Outcome]:
    """Run the entries' commands and read back their verdicts.

    Parameters
    ----------
    entries : list of Entry
    out : path
        Where quick runs write (one folder per command); full runs write where their command says.
    quick : bool
        Run each claim's ``quick`` command (else its full ``command``, which regenerates the
        committed evidence).
    jobs : int
        Commands run at a time.
    timeout : float
        Seconds allowed per command.

    Returns
    -------
    list of Outcome
        Per entry: ``ledger`` (its verdict), ``replayed`` (the run's), ``agrees``, ``seconds``
        (of the command it shared) and ``error`` (None, or why there is no verdict).
    """
    out = Path(out).resolve()
    plans = {}  # command -> (argv, folder)
    for entry in entries:
        spec = entry.quick if quick else {"command": entry.command}
        if "pytest" in spec or entry.pytest:
            node = spec.get("pytest", entry.pytest)
            command = f"python -m pytest -q -p no:cacheprovider {node}"
        else:
            command = spec["command"]
        folder = out / f"run{len(plans)}"
        plans.setdefault(command, (_argv(command, folder), folder))

    inputs = {}  # command -> committed files its run starts from (a re-analysis of committed raw data)
    for entry in entries:
        spec = entry.quick if quick else {}
        if "command" in spec:
            inputs.setdefault(spec["command"], set()).update(spec.get("inputs", ()))

    def execute(item):
        command, (argv, folder) = item
        folder.mkdir(parents=True, exist_ok=True)
        for name in inputs.get(command, ()):
            shutil.copy(ROOT / name, folder / Path(name).name)
        if "pytest" in argv and not (ROOT / "tests").is_dir():
            return command, (None, 0.0, "needs the repository's tests (not installed)")
        return command, _run(argv, timeout)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        results = dict(pool.map(execute, plans.items()))
    outcomes = []
    for entry in entries:
        spec = entry.quick if quick else {"command": entry.command, **entry.evidence}
        pytest_node = spec.get("pytest", entry.pytest)
        command = f"python -m pytest -q -p no:cacheprovider {pytest_node}" if pytest_node else spec["command"]
        code, seconds, log = results[command]
        replayed, error = None, None
        if code is None:
            error = log
        elif pytest_node:  # a passing test confirms the ledger's verdict (with its scope)
            replayed = entry.verdict if code == 0 else "fails"
            error = None if code == 0 else log
        elif code != 0:
            error = f"exit {code}: {log}"
        else:
            folder = plans[command][1]
            path = folder / spec["file"] if quick else ROOT / spec["file"]
            try:
                replayed = _record(path, spec["key"])["verdict"]
            except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
                error = f"no verdict at {spec['key']} in {path}: {exc!r}"
        outcomes.append(
            dict(
                id=entry.id,
                ledger=entry.verdict,
                replayed=replayed,
                agrees=replayed == entry.verdict,
                seconds=round(seconds, 1),
                error=error,
            )
        )
    return outcomes
