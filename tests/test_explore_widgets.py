"""The explorer's widgets driven as a user would, without a browser: set a control, and the
figure must follow and show what a direct simsgd.simulate call gives.
"""

import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import simsgd  # noqa: E402
from simsgd.explore import Settings, app  # noqa: E402
from simsgd.problems import GeneralCounterexample, Psi2x2  # noqa: E402

START = Settings(steps=100, replicas=32, methods=("powersgd", "powersgd+"))


@pytest.fixture(scope="module")
def explorer():
    return app(settings=START)


def plotted(a) -> dict:
    """The mean curves of the figure the widget shows, by method (the first panel's lines)."""
    return {line.get_label().split(":")[0]: line.get_ydata() for line in a.figure.axes[0].lines}


def expected(a, method) -> np.ndarray:
    """The same curve from a direct simulate call at the settings the controls show."""
    s = a.settings().checked()
    sigma = list(s.sigma) if np.ndim(s.sigma) else s.sigma
    trace = simsgd.simulate(
        Psi2x2(sigma, basis="aligned"),
        method=method,
        nodes=s.nodes,
        rank=s.rank,
        restart_period=s.tau,
        lr=s.lr,
        momentum=s.momentum,
        steps=s.steps,
        replicas=s.replicas,
        seed=s.seed,
        progress=False,
    )
    return np.maximum(trace.grad_norm_sq.mean(axis=0), 1e-300)


def set_and_check(a, control, value, changes):
    """Set ``control``; the methods in ``changes`` must be redrawn with a direct simulate's curve."""
    before, image, updates = plotted(a), a.image.value, len(a.timings)
    a.controls[control].value = value
    assert a.wait(60), "the update did not finish"
    assert a.jobs.errors == []
    assert len(a.timings) == updates + 1, f"setting {control} did not update the figure"
    after = plotted(a)
    assert a.image.value != image
    for method in changes:
        assert not np.array_equal(after[method], before[method]), f"{method} did not change with {control}"
        assert np.array_equal(after[method], expected(a, method))
    return after


def test_a_problem_of_your_own_is_selected_with_its_rank_range():
    own = GeneralCounterexample(4, 4, signal_rank=1, noise_scale=3.0)
    a = app(problem=own, settings=Settings(problem="custom", steps=30, replicas=32, methods=("powersgd+",)))
    assert ("your problem (GeneralCounterexample)", "custom") in a.controls["problem"].options
    assert a.controls["rank"].max == 4 and a.controls["sigma"].disabled and a.image.value
    trace = simsgd.simulate(own, method="powersgd+", steps=30, replicas=32, progress=False)
    assert np.array_equal(plotted(a)["powersgd+"], trace.grad_norm_sq.mean(axis=0))


def test_tau_rank_and_nodes_reach_the_plot_as_direct_simulate_runs(explorer):
    a = explorer
    assert "Updated in" in a.status.value and len(a.timings) == 1
    for method in START.methods:
        assert np.array_equal(plotted(a)[method], expected(a, method))
    after = set_and_check(a, "tau", 4, changes=["powersgd+"])
    assert a.view.runs == 1  # PowerSGD does not restart: from the cache
    set_and_check(a, "rank", 2, changes=["powersgd", "powersgd+"])
    set_and_check(a, "nodes", 2, changes=["powersgd", "powersgd+"])
    assert a.view.settings.tau == 4 and after  # the later changes kept τ
    with a.hold():  # back to the start, as one update: everything from the cache
        a.controls["tau"].value, a.controls["rank"].value, a.controls["nodes"].value = 10, 1, 4
    a.wait(60)
    assert a.view.runs == 0 and a.timings[-1].runs == 0


def test_a_change_that_does_not_reach_the_plot_is_detected(explorer):
    a = explorer
    a.controls["tau"].unobserve_all()  # a wiring bug: τ no longer updates anything
    try:
        with pytest.raises(AssertionError, match="did not update the figure"):
            set_and_check(a, "tau", 6, changes=["powersgd+"])
    finally:
        a.controls["tau"].observe(a._changed, names="value")
        a.controls["tau"].value = 10
        a.wait(60)


def test_bad_input_is_said_in_the_status_not_raised(explorer):
    a = explorer
    shown = a.image.value
    a.controls["sigma_nodes"].value = "5, x"
    a.wait(60)
    assert "σ_i per node must be numbers" in a.status.value and a.image.value == shown
    a.controls["sigma_nodes"].value = "5, 10"  # sets N = 2
    a.wait(60)
    assert a.controls["nodes"].value == 2 and a.view.settings.sigma == (5.0, 10.0)
    assert np.array_equal(plotted(a)["powersgd"], expected(a, "powersgd"))
    with a.hold():
        a.controls["sigma_nodes"].value = ""
        a.controls["nodes"].value = 4
    a.wait(60)


def test_a_map_cell_loads_its_curves_in_the_first_tab(explorer):
    a = explorer
    a.map_taus.value, a.map_ranks.value = "2, 10", "1, 2"
    a.run_map()
    assert a.wait(120) and a.jobs.errors == []
    assert a.map.final.shape == (2, 2) and a.map_image.value
    cells = [c for c in a.map_cells.children if "simsgd-cell" in c._dom_classes]
    assert len(cells) == 4  # highest rank on top, as drawn: the first button is (τ = 2, r = 2)
    a.tabs.selected_index = 1
    cells[0].click()
    assert a.wait(60)
    assert a.tabs.selected_index == 0 and (a.view.settings.tau, a.view.settings.rank) == (2, 2)
    assert a.view.curves["powersgd+"].final == a.map.final[1, 0]


def test_stop_ends_a_long_run_and_keeps_the_last_figure(explorer):
    a = explorer
    shown, settings = a.image.value, a.view.settings
    a.controls["steps"].value = 5000
    deadline = time.monotonic() + 30
    while a.progress.value == 0 or a.progress.value == 1:  # wait until the long run is under way
        assert time.monotonic() < deadline, "the long run did not start"
        time.sleep(0.05)
    a.stop_button.click()
    assert a.wait(30)
    assert a.status.value.startswith("Stopped") and a.image.value == shown and a.view.settings == settings


def test_the_problem_selector_sets_the_rank_range_with_one_update(explorer):  # last: it leaves ψ at r = 2
    a = explorer
    updates = len(a.timings)
    with a.hold():  # T = 50: the 8×8 runs cost more
        a.controls["steps"].value = 50
        a.controls["problem"].value = "general"
    a.wait(60)
    assert a.controls["rank"].max == 8 and a.map_ranks.value == "1, 2, 3, 4"
    a.controls["rank"].value = 4
    a.wait(60)
    a.controls["problem"].value = "psi-aligned"  # r = 4 is out of ψ's range: clipped, not refused
    a.wait(60)
    assert (a.controls["rank"].value, a.controls["rank"].max) == (2, 2) and a.view.settings.rank == 2
    assert len(a.timings) == updates + 3 and a.status.value.startswith("Updated in")
