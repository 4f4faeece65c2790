"""simsgd.exact_batch: the cost estimate, the round-robin budget, truncations; simsgd._progress."""

import io
import time
from types import SimpleNamespace

import pytest

from simsgd import _progress, exact_batch


def _fake(seconds, outcome="held", stopped_by=None, steps_run=100):
    """run_one(convention, k, cap) that takes ``seconds[convention]`` (or its cap, if less)."""
    calls = []

    def run_one(convention, k, cap):
        calls.append((convention, k, cap))
        wanted = seconds[convention]
        time.sleep(min(wanted, cap))
        cut = wanted > cap
        return SimpleNamespace(
            outcome="budget" if cut else outcome,
            stopped_by="seconds" if cut else stopped_by,
            steps_run=steps_run // 10 if cut else steps_run,
        )

    return run_one, calls


def _started(batch):
    return {c: len(runs) for c, runs in batch.runs.items()}


def _fair(batch):
    started = _started(batch)
    return max(started.values()) - min(started.values()) <= 1


def test_calibration_keeps_finished_runs_and_extrapolates_cut_ones(monkeypatch):
    monkeypatch.setattr(exact_batch, "CALIBRATION_SECONDS", 0.02)
    run_one, _ = _fake({"fast": 0.001, "slow": 1.0})
    done, plan = exact_batch.calibrate(run_one, ("fast", "slow"), replicas=5, steps=100)
    assert sorted(done) == [("fast", 0), ("fast", 1)]  # the slow ones were cut: run again later
    assert plan.per_run["fast"] < 0.01 and plan.per_run["slow"] >= 0.02 * 10 * 0.9  # cut at 10 of 100 steps
    assert plan.runs_left == 8 and plan.calibration_runs == 4
    assert plan.seconds == pytest.approx(3 * plan.per_run["fast"] + 5 * plan.per_run["slow"])
    assert "runs left" in plan.describe()


def test_round_robin_shares_the_budget_and_counts_truncations():
    seconds = {"slow": 0.02, "fast": 0.001}
    plan = exact_batch.Plan(dict(seconds), 40, 0.42, 0.0, 0)
    run_one, calls = _fake(seconds)
    planned = exact_batch.replicas_that_fit(plan, ("slow", "fast"), 20, 0.15, {})  # as the CLI plans it
    batch = exact_batch.run_batch(run_one, ("slow", "fast"), 20, 0.15, {}, plan, planned)
    assert 0 < planned < 20 and _fair(batch), _started(batch)
    assert batch.truncated and batch.truncations["not_run"] > 0 and "not run" in batch.describe_truncation()
    # negative control: the schedule before (convention by convention) starves 'fast'
    starved = exact_batch.Batch({"slow": dict.fromkeys(range(7)), "fast": {}}, 20, plan)
    assert not _fair(starved)


def test_each_run_may_use_the_slack_but_leaves_the_others_their_estimate():
    plan = exact_batch.Plan({"a": 0.01, "b": 0.01}, 4, 0.04, 0.0, 0)
    run_one, calls = _fake({"a": 0.001, "b": 0.001})
    exact_batch.run_batch(run_one, ("a", "b"), 2, 1.0, {}, plan)
    caps = [cap for _, _, cap in calls]
    assert caps[0] == pytest.approx(1.0 - 0.03, abs=0.01)  # the budget less three estimates
    assert all(cap > 0.9 for cap in caps)  # the fast runs leave their slack to the next


def test_a_run_over_its_share_is_cut_and_reported():
    plan = exact_batch.Plan({"a": 0.01}, 2, 0.02, 0.0, 0)
    run_one, _ = _fake({"a": 5.0})
    batch = exact_batch.run_batch(run_one, ("a",), 2, 0.1, {}, plan)
    assert batch.truncations["seconds"] >= 1 and "stopped by the time budget" in batch.describe_truncation()
    ok = exact_batch.run_batch(_fake({"a": 0.001})[0], ("a",), 2, 1.0, {}, plan)
    assert not ok.truncated  # control


def test_replicas_that_fit():
    plan = exact_batch.Plan({"a": 1.0, "b": 3.0}, 0, 0.0, 0.0, 0)
    assert exact_batch.replicas_that_fit(plan, ("a", "b"), 10, 9.0, {}) == 2
    assert exact_batch.replicas_that_fit(plan, ("a", "b"), 10, 9.0, {("b", 0): None, ("b", 1): None}) == 3
    assert exact_batch.replicas_that_fit(plan, ("a", "b"), 10, 1e9, {}) == 10
    assert exact_batch.replicas_that_fit(plan, ("a", "b"), 10**30, 9.0, {}) == 2  # no loop over R


class _Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now


def _progress_on(monkeypatch, tty):
    clock, err = _Clock(), io.StringIO()
    err.isatty = lambda: tty
    monkeypatch.setattr(_progress, "time", clock)
    monkeypatch.setattr(_progress.sys, "stderr", err)
    return clock, err


def test_progress_off_a_terminal_logs_a_line_every_few_seconds(monkeypatch):
    clock, err = _progress_on(monkeypatch, tty=False)
    bar = _progress.Progress(100, None, label="exact runs", log_every=5.0)
    clock.now = 1.0
    bar.update(10)
    assert err.getvalue() == ""  # a short run prints nothing
    clock.now = 6.0
    bar.update(50)
    assert err.getvalue() == "exact runs: 50/100, 0:06 elapsed, ETA 0:06\n"
    clock.now = 7.0
    bar.update(60)
    assert err.getvalue().count("\n") == 1  # not again before another 5 s
    quiet = _progress.Progress(100, None, label="simulate")  # control: no log_every, as the engine uses it
    clock.now = 100.0
    quiet.update(50)
    assert err.getvalue().count("\n") == 1


def test_progress_on_a_terminal_shows_the_eta_and_ends_its_line(monkeypatch):
    clock, err = _progress_on(monkeypatch, tty=True)
    bar = _progress.Progress(4, None, label="exact runs", log_every=5.0)
    clock.now = 2.0
    bar.update(1)
    assert "1/4, 0:02 elapsed, ETA 0:06" in err.getvalue() and not err.getvalue().endswith("\n")
    bar.close()  # a deadline stopped the work: the line is ended, once
    bar.close()
    assert err.getvalue().endswith("\n") and err.getvalue().count("\n") == 1
