"""Targeted search for worst cases of Lemma 3, Lemma 4 and Theorem 4, and replays of the saved ones.

The search runs under the Hypothesis profile in force (``ci``: small budget; ``deep``:
``HYPOTHESIS_PROFILE=deep pytest tests/test_bounds_search.py``). The JSON files in
tests/data were written by ``python -m bounds.search --out tests/data`` (command inside each).
"""

from __future__ import annotations

import json
import pathlib

import pytest
from hypothesis import given, target

from bounds.search import STATEMENTS, instances, measure

DATA = pathlib.Path(__file__).parent / "data"
SAVED = sorted(DATA.glob("bounds_worst_*.json"))


@given(instances())
def test_every_bound_holds_where_the_search_pushes(instance):
    result = measure(instance)
    for statement in STATEMENTS:
        target(result[statement]["ratio"], label=statement)
    for statement in STATEMENTS:
        r = result[statement]
        assert r["upper"] <= r["bound"], (statement, instance, r)


def test_the_check_can_fail_powersgd_breaks_lemma3():
    """Negative control: without restarts the error of the locked run grows like 16t², past 45τ²G²/δ²."""
    locked = dict(
        spec={"family": "psi", "basis": "aligned", "noise_scale": 5.0, "lock_start": True},
        nodes=2,
        rank=1,
        restart_period=1,
        momentum=0.0,
        lr=1e-5,
        steps=200,
    )
    bad = measure(locked, method="powersgd")["Lemma 3"]
    assert bad["measured"] > bad["bound"] and bad["ratio"] > 10
    good = measure(locked)["Lemma 3"]
    assert good["upper"] <= good["bound"]


def test_saved_worst_cases_exist_for_every_statement():
    assert {json.loads(p.read_text())["statement"] for p in SAVED} == set(STATEMENTS)


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
def test_saved_worst_case_replays(path):
    """Same seed, same numbers: a change in a bound or in the engine shows here."""
    saved = json.loads(path.read_text())
    r = measure(saved["instance"], saved["replicas"], saved["run_seed"])[saved["statement"]]
    assert r["measured"] == pytest.approx(saved["measured"], rel=1e-9)
    assert r["bound"] == pytest.approx(saved["bound"], rel=1e-12)
    assert r["upper"] <= r["bound"]


@pytest.mark.parametrize("argv", [["--examples", "-1"], ["--seed", "-2"], ["--out", "FILE"]])
def test_search_cli_bad_budget_is_one_line_exit_2(argv, tmp_path, capsys, monkeypatch):
    from bounds import search
    from simsgd.cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("keep")
    monkeypatch.setattr(search, "search", lambda *a: pytest.fail("searched before checking"))
    assert run(search.main, argv, prog="python -m bounds.search") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]
