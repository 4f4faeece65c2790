"""bounds/: problems and scopes, rows built on simsgd.check, the claim rules, the report and the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bounds import claims, problems, rows
from bounds.__main__ import main
from bounds.rows import Setting
from simsgd import theory
from simsgd.cli import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PSI = {"family": "psi", "basis": "aligned", "noise_scale": 5.0, "x0_scale": 0.5}
CLAIMS = ("T4", "C1", "L3", "L4", "eq19", "T4-excess", "T4-tight")
FIELDS = {"verdict", "statement", "value", "scope", "control", "sensitivity"}
VERDICTS = {"holds", "holds in scope", "fails", "vacuous", "open"}  # the claims ledger's words


def test_start_at_the_edge_of_the_quadratic_region():
    """x0_scale 0.5: ⟨A, X_0⟩ = 1, so ||∇f(X_0)||² = 16 (what doing nothing scores) but ΔF = 1."""
    for basis in ("aligned", "paper", "random"):
        p = problems.make(dict(PSI, basis=basis), 1)
        assert problems.grad_norm_sq_at_start(p) == pytest.approx(16.0)
        assert float(p.loss(p.x0)) == pytest.approx(1.0)
    general = problems.make({"family": "general", "m": 4, "n": 4, "k": 2, "x0_scale": 0.5}, 1)
    assert problems.grad_norm_sq_at_start(general) == pytest.approx(32.0)
    assert problems.label(PSI) == "ψ aligned σ=5 X₀×0.5"


def test_control_scope_says_where_the_lock_is_exact():
    assert problems.control_scope(PSI) == "exact"
    assert problems.control_scope(dict(PSI, basis="paper")) == "rounding-dependent"
    assert problems.control_scope(dict(PSI, basis="random")) == "rounding-dependent"
    assert problems.control_scope({"family": "general", "k": 1}) == "no floor stated"
    assert problems.control_scope(dict(PSI, lock_start=True)) == "no floor stated"


def test_off_span_perturbation_is_orthogonal_unbiased_and_tiny():
    p = problems.make(dict(PSI, basis="random", transverse=1e-3), 1)
    assert abs(np.sum(p.E * p.A)) < 1e-15 and abs(np.sum(p.E * p.B)) < 1e-15
    assert np.sum(p.E**2) == pytest.approx(1.0)
    from simsgd.streams import NodeStreams

    x = np.repeat(p.x0[None], 4000, axis=0)
    g = p.stochastic_grads(x, 1, NodeStreams(0, np.arange(4000), np.arange(1)).at(1))
    off = np.einsum("rnij,ij->r", g, p.E)
    assert set(np.round(np.abs(off) / 1e-3, 9)) == {1.0} and abs(off.mean()) < 5e-5


def _row(status="holds", vacuous=False, excess_lower=1e-4, excess=True):
    r = dict(status=status, vacuous=vacuous, excess=None, excess_significant=None)
    if excess:
        r.update(
            excess={"mean": 1e-3, "lower": excess_lower, "upper": 2e-3}, excess_significant=excess_lower > 0
        )
    return r


def test_claim_verdict_rules():
    assert rows.verdict([_row()]) == "holds in scope"
    assert (
        rows.verdict([_row(), _row(status="fails", vacuous=True)]) == "fails"
    )  # a vacuous failure still fails
    assert rows.verdict([_row(vacuous=True, status="vacuous")]) == "vacuous"
    assert rows.verdict([_row(), _row(status="inconclusive")]) == "open"
    # passes where compression does not measurably matter say nothing about compression
    assert rows.verdict([_row(excess_lower=-1e-4)]) == "open"
    assert rows.verdict([_row(excess=False)]) == "holds in scope"  # the lemmas have no excess
    assert rows.tests_compression(_row()) and not rows.tests_compression(_row(excess_lower=0.0))


def test_share_model_algebra():
    """M = 1000 (MSGD's sum), C = 10 (start-up excess), e = 1e-3: share(T) = (C + eT)/(M + C + eT)."""
    T0 = 10_000
    row = dict(
        settings={"T": T0},
        tail_excess={"mean": 1e-3},
        excess={"mean": (10 + 1e-3 * T0) / T0},
        measured={"mean": (1000 + 10 + 1e-3 * T0) / T0},
    )
    assert rows.share_model(row, T0) == pytest.approx(20 / 1020)
    assert rows.share_model(row, 100_000) == pytest.approx(110 / 1110)
    assert claims._t_for(row, 110 / 1110) == pytest.approx(100_000)


def test_setting_rows_recompute_from_settings_and_constants():
    s = Setting("t", "Theorem 4", PSI, 1, 1, 2, 0.0, 2.5e-4, (300, 600), 32)
    found = rows.run(s, 0)
    assert [r["id"] for r in found] == ["t@T=300", "t@T=600"]
    for r in found:
        c = theory.Constants(**{k: v for k, v in r["constants"].items() if k not in ("G_sq",)})
        p = r["settings"]
        kw = dict(momentum=p["μ"], restart_period=p["τ"], delta=p["δ"], nodes=p["N"], steps=p["T"])
        assert r["bound"] == pytest.approx(theory.theorem4_terms(c, lr=p["η"], **kw).total, rel=1e-12)
        assert r["control_scope"] == "exact" and r["tests_compression"] == rows.tests_compression(r)
    (cor,) = rows.run(Setting("c", "Corollary 1", PSI, 1, 1, 2, 0.0, None, (300,), 32), 0)
    c = theory.Constants(**{k: v for k, v in cor["constants"].items() if k not in ("G_sq",)})
    kw = dict(momentum=0.0, restart_period=2, delta=0.5, nodes=1, steps=300)
    assert cor["settings"]["η"] == pytest.approx(theory.corollary1_lr(c, **kw), rel=1e-12)
    assert cor["bound"] == pytest.approx(theory.corollary1_rate(c, **kw).total, rel=1e-12)
    with pytest.raises(ValueError, match="statement"):
        rows.run(Setting("x", "Lemma 5", PSI, 1, 1, 2, 0.0, 1e-3, (10,), 32), 0)
    (bare,) = rows.run(Setting("n", "Theorem 4", PSI, 1, 1, 2, 0.0, 2.5e-4, (300,), 32, control=False), 0)
    assert bare["control"] is None and bare["control_status"] is None and bare["bound"] == found[0]["bound"]


def test_quadratic_rows_use_omega_at_the_start():
    spec = {"family": "quadratic", "m": 4, "n": 3}
    (r,) = rows.run(Setting("q", "Theorem 4", spec, 2, 1, 2, 0.0, 1e-3, (100,), 32), 0)
    start = problems.grad_norm_sq_at_start(problems.make(spec, 2))
    assert (
        r["constants"]["omega_sq"] == pytest.approx(start) and r["constants"]["omega_sq_source"] == "visited"
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bounds")
    assert run(main, ["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text()), (out / "REPORT.md").read_text()


@pytest.mark.slow  # the whole quick report
def test_quick_report_has_every_claim_with_its_fields(quick):
    out, record, report = quick
    assert sorted(os.listdir(out)) == ["REPORT.md", "report.json"]
    assert set(record["claims"]) == set(CLAIMS)
    for claim in record["claims"].values():
        assert FIELDS <= set(claim) and claim["verdict"] in VERDICTS
        for variant in claim["sensitivity"].values():
            assert {"verdict", "value", "changed"} <= set(variant)
    assert record["claims"]["L4"]["verdict"] == "vacuous" and record["claims"]["eq19"]["verdict"] == "fails"
    assert all(r["status"] != "holds" or not r["vacuous"] for r in record["rows"])
    assert "**QUICK MODE**" in report and "## Vacuous rows" in report


@pytest.mark.slow  # the whole quick report
def test_quick_verdicts_match_the_committed_ones(quick):
    """The contract with the claims ledger: quick gives the committed verdicts, or says why not."""
    _, record, _ = quick
    with open(os.path.join(ROOT, "bounds", "results", "report.json"), encoding="utf-8") as f:
        committed = json.load(f)["claims"]
    for key, claim in record["claims"].items():
        if "quick_note" not in claim:
            assert claim["verdict"] == committed[key]["verdict"], key


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--seed", "-1"], "--seed"),
        (["--mode", "slow"], "unrecognized arguments"),
        (["--quick", "--out", "FILE"], "--out"),
        (["--quick", "--out", "FILE/below"], "--out"),
        (["--quick", "--jobs", "0"], "--jobs"),
        (["--quick", "--jobs", "2", "--backend", "torch"], "--jobs"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("keep")
    monkeypatch.setattr("bounds.__main__.run_all", lambda *a, **k: pytest.fail("computed before checking"))
    assert run(main, argv, prog="python -m bounds") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert sorted(os.listdir(tmp_path)) == ["FILE"] and (tmp_path / "FILE").read_text() == "keep"


def test_cli_failure_keeps_the_previous_report(tmp_path, capsys, monkeypatch):
    (tmp_path / "REPORT.md").write_text("old")
    monkeypatch.setattr("bounds.__main__.run_all", lambda *a, **k: 1 / 0)
    assert run(main, ["--quick", "--out", str(tmp_path)], prog="python -m bounds") == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["REPORT.md"] and (tmp_path / "REPORT.md").read_text() == "old"


def test_rebuild_from_the_committed_rows_gives_the_committed_claims(tmp_path):
    """``python -m bounds.rebuild`` (the ledger's quick replay of T4-excess) reproduces the claims."""
    from bounds.rebuild import main as rebuild

    committed = os.path.join(ROOT, "bounds", "results", "report.json")
    assert run(rebuild, ["--record", committed, "--out", str(tmp_path)]) == 0
    with open(committed, encoding="utf-8") as f:
        before = json.load(f)
    after = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert after["claims"] == before["claims"] and after["rows"] == before["rows"]
    assert sorted(os.listdir(tmp_path)) == ["REPORT.md", "report.json"]


def test_docs_claims_table_is_the_committed_reports():
    """docs/bounds.md's claims table is generated (`python -m bounds.report`), never retyped."""
    from bounds.report import claims_block

    with open(os.path.join(ROOT, "bounds", "results", "report.json"), encoding="utf-8") as f:
        record = json.load(f)
    with open(os.path.join(ROOT, "docs", "bounds.md"), encoding="utf-8") as f:
        assert claims_block(record) in f.read()
