"""bounds/: rows that can fail, their controls, the report and the CLI."""

from __future__ import annotations

import json
import os

import pytest

from bounds import problems
from bounds.__main__ import main
from bounds.grid import Setting, run_setting
from bounds.rows import Control, Row, verdict
from simsgd import theory
from simsgd.cli import run
from simsgd.stats import Estimate

ROW_KEYS = {"params", "constants", "bound", "trivial_bound", "vacuous", "verdict", "control"}


def est(mean, lower, upper):
    return Estimate(mean, lower, upper, 100, 0.05, "clt, R=100")


def row(bound, trivial, measured=None):
    measured = measured or est(1.0, 0.5, 1.5)
    return Row("Theorem 4", "p", {}, {"τ": 2}, {}, bound, measured, trivial, Control("c", measured, bound))


def test_verdict_rule():
    assert verdict(est(1.0, 0.5, 1.5), 2.0) == "pass"
    assert verdict(est(1.0, 0.5, 1.5), 1.2) == "inconclusive"
    assert verdict(est(3.0, 2.5, 3.5), 2.0) == "violated"


def test_a_vacuous_row_is_never_a_pass():
    assert row(bound=20.0, trivial=16.0).verdict == "vacuous" and row(20.0, 16.0).vacuous
    assert row(bound=10.0, trivial=16.0).verdict == "pass" and not row(10.0, 16.0).vacuous
    # A vacuous row that fails still says so.
    assert row(bound=20.0, trivial=16.0, measured=est(30.0, 25.0, 35.0)).verdict == "violated"


def test_trivial_bound_is_what_frozen_x_scores():
    """X_t ≡ X_0 scores ||∇f(X_0)||² on Theorem 4's left-hand side: 16 on ψ (= sup ||∇f||²), 16k general."""
    psi = problems.make({"family": "psi", "basis": "paper"}, 1)
    assert problems.grad_norm_sq_at_start(psi) == pytest.approx(16.0)
    general = problems.make({"family": "general", "m": 5, "n": 4, "k": 2}, 1)
    assert problems.grad_norm_sq_at_start(general) == pytest.approx(32.0)


def test_setting_rows_recompute_from_params_and_constants():
    """A short setting: every row's bound follows from its own params and constants."""
    rows = run_setting(Setting({"family": "psi", "basis": "aligned"}, 2, 1, 3, 0.5, 400), 32, 0)
    assert [r.statement for r in rows] == ["Theorem 4"] * 3 + ["Corollary 1", "Lemma 3", "Lemma 4"]
    for r in rows:
        d = r.to_dict()
        assert ROW_KEYS <= set(d) and set(d["control"]) >= {"method", "measured", "verdict"}
        c = theory.Constants(**{k: v for k, v in r.constants.items() if k != "G_sq"})
        p = r.params
        kw = dict(momentum=p["μ"], restart_period=p["τ"], delta=p["δ"], nodes=p["N"], steps=p["T"])
        if r.statement == "Theorem 4":
            expect = theory.theorem4_terms(c, lr=p["η"], **kw).total
        elif r.statement == "Corollary 1":
            expect = theory.corollary1_rate(c, **kw).total
        elif r.statement == "Lemma 3":
            expect = theory.lemma3_bound(p["τ"], c.G_sq, p["δ"])
        else:
            expect = theory.lemma4_bound(p["τ"], c.G_sq, p["δ"], p["μ"])
        assert r.bound == pytest.approx(expect, rel=1e-12)
        if r.statement == "Corollary 1":
            assert p["η"] == pytest.approx(theory.corollary1_lr(c, **kw), rel=1e-12)


def test_quadratic_setting_uses_a_visited_omega_not_above_the_truth():
    rows = run_setting(Setting({"family": "quadratic", "m": 4, "n": 3}, 2, 1, 2, 0.0, 200), 32, 0)
    start = problems.grad_norm_sq_at_start(problems.make({"family": "quadratic", "m": 4, "n": 3}, 2))
    assert all(r.constants["omega_sq"] >= start and r.constants["omega_sq_source"] == "visited" for r in rows)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bounds")
    assert run(main, ["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text()), (out / "REPORT.md").read_text()


@pytest.mark.slow  # the whole quick report
def test_quick_report_has_a_live_theorem4_row_and_its_violated_control(quick):
    out, record, report = quick
    assert sorted(os.listdir(out)) == ["REPORT.md", "report.json"]
    rows = record["rows"]
    assert all(ROW_KEYS <= set(r) for r in rows)
    main_rows = [r for r in rows if r["statement"] in ("Theorem 4", "Corollary 1")]
    live = [r for r in main_rows if not r["vacuous"] and r["params"]["τ"] >= 2]
    assert any(r["statement"] == "Theorem 4" for r in live) and all(r["verdict"] == "pass" for r in live)
    # The negative control: where Theorem 1's ε₀ is above the bound, PowerSGD violates it.
    expected = [r for r in live if r["control"]["expected"] == "violated"]
    assert expected and all(r["control"]["verdict"] == "violated" for r in expected)
    assert all(r["bound"] < r["trivial_bound"] for r in live)
    vacuous = [r for r in rows if r["vacuous"]]
    assert vacuous and all(r["verdict"] != "pass" for r in vacuous)
    assert "**QUICK MODE**" in report and "## Vacuous rows" in report
    assert record["summary"]["theorem_nonvacuous_pass_tau_ge_2"] == sum(r["verdict"] == "pass" for r in live)
    assert record["seconds"]["cpu_total"] < 60  # "under a minute" (CPU: wall time depends on load)


@pytest.mark.slow  # the whole quick report
def test_quick_report_tightness_remark1_errata(quick):
    _, record, _ = quick
    factors = {s["factor"] for s in record["tightness"]}
    assert len(factors) == 8 and {"τ² (Lemma 3)", "δ⁻² (Lemma 3)", "1/N (Theorem 4, noise term)"} <= factors
    lemma3 = next(s for s in record["tightness"] if s["factor"] == "τ² (Lemma 3)")
    assert all(1.5 < v < 2.5 for v in lemma3["slopes_measured"])  # τ² attained on the forced lock
    assert all(r < 1 for s in record["tightness"] for r in s["ratio"] if "Lemma" in s["factor"])
    assert len(record["remark1"]) == 2
    assert all(row["ratio"]["lower"] > 0 for rem in record["remark1"] for row in rem["rows"])
    assert [e["verified"] for e in record["errata"]] == [True, True, True, None, None]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--seed", "-1"], "--seed"),
        (["--mode", "slow"], "unrecognized arguments"),
        (["--quick", "--out", "FILE"], "--out"),
        (["--quick", "--out", "FILE/below"], "--out"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("keep")
    monkeypatch.setattr("bounds.__main__.run_all", lambda *a: pytest.fail("computed before checking"))
    assert run(main, argv, prog="python -m bounds") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert sorted(os.listdir(tmp_path)) == ["FILE"] and (tmp_path / "FILE").read_text() == "keep"


def test_cli_failure_keeps_the_previous_report(tmp_path, capsys, monkeypatch):
    (tmp_path / "REPORT.md").write_text("old")
    monkeypatch.setattr("bounds.__main__.run_all", lambda *a: 1 / 0)
    assert run(main, ["--quick", "--out", str(tmp_path)], prog="python -m bounds") == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["REPORT.md"] and (tmp_path / "REPORT.md").read_text() == "old"
