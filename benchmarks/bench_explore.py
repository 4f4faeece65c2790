"""How long the τ and rank explorer takes to update (issue 25: ≤ 1 s at the default settings).

Drives the widget app (:mod:`simsgd.explore.widgets`) as a user would: set a control, wait for
the new figure in the widget. From the defaults (ψ aligned, PowerSGD, PowerSGD+ and full
averaging, T = 200, R = 64) it times the first view (three runs), a τ change (one run: only
PowerSGD+ restarts), an r change and an N change (all runs), and a return to settings already
seen (no run: the cache). Each kind is timed ``--repeat`` times with fresh values, on the wall
clock (request to figure) and on the process's CPU clock (what the update costs on an idle
core; the wall clock also counts time this process waits for a core on a shared machine). The
load average at the start and end is written beside the numbers. Usage::

    python -m benchmarks.bench_explore [--repeat 3] [--out DIR]

It writes ``bench_explore.md`` and ``bench_explore.json`` under ``--out`` (default
``out/bench_explore``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from simsgd.output import atomic_write_text


def _timed(app, change):
    """Apply ``change`` to the app, wait for the update; (wall s, CPU s, runs made, figure s)."""
    updates, cpu = len(app.timings), time.process_time()
    change()
    if not app.wait(600) or len(app.timings) != updates + 1:
        raise RuntimeError(f"the update did not finish: {app.status.value}")
    timing = app.timings[-1]
    return dict(wall=timing.total, cpu=time.process_time() - cpu, runs=timing.runs, figure=timing.figure)


def _changes(app, k):
    """(name, change) of each timed update after the first view; ``k`` makes the values fresh."""
    c = app.controls

    def back():
        with app.hold():
            c["tau"].value, c["rank"].value, c["nodes"].value = 10, 1, 4

    return [
        ("τ changed", lambda: setattr(c["tau"], "value", 11 + k)),
        ("r changed", lambda: setattr(c["rank"], "value", 2)),
        ("N changed", lambda: setattr(c["nodes"], "value", 5 + k)),
        ("back to a cached setting", back),
    ]


def measure(repeat: int) -> dict:
    from simsgd.explore.widgets import App  # ipywidgets: the notebooks extra

    rows = {
        "first view": [],
        "τ changed": [],
        "r changed": [],
        "N changed": [],
        "back to a cached setting": [],
    }
    for k in range(repeat):
        cpu = time.process_time()
        app = App()  # the first view is computed and waited for in the constructor
        rows["first view"].append(
            dict(wall=app.timings[0].total, cpu=time.process_time() - cpu, runs=app.timings[0].runs,
                 figure=app.timings[0].figure)
        )  # fmt: skip
        for name, change in _changes(app, k):
            rows[name].append(_timed(app, change))
    return rows


def report(rows: dict, load: tuple) -> str:
    lines = [
        "| update | runs made | wall s (median, max) | CPU s (median, max) | figure, wall s (median) |",
        "|---|---|---|---|---|",
    ]
    for name, samples in rows.items():
        wall, cpu = [s["wall"] for s in samples], [s["cpu"] for s in samples]
        figure = statistics.median(s["figure"] for s in samples)
        lines.append(
            f"| {name} | {samples[0]['runs']} | {statistics.median(wall):.2f}, {max(wall):.2f} | "
            f"{statistics.median(cpu):.2f}, {max(cpu):.2f} | {figure:.2f} |"
        )
    repeats = len(next(iter(rows.values())))
    lines.append("")
    lines.append(
        f"{repeats} repeats; load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end, "
        f"on {os.cpu_count()} cores ({platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}). Command: `python -m benchmarks.bench_explore`."
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per kind of update (default 3)")
    parser.add_argument("--out", default=os.path.join("out", "bench_explore"), help="folder for the results")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be ≥ 1, got {args.repeat}")
    start_load = os.getloadavg()[0]
    rows = measure(args.repeat)
    load = (start_load, os.getloadavg()[0])
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "bench_explore.md"), report(rows, load))
    atomic_write_text(
        os.path.join(args.out, "bench_explore.json"), json.dumps(dict(rows=rows, load=load), indent=1) + "\n"
    )
    print(report(rows, load), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
