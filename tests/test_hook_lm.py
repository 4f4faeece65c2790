"""The byte-level LM comparison (``python -m simsgd.examples.lm``): quick mode, CLI, analysis."""

import csv
import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from simsgd.cli import run  # noqa: E402
from simsgd.examples import bytelm, lm, lm_analysis  # noqa: E402


@pytest.mark.slow  # spawns gloo process groups
def test_quick_run_writes_a_complete_comparison(tmp_path, capsys):
    assert run(lm.main, ["--quick", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(lm.NAMES)
    with open(tmp_path / "lm.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"all-reduce", "PowerSGD", "PowerSGD+", "GaLore-style"}
    assert {r["seed"] for r in rows} == {"0", "1", "2"}
    assert all(math.isfinite(float(r["validation_loss"])) for r in rows)
    last = {(r["method"], r["seed"]): r for r in rows if r["step"] == "20"}
    floats = {m: int(r["floats_per_node"]) for (m, seed), r in last.items() if seed == "0"}
    # Warm-up (10 steps) sends everything; then PowerSGD (m+n)r per matrix, PowerSGD+ τ = 10
    # adds one mn restart, the GaLore-style baseline one mn refresh and nr in between.
    assert floats["PowerSGD"] < floats["GaLore-style"] < floats["all-reduce"]
    assert floats["PowerSGD"] < floats["PowerSGD+"] < floats["all-reduce"]
    first = {r["method"]: float(r["validation_loss"]) for r in rows if r["step"] == "0" and r["seed"] == "0"}
    assert len(set(first.values())) == 1  # the same initial weights for every method
    assert all(float(r["validation_loss"]) < first[m] for (m, _), r in last.items())  # every run learns
    assert all(float(r["seconds"]) > 0 for r in last.values())
    tost = (tmp_path / "lm_tost.md").read_text()
    assert tost.count("| PowerSGD+ r=4 τ=10 |") == 2  # against PowerSGD and against the all-reduce
    assert all(
        any(v in line for v in ("equivalent", "different", "undecided")) for line in tost.splitlines()[4:]
    )
    claims = json.loads((tmp_path / "lm_claims.json").read_text())["claims"]
    assert set(claims) == {"LM-plus", "LM-galore"}
    assert all(c["verdict"] in ("holds", "holds in scope", "fails", "open") for c in claims.values())
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["margin"] == lm.MARGIN and provenance["settings"]["quick"]
    assert provenance["load_average_1min"]["samples"] >= 2 and provenance["corpus"]["train"]["bytes"] > 0
    assert "| PowerSGD+ r=4 τ=10 |" in capsys.readouterr().out
    # --analyse rewrites the same tables from lm.csv alone.
    tables = {name: (tmp_path / name).read_text() for name in ("lm_table.md", "lm_tost.md", "lm_target.md")}
    for name in tables:
        (tmp_path / name).unlink()
    assert run(lm.main, ["--analyse", "--quick", "--out", str(tmp_path)]) == 0
    assert {name: (tmp_path / name).read_text() for name in tables} == tables


def test_corpus_is_split_by_file_and_reproducible():
    train, validation, info = bytelm.read_corpus(50_000)
    again = bytelm.read_corpus(50_000)[2]
    assert info == again
    assert info["train"]["sha256"] != info["validation"]["sha256"]
    assert 0 < len(validation) < len(train) <= 50_000 + info["train"]["files"]
    assert int(train.max()) < 256


def test_quick_changes_defaults_only():
    args = lm._parse(["--quick", "--steps", "7", "--seeds", "4", "5"])
    assert (args.steps, args.seeds, args.world_size, args.eval_every) == (7, [4, 5], 2, 7)
    full = lm._parse([])
    assert (full.steps, len(full.seeds), full.world_size, full.ranks) == (1000, 10, 4, [4])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps"),
        (["--quick", "--steps", "0"], "--steps"),
        (["--quick", "--world-size", "0"], "--world-size"),
        (["--quick", "--world-size", "1000"], "--world-size"),
        (["--world-size", "1000"], "--world-size"),
        (["--eval-every", "2000"], "--eval-every"),
        (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--ranks", "0"], "--ranks"),
        (["--seeds", "1", "1"], "--seeds"),
        (["--width", "30", "--heads", "4"], "--width"),
        (["--out", "/proc/nope"], "--out"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_before_any_launch(argv, message, capsys, monkeypatch):
    def launch(*args, **kwargs):
        raise AssertionError("launched")

    monkeypatch.setattr(lm, "launch", launch)
    assert run(lm.main, argv, prog="lm") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("lm: error:")


def _rows(shift, seeds=10, spread=0.002, steps=(0, 50, 100), fall=0.0, seed=0, base_spread=0.05):
    """lm.csv rows: all-reduce, PowerSGD, and PowerSGD+ offset by ``shift`` from PowerSGD."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        base = 2.0 + base_spread * rng.standard_normal()
        finals = {
            ("all-reduce", 0, 0): base,
            ("PowerSGD", 4, 0): base + 0.001 * rng.standard_normal(),
        }
        finals[("PowerSGD+", 4, 10)] = finals[("PowerSGD", 4, 0)] + shift + spread * rng.standard_normal()
        for (method, rank, tau), final in finals.items():
            for k, step in enumerate(steps):
                loss = final + (3.0 if step == 0 else fall * (len(steps) - 1 - k))
                rows.append((method, rank, tau, s, step, loss, 1000 * step, 0.1 * step))
    return rows


@pytest.mark.parametrize(
    "shift, spread, seeds, verdict",
    [
        (0.0, 0.002, 10, "equivalent"),
        (0.003, 0.002, 10, "equivalent"),
        (0.05, 0.002, 10, "different"),  # negative control: a real difference is not "equivalent"
        (-0.05, 0.002, 10, "different"),
        (0.0, 0.02, 3, "undecided"),  # too few, too noisy seeds: no verdict either way
    ],
)
def test_tost_verdicts_from_rows(shift, spread, seeds, verdict):
    curves = lm_analysis.curves_from_rows(_rows(shift, seeds, spread))
    results = {(key[0], ref): res for key, ref, res, _ in lm_analysis.tost_results(curves, 0.01)}
    assert results[("PowerSGD+", "PowerSGD")].verdict == verdict
    assert results[("PowerSGD+", "PowerSGD")].alpha == pytest.approx(0.05 / 3)  # 3 comparisons
    assert results[("PowerSGD", "all-reduce")].verdict == "equivalent"
    table = lm_analysis.tost_table(curves, 0.01)
    assert table.count(verdict) >= 1 and "Bonferroni over the 3 comparisons" in table


def test_flattening_criterion_can_fail():
    flat = lm_analysis.curves_from_rows(_rows(0.0, fall=0.0))
    falling = lm_analysis.curves_from_rows(_rows(0.0, fall=0.01, steps=tuple(range(0, 110, 10))))
    assert all(ok for _, ok in lm_analysis.flattening(flat, 0.005).values())
    drops = lm_analysis.flattening(falling, 0.005)
    assert all(not ok for _, ok in drops.values())
    assert all(drop == pytest.approx(0.02) for drop, _ in drops.values())  # 2 evaluations × 0.01
    assert "**not met**" in lm_analysis.final_table(falling, "header", 0.005)
    assert "met by every method" in lm_analysis.final_table(flat, "header", 0.005)


def test_target_table_counts_runs_that_never_reach_the_target():
    rows = _rows(0.05, fall=0.02, steps=tuple(range(0, 110, 10)), base_spread=0.001)
    curves = lm_analysis.curves_from_rows(rows)
    target, what = lm_analysis.target_loss(curves, 0.01)
    powersgd = np.mean([c[-1][1] for c in curves[("PowerSGD", 4, 0)].values()])
    assert target == pytest.approx(powersgd + 0.01) and "PowerSGD r=4" in what
    table = lm_analysis.target_table(curves, 0.01)
    line = next(row for row in table.splitlines() if row.startswith("| PowerSGD+"))
    assert "| 0/10 |" in line  # 0.05 worse at the end: never within PowerSGD's final + 0.01
    line = next(row for row in table.splitlines() if row.startswith("| PowerSGD r=4"))
    assert "| 10/10 | 100 ± 0 | 10.0 ± 0.0 | 0.1 ± 0.0 |" in line  # 0.02 above it one evaluation before
