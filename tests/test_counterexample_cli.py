"""python -m simsgd.counterexample end to end: table, files, exit codes, bad arguments."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from simsgd import output
from simsgd.cli import run
from simsgd.counterexample import main
from simsgd.stats import wilson_interval

SMALL = ["--sigma", "5", "--N", "4", "--steps", "150", "--replicas", "300"]


def test_table_and_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "powersgd " in table and "powersgd+" in table and "0.0625" in table and "ε₀" in table
    assert sorted(os.listdir(out)) == [
        "counterexample.json",
        "counterexample.png",
        "counterexample_steps.csv",
    ]
    summary = json.loads((out / "counterexample.json").read_text())
    plain, plus = summary["methods"]["powersgd"], summary["methods"]["powersgd+"]
    assert summary["epsilon0"] == 1.0 and summary["lock_bound"] == 2.0**-4
    # the locked runs (ξ_0 ≡ 1, probability 1/16) keep ||∇f||² = 16: E ≥ 16·(locked fraction)
    assert plain["mean_grad_norm_sq_T"] >= 16 * plain["locked_fraction"] - 1e-9
    lo, hi = plain["locked_ci95"]
    assert lo <= 2.0**-4 <= hi
    assert plus["locked_fraction"] == 0 and plus["mean_grad_norm_sq_T"] < plain["mean_grad_norm_sq_T"]
    with open(out / "counterexample_steps.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 151 and rows[0]["t"] == "0" and float(rows[0]["powersgd_mean_grad_norm_sq"]) == 16.0
    assert float(rows[-1]["powersgd_locked_fraction"]) == plain["locked_fraction"]
    assert (out / "counterexample.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_output_and_no_plot(tmp_path, capsys):
    assert (
        main(
            SMALL
            + ["--json", "--no-plot", "--out", str(tmp_path), "--basis", "random", "--precision", "float32"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["precision"] == "float32"
    assert summary["methods"]["powersgd"]["locked_fraction"] == 0.0  # rounding breaks the lock
    assert not (tmp_path / "counterexample.png").exists()


def test_exact_precision(tmp_path, capsys):
    assert (
        main(
            [
                "--precision",
                "exact",
                "--N",
                "2",
                "--steps",
                "30",
                "--replicas",
                "2",
                "--basis",
                "paper",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "previous" in table and "native" in table and "P_tilde in span(C)" in table
    summary = json.loads((tmp_path / "counterexample.json").read_text())
    conv = summary["conventions"]
    assert conv["previous"]["held"] == 2 and conv["native"]["broken"] == 2 and conv["raise"]["undefined"] == 2
    with open(tmp_path / "counterexample_steps.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 8  # 4 conventions × 2 replicas


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--sigma", "-1"], "--sigma"),
        (["--sigma", "inf"], "--sigma"),
        (["--N", "0"], "--N"),
        (["--N", "two"], "--N"),
        (["--steps", "0"], "--steps"),
        (["--replicas", "0"], "--replicas"),
        (["--lr", "0"], "--lr"),
        (["--momentum", "1"], "--momentum"),
        (["--tau", "0"], "--tau"),
        (["--rank", "3"], "--rank"),
        (["--x0", "1", "2", "3", "nan"], "--x0"),
        (["--basis", "polar"], "--basis"),
        (["--precision", "exact", "--basis", "random"], "--basis"),
        (["--precision", "exact", "--rank", "2"], "--rank"),
        (["--optimizer", "lion"], "--optimizer"),
        (["--seed", "-3"], "--seed"),
        (["--seed", str(2**64)], "--seed"),
        (["--sigma", "1e300"], "--sigma"),
        (["--precision", "float32", "--sigma", "1e38"], "--sigma"),
        (["--lr", "1e308"], "--lr"),
        (["--lr", "1e300"], "--lr"),
        (["--x0", "1e308", "0", "0", "1e308"], "--x0"),
        (["--steps", str(10**11)], "--steps"),
        (["--replicas", str(10**12)], "--replicas"),
        (["--out", ""], "--out"),
        (["--out", "/proc/simsgd-test"], "--out"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, option, capsys):
    assert run(main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err and "Traceback" not in err


def test_out_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert run(main, SMALL + ["--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err
    taken = tmp_path / "taken"
    (taken / "counterexample.json").mkdir(parents=True)
    assert run(main, SMALL + ["--out", str(taken)]) == 2  # refused before the run, nothing written
    assert "counterexample.json" in capsys.readouterr().err
    assert sorted(os.listdir(taken)) == ["counterexample.json"]


def test_largest_documented_n_runs(capsys):
    # 2.0**1024 overflows; ε₀ = 16·2^−1024 does not.
    assert run(main, ["--N", "1024", "--steps", "3", "--replicas", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epsilon0"] == 16 * 2.0**-1024 > 0


def test_divergence_is_reported_as_data(capsys):
    # η just inside the up-front limit: X_t passes √(max)/16 within a few steps (a result).
    assert run(main, ["--lr", "4e150", "--steps", "50", "--replicas", "20", "--json"]) == 0
    captured = capsys.readouterr()
    # No overflow warning; only the up-front note that R = 20 cannot decide (simsgd.verdict).
    assert captured.err.count("\n") == 1 and captured.err.startswith("note: ")
    for s in json.loads(captured.out)["methods"].values():
        assert s["diverged_fraction"] > 0 and s["first_diverged_step"] >= 1
        assert s["locked_fraction"] == 0  # a diverged run is never counted locked
    # negative control: the default η diverges nowhere
    assert run(main, ["--steps", "50", "--replicas", "20", "--json"]) == 0
    for s in json.loads(capsys.readouterr().out)["methods"].values():
        assert s["diverged_fraction"] == 0 and s["first_diverged_step"] is None


def test_degenerate_qr_raise_is_one_line_exit_1(capsys):
    assert run(main, ["--steps", "50", "--replicas", "160", "--degenerate-qr", "raise"]) == 1
    err = capsys.readouterr().err  # R = 160 can decide: no up-front note, only the error line
    assert err.count("\n") == 1 and "DegenerateQRError" in err


def test_exact_mode_over_budget_is_refused_within_seconds_with_an_estimate(tmp_path, capsys):
    start = time.monotonic()
    argv = ["--precision", "exact", "--replicas", "100000", "--steps", "5", "--out", str(tmp_path / "o")]
    assert run(main, argv) == 2
    assert time.monotonic() - start < 2 + 5  # the calibration's 2 s at most, and slack
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-seconds" in err and "needs about" in err and "runs left" in err
    assert list((tmp_path / "o").iterdir()) == []  # nothing written
    # control: a run that fits is not refused
    assert run(main, ["--precision", "exact", "--replicas", "2", "--steps", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["truncations"] == {"seconds": 0, "bits": 0, "not_run": 0}
    assert summary["estimate"]["calibration_runs"] == 8


def test_exact_mode_truncation_fails_unless_allowed(tmp_path, capsys, monkeypatch):
    from simsgd import exact_batch

    # A calibration that underestimates (as a run whose rationals grow can): the plan fits, the runs do not.
    monkeypatch.setattr(exact_batch, "_seconds_per_run", lambda run, wall, steps: 1e-4)
    argv = ["--precision", "exact", "--steps", "100000", "--replicas", "1", "--max-seconds", "1.5", "--json"]
    out = tmp_path / "o"
    assert run(main, argv + ["--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Truncated" in err and "stopped by the time budget" in err
    assert list(out.iterdir()) == []
    assert run(main, argv + ["--out", str(out), "--allow-partial"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "warning: partial result" in captured.err
    summary = json.loads((out / "counterexample.json").read_text())
    assert summary["truncations"]["seconds"] >= 1 and summary["config"]["allow_partial"]


def test_exact_mode_shares_the_budget_across_conventions(capsys):
    # Over budget with --allow-partial: every convention gets the same number of replicas.
    argv = [
        "--precision",
        "exact",
        "--steps",
        "200",
        "--replicas",
        "8",
        "--max-seconds",
        "3",
        "--allow-partial",
    ]
    assert run(main, argv + ["--json"]) == 0
    conventions = json.loads(capsys.readouterr().out)["conventions"]
    started = {c: 8 - s["not_run"] for c, s in conventions.items()}
    assert min(started.values()) >= 1, started  # none starved (the old loop ran 'previous' only)
    assert started["previous"] == started["native"], started


def test_exact_mode_says_what_it_is_and_honours_degenerate_qr(capsys):
    argv = ["--precision", "exact", "--steps", "5", "--replicas", "2"]
    assert run(main, argv + ["--degenerate-qr", "native"]) == 0
    table = capsys.readouterr().out
    assert (
        "different experiment from the float run" in table
        and "ξ_0 ≡ 1" in table
        and "T = 200, R = 8" in table
    )
    assert "held = every invariant held" in table
    rows = [line.split()[0] for line in table.splitlines() if line.split()[:1] in (["previous"], ["native"])]
    assert rows == ["native"]
    assert run(main, argv) == 0  # control: not given, all four conventions run
    table = capsys.readouterr().out
    assert all(f"\n{c} " in table for c in ("previous", "native", "zero", "raise"))


def test_help_and_module_entry_point():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-m", "simsgd.counterexample", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0 and "--sigma" in done.stdout and "σ" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "simsgd.counterexample", "--N", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        output.atomic_write_json(target, {"a": 1})
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    output.atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}


def test_wilson_interval_covers_the_proportion():
    lo, hi = wilson_interval(64, 1000)
    assert lo < 0.064 < hi and np.isclose(hi - lo, 0.0305, atol=2e-3)
    assert wilson_interval(0, 100)[0] == 0.0


def _verdict(argv, capsys):
    assert run(main, argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)["verdict"]


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--replicas", "1", "--steps", "100"], "R = 1 is below 30"),  # was: "fails" from [0.00927, 0.00927]
        (["--steps", "1"], "cannot tell them apart"),  # was: "holds"; X barely moved
        (["--sigma", "1e150", "--steps", "20"], "cannot tell them apart"),  # was: "holds"
        (["--N", "1024", "--steps", "20", "--replicas", "40"], "float resolution"),  # ε₀ = 8.9e-308
    ],
)
def test_runs_that_cannot_decide_are_inconclusive(argv, reason, capsys):
    verdict = _verdict(argv, capsys)
    assert verdict["kind"] == "inconclusive" and reason in verdict["reason"], verdict
    assert verdict["would_decide"]


def test_the_readme_run_and_sigma_zero_decide(capsys):
    # The negative control of the test above: R = 1000, T = 1000 decide; σ = 0 included
    # (PowerSGD stays locked at 1.02, PowerSGD+ reaches 1.6e-42), with a note on how its lock arises.
    assert _verdict(["--sigma", "5", "--N", "4"], capsys)["kind"] == "holds"
    assert run(main, ["--sigma", "0"]) == 0
    table = capsys.readouterr().out
    assert "— holds: " in table and "σ = 0: on the lock event P_0 = σ·B·Q_{-1} = 0" in table


def test_more_steps_decide_sigma_1e150(capsys):
    # The would-decide advice of --sigma 1e150 --steps 20 works. X_T's B entry reaches ~4e149
    # here, but in the aligned basis ∇f depends only on the A entry (≤ 7e-5), so the float
    # resolution at the problem's scale, not at ||X_T||, is the one that matters.
    verdict = _verdict(["--sigma", "1e150", "--steps", "1000", "--replicas", "200"], capsys)
    assert verdict["kind"] == "holds", verdict


def test_a_violation_is_decided_as_fails(capsys):
    # Rounding breaks the lock in a random basis: PowerSGD converges, far below ε₀ (a result).
    verdict = _verdict(["--basis", "random", "--steps", "300", "--replicas", "200"], capsys)
    assert verdict["kind"] == "fails", verdict


def test_divergence_gives_no_verdict(capsys):
    verdict = _verdict(["--lr", "4e150", "--steps", "50", "--replicas", "40"], capsys)
    assert verdict["kind"] == "inconclusive" and "diverged" in verdict["reason"]
    assert verdict["would_decide"] == "a smaller --lr"


def test_counts_and_json_fields_are_named_for_what_they_count(capsys):
    assert run(main, ["--steps", "20", "--replicas", "30"]) == 0
    assert "degenerate QR replica-steps" in capsys.readouterr().out
    assert run(main, ["--steps", "20", "--replicas", "30", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["methods"]["powersgd"]
    assert plain["degenerate_qr_replica_step_fraction"] == plain["degenerate_qr_replica_steps"] / (20 * 30)
    assert run(main, ["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "median_escape_step" in help_text and "replica-steps" in help_text and "inconclusive" in help_text


def test_undecidable_run_says_so_before_computing(capsys):
    # N = 1024: ε₀ = 8.9e-308 is below the float resolution, and R·2^−N ≪ 10 locked runs. The
    # note comes before the first step; a run that could decide (N = 4, R = 160) prints none.
    assert run(main, ["--N", "1024", "--steps", "2", "--replicas", "40", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("note: whatever the run gives, the verdict will be inconclusive")
    assert "--N ≤ 90" in captured.err
    assert json.loads(captured.out)["verdict"]["kind"] == "inconclusive"
    assert run(main, ["--steps", "2", "--replicas", "160", "--json"]) == 0
    assert capsys.readouterr().err == ""
