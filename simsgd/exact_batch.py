"""Many exact runs (:func:`simsgd.exact.run_exact`) within one time budget, estimated first.

``python -m simsgd.counterexample --precision exact`` runs R replicas under each QR(0)
convention. Exact arithmetic has no vectorised shortcut, and a held run's cost grows with T
(its rationals grow), so this module

1. **calibrates**: runs the first :data:`CALIBRATION_REPLICAS` replicas of every convention,
   each for at most :data:`CALIBRATION_SECONDS`, and estimates each convention's seconds per
   run (a run cut short is extrapolated linearly in steps: a lower bound when the rationals
   grow). Calibration runs that finished are kept as results;
2. **plans**: the estimate for all runs is compared with the budget before anything else
   runs (the caller refuses or, when a partial result is allowed, plans only the first R'
   replicas of every convention that fit, the rest "not run");
3. **runs** replica by replica, every convention in turn (round robin), so the conventions
   get the same number of runs, within one, whenever the budget ends; a run may use the
   budget left minus the estimates of the runs still to come (and never less than its
   proportional share of what is left);
4. reports every **truncation**: runs stopped by the time or the size (bits) bound before T,
   and runs not run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ._progress import Progress

__all__ = ["Plan", "Batch", "calibrate", "run_batch", "CALIBRATION_REPLICAS", "CALIBRATION_SECONDS"]

CALIBRATION_REPLICAS = 2
CALIBRATION_SECONDS = 0.25
MIN_RUN_SECONDS = 1e-4  # an estimate below a timer's resolution is not trusted to be smaller
LOG_EVERY = 5.0  # off a terminal, a progress line every 5 s


@dataclass(frozen=True)
class Plan:
    """The cost estimate of a batch, from calibration.

    Attributes
    ----------
    per_run : dict
        Convention -> estimated seconds of one run.
    runs_left : int
        Runs not yet done after calibration.
    seconds : float
        Estimated seconds of the runs left.
    calibration_seconds : float
    calibration_runs : int
    """

    per_run: dict
    runs_left: int
    seconds: float
    calibration_seconds: float
    calibration_runs: int

    def describe(self) -> str:
        """One phrase: the estimate and how it was made."""
        each = ", ".join(f"{c} {s:.2g} s" for c, s in self.per_run.items())
        return (
            f"about {self.calibration_seconds + self.seconds:.3g} s: {self.runs_left} runs left (per run: "
            f"{each}) after {self.calibration_runs} calibration runs in {self.calibration_seconds:.2g} s"
        )


@dataclass
class Batch:
    """Results of a batch: ``runs[convention][k]`` is replica k's ExactRun, None (or beyond the
    list) if not run; ``replicas`` is R.
    """

    runs: dict
    replicas: int
    plan: Plan
    seconds: float = 0.0
    truncations: dict = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        return any(self.truncations.values())

    def describe_truncation(self) -> str:
        """E.g. ``3 of 8 runs stopped by the time budget before T, 2 not run``."""
        total = len(self.runs) * self.replicas
        parts = {
            "seconds": "stopped by the time budget before T",
            "bits": "stopped by the size bound (bits) before T",
            "not_run": "not run",
        }
        said = [f"{n} {parts[k]}" for k, n in self.truncations.items() if n]
        return f"{', '.join(said)} (of {total} runs)"


def _seconds_per_run(run, wall: float, steps: int) -> float:
    if run.outcome == "budget" and run.stopped_by == "seconds":
        return wall * steps / max(run.steps_run, 1)  # cut short: extrapolate in steps
    return wall


def calibrate(run_one, conventions, replicas: int, steps: int):
    """Run the first replicas of every convention briefly and estimate the rest.

    At most :data:`CALIBRATION_REPLICAS` × len(conventions) runs of
    :data:`CALIBRATION_SECONDS` each (2 s for the four QR(0) conventions).

    Parameters
    ----------
    run_one : callable (convention, replica, max_seconds) -> ExactRun
    conventions : sequence of str
    replicas, steps : int

    Returns
    -------
    done : dict
        (convention, replica) -> ExactRun of the calibration runs that finished.
    plan : Plan
    """
    start = time.monotonic()
    ks = range(min(replicas, CALIBRATION_REPLICAS))
    done, per_run = {}, {}
    for convention in conventions:
        times = []
        for k in ks:
            begin = time.monotonic()
            run = run_one(convention, k, CALIBRATION_SECONDS)
            wall = time.monotonic() - begin
            times.append(max(MIN_RUN_SECONDS, _seconds_per_run(run, wall, steps)))
            if not (run.outcome == "budget" and run.stopped_by == "seconds"):
                done[(convention, k)] = run
        per_run[convention] = sum(times) / len(times)
    left = len(conventions) * replicas - len(done)
    seconds = sum(per_run[c] * (replicas - sum(key[0] == c for key in done)) for c in conventions)
    plan = Plan(per_run, left, seconds, time.monotonic() - start, len(conventions) * len(ks))
    return done, plan


def replicas_that_fit(plan: Plan, conventions, replicas: int, budget: float, done: dict) -> int:
    """The largest R' ≤ R whose runs left (every convention, replicas < R') fit the budget by the estimate."""
    cost = 0.0
    for k in range(replicas):
        cost += sum(plan.per_run[c] for c in conventions if (c, k) not in done)
        if cost > budget:
            return k
    return replicas


def run_batch(run_one, conventions, replicas: int, budget: float, done: dict, plan: Plan, planned=None):
    """Run the planned replicas round robin within ``budget`` seconds (see the module docstring).

    Parameters
    ----------
    run_one : callable (convention, replica, max_seconds) -> ExactRun
    conventions : sequence of str
    replicas : int
        R; replicas at or beyond ``planned`` are counted "not run".
    budget : float
        Seconds left for these runs.
    done : dict
        The calibration's finished runs (:func:`calibrate`).
    plan : Plan
    planned : int, optional
        R' ≤ R replicas to run (default R).

    Returns
    -------
    Batch
    """
    planned = replicas if planned is None else planned
    start = time.monotonic()
    deadline = start + budget
    todo = [(c, k) for k in range(planned) for c in conventions if (c, k) not in done]
    kept = max([planned] + [k + 1 for _, k in done])  # replicas beyond are "not run"
    runs = {c: [done.get((c, k)) for k in range(kept)] for c in conventions}
    bar = Progress(len(todo), None, label="exact runs", log_every=LOG_EVERY)
    try:
        for i, (convention, k) in enumerate(todo):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            still = [plan.per_run[c] for c, _ in todo[i:]]
            share = left * still[0] / sum(still)
            runs[convention][k] = run_one(convention, k, max(left - sum(still[1:]), share))
            bar.update(i + 1)
    finally:
        bar.close()
    flat = [r for c in conventions for r in runs[c]]
    truncations = {
        "seconds": sum(r is not None and r.stopped_by == "seconds" for r in flat),
        "bits": sum(r is not None and r.stopped_by == "bits" for r in flat),
        "not_run": len(conventions) * replicas - sum(r is not None for r in flat),
    }
    return Batch(runs, replicas, plan, time.monotonic() - start, truncations)
