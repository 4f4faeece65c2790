"""bounds/: Lemmas 3, 4 and Theorem 4 against measurement, the report, and the CLI."""

from __future__ import annotations

import json
import os

import pytest

from bounds import checks
from bounds.__main__ import main
from bounds.problems import psi, quadratic
from bounds.report import Row, verdict, write_atomic
from simsgd import theory
from simsgd.stats import Estimate


def est(mean, lower, upper):
    return Estimate(mean, lower, upper, 100, 0.05, "clt, R=100")


def test_verdict_rule():
    assert verdict(est(1.0, 0.5, 1.5), 2.0) == "pass"
    assert verdict(est(1.0, 0.5, 1.5), 1.2) == "FAIL (inconclusive)"  # mean below, UCB above
    assert verdict(est(3.0, 2.5, 3.5), 2.0) == "FAIL (violated)"
    row = Row("s", "stmt", "p", {}, est(1.0, 0.5, 1.5), 4.0)
    assert row.slack == 0.25 and row.to_dict()["verdict"] == "pass"


@pytest.mark.parametrize(
    "spec, nodes, rank, tau, mu",
    [
        (("psi", "paper"), 3, 1, 2, 0.5),
        (("psi", "aligned"), 2, 2, 5, 0.0),
        (("psi", "aligned"), 4, 1, 1, 0.9),
        (("quadratic",), 2, 1, 3, 0.5),
        (("quadratic",), 4, 3, 1, 0.0),
    ],
)
def test_lemmas_and_theorem4_hold(spec, nodes, rank, tau, mu):
    """Several τ, r, N, μ on ψ (both bases) and the quadratic; the bounds are the theory's formulas."""
    problem, label = checks.make_problem(spec, nodes)
    rows = checks.check_run(
        problem, label, nodes=nodes, rank=rank, restart_period=tau, momentum=mu, steps=60, replicas=64, seed=1
    )
    assert [r.statement.split(":")[0] for r in rows] == ["Lemma 3", "Lemma 4", "Theorem 4"]
    assert all(r.verdict == "pass" for r in rows), [(r.statement, r.measured, r.bound) for r in rows]
    c = theory.constants(problem, rows[0].constants["omega_sq"] if spec[0] == "quadratic" else None)
    d = theory.delta(rank, problem.shape)
    assert rows[0].bound == pytest.approx(theory.lemma3_bound(tau, c.G_sq, d))
    assert rows[1].bound == pytest.approx(theory.lemma4_bound(tau, c.G_sq, d, mu))
    assert rows[2].bound == pytest.approx(sum(rows[2].terms.values()))
    assert (rows[0].notes == "ω² visited") == (spec[0] == "quadratic")
    for r in rows:
        assert r.measured.lower <= r.measured.mean <= r.measured.upper


def test_check_run_is_reproducible():
    problem, label = psi("paper")
    a, b = (
        checks.check_run(
            problem, label, nodes=2, rank=1, restart_period=3, momentum=0.5, steps=30, replicas=16, seed=7
        )
        for _ in range(2)
    )
    assert [r.measured for r in a] == [r.measured for r in b]


def test_quadratic_labels_keep_L_and_delta_f_fixed_across_nodes():
    """The speed-up sweep needs the same problem constants for every N."""
    cs = [
        theory.constants(quadratic(N, m=4, n=3, heterogeneity=0.0, start_offset=1.0)[0], omega_sq=0.0)
        for N in (1, 4, 16)
    ]
    assert {round(c.L, 12) for c in cs} == {1.0} and {round(c.delta_f, 9) for c in cs} == {6.0}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bounds")
    assert main(["--quick", "--out", str(out)]) == 0
    return out


@pytest.mark.slow  # the whole quick report
def test_quick_run_writes_report_and_json(quick_report):
    assert sorted(os.listdir(quick_report)) == ["REPORT.md", "report.json"]  # no temp file left behind
    record = json.loads((quick_report / "report.json").read_text())
    report = (quick_report / "REPORT.md").read_text()
    assert (
        "| statement | problem | parameters | measured (mean [LCB, UCB]) | bound | slack | verdict |"
        in report
    )
    rows = record["rows"]
    main_rows = [r for r in rows if r["study"] == "checks"]
    assert len(main_rows) == 3 * len(checks.GRID["quick"]) + 1  # + Corollary 1
    assert all(r["verdict"] == "pass" for r in main_rows)
    problems = {r["problem"].split(" N=")[0] for r in main_rows}
    assert problems == {"ψ paper σ=5", "ψ aligned σ=5", "quadratic 6×4 h=0.5"}
    assert record["seconds"]["cpu_total"] < 60  # "under a minute" (CPU time: wall time depends on load)


@pytest.mark.slow  # the whole quick report
def test_powersgd_must_fail_theorem4_for_large_T(quick_report):
    """The check can fail: PowerSGD (no restart) confidently exceeds the RHS PowerSGD+ obeys."""
    rows = [
        r for r in json.loads((quick_report / "report.json").read_text())["rows"] if r["study"] == "failure"
    ]
    last_T = max(r["params"]["T"] for r in rows)
    powersgd = [r for r in rows if r["params"]["method"] == "powersgd"]
    assert [r["verdict"] for r in powersgd if r["params"]["T"] == last_T] == ["FAIL (violated)"]
    assert powersgd[0]["verdict"] == "pass"  # small T: the 1/(ηT) term still covers it
    assert all(r["verdict"] == "pass" for r in rows if r["params"]["method"] == "powersgd+")


@pytest.mark.slow  # the whole quick report
def test_shape_sweeps_report_fitted_and_predicted_exponents(quick_report):
    fits = json.loads((quick_report / "report.json").read_text())["fits"]
    assert {f["sweep"] for f in fits} == {"rate_T", "speedup_N", "tau", "delta"}
    by = {f["sweep"]: f for f in fits}
    for name in ("rate_T", "speedup_N"):  # Remark 1's 1/√(NT): within 0.1 of −1/2
        assert by[name]["predicted"] == -0.5 and abs(by[name]["fit"]["slope"] + 0.5) < 0.1


@pytest.mark.parametrize("argv", [["--seed", "-1"], ["--out", "/nonexistent/folder"], ["--bogus"]])
def test_cli_rejects_bad_arguments_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()[-1]) > 0


def test_write_atomic_is_all_or_nothing(tmp_path):
    path = tmp_path / "REPORT.md"
    write_atomic(str(path), "old")
    with pytest.raises(TypeError):
        write_atomic(str(path), None)  # fails mid-write
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["REPORT.md"]
