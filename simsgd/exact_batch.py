"""Many exact runs (:func:`simsgd.exact.run_exact`) within one time budget, estimated first.

``python -m simsgd.counterexample --precision exact`` runs R replicas under each QR(0)
convention. Exact arithmetic has no vectorised shortcut, and a held run's cost grows with T
(its rationals grow), so this module

1. **calibrates**: runs the first :data:`CALIBRATION_REPLICAS` replicas of every convention,
   each for at most :data:`CALIBRATION_SECONDS`, and estimates each convention's seconds per
   run (a run cut short is extrapolated linearly in steps: a lower bound when the rationals
   grow). Calibration runs that finished are kept as results;
2. **plans**: the estimate for all runs, times :data:`SAFETY` = 1.25 (timings on a shared
   machine vary), is compared with the budget before anything else runs (the caller refuses
   or, when a partial result is allowed, plans only the first R' replicas of every
   convention that fit, the rest "not run");
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

__all__ = [
    "Plan",
    "Batch",
    "calibrate",
    "replicas_that_fit",
    "run_batch",
    "CALIBRATION_REPLICAS",
    "CALIBRATION_SECONDS",
    "SAFETY",
]

CALIBRATION_REPLICAS = 2
CALIBRATION_SECONDS = 0.25
MIN_RUN_SECONDS = 1e-4  # an estimate below a timer's resolution is not trusted to be smaller
LOG_EVERY = 5.0  # off a terminal, a progress line every 5 s
SAFETY = 1.25  # a batch is planned to need at most budget/1.25 by the estimate: the rest absorbs its error


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
    """Results of a batch: ``runs[convention]`` maps replica k to its ExactRun (the replicas of
    R = ``replicas`` missing from it were not run).
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
    per_replica = sum(plan.per_run[c] for c in conventions)
    cost = 0.0
    for k in range(min(replicas, CALIBRATION_REPLICAS)):  # the replicas the calibration may have run
        cost += sum(plan.per_run[c] for c in conventions if (c, k) not in done)
        if cost > budget:
            return k
    more = int((budget - cost) // per_replica)  # every later replica costs per_replica
    return min(replicas, CALIBRATION_REPLICAS + more) if replicas > CALIBRATION_REPLICAS else replicas


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
    runs = {c: {k: run for (d, k), run in sorted(done.items()) if d == c} for c in conventions}
    # Runs still to start per convention, and what the estimate says they need.
    waiting = {c: planned - sum(k < planned for k in runs[c]) for c in conventions}
    reserve = sum(plan.per_run[c] * n for c, n in waiting.items())
    bar = Progress(sum(waiting.values()), None, label="exact runs", log_every=LOG_EVERY)
    order = ((c, k) for k in range(planned) for c in conventions if k not in runs[c])
    try:
        for started, (convention, k) in enumerate(order, 1):
            left = deadline - time.monotonic()
            if left <= 0:  # the budget is spent: the rest are "not run"
                break
            mine = plan.per_run[convention]
            reserve -= mine
            cap = max(left - reserve, left * mine / (mine + reserve))  # the slack, or a fair share
            runs[convention][k] = run_one(convention, k, cap)
            bar.update(started)
    finally:
        bar.close()
    flat = [r for c in conventions for r in runs[c].values()]
    truncations = {
        "seconds": sum(r.stopped_by == "seconds" for r in flat),
        "bits": sum(r.stopped_by == "bits" for r in flat),
        "not_run": len(conventions) * replicas - len(flat),
    }
    return Batch(runs, replicas, plan, time.monotonic() - start, truncations)
