"""The explorer's library (simsgd.explore.model, .figures, .jobs), without widgets or a browser."""

import dataclasses
import threading

import numpy as np
import pytest

import simsgd
from simsgd import registry
from simsgd.explore import figures
from simsgd.explore.jobs import Jobs
from simsgd.explore.model import Explorer, Stopped
from simsgd.explore.overlay import summary
from simsgd.explore.settings import IGNORED, SHAPES, Settings
from simsgd.lock import locked_mask
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2

SMALL = Settings(steps=60, replicas=32, methods=("powersgd", "powersgd+", "full"))


@pytest.fixture(scope="module")
def shared():
    """One explorer for the tests that only read what it shows (its cache saves their runs)."""
    return Explorer()


def direct(problem, settings, method):
    """The run the explorer must show, made without it."""
    return simsgd.simulate(
        problem,
        method=method,
        rank=settings.rank,
        restart_period=settings.restart_period,
        progress=False,
        **settings.simulate_options(),
    )


def test_the_view_shows_direct_simulate_runs_and_reruns_only_what_a_change_touches():
    explorer = Explorer()
    view = explorer.view(SMALL)
    problem = Psi2x2(5.0, basis="aligned")
    for method, curves in view.curves.items():
        assert np.array_equal(curves.trace.grad_norm_sq, direct(problem, SMALL, method).grad_norm_sq)
        assert curves.trace.config["problem"] == "Psi2x2"
    assert (view.runs, explorer.runs_made) == (3, 3)
    moved = explorer.view(dataclasses.replace(SMALL, tau=7))  # only PowerSGD+ restarts
    assert moved.runs == 1 and explorer.runs_made == 4
    assert moved.curves["powersgd"].trace is view.curves["powersgd"].trace
    assert not np.array_equal(
        moved.curves["powersgd+"].trace.grad_norm_sq, view.curves["powersgd+"].trace.grad_norm_sq
    )
    assert explorer.view(SMALL).runs == 0 and explorer.runs_made == 4  # moved back: all from the cache


CHANGES = {"rank": 2, "tau": 3, "rule": "geometric", "restart": "random"}


@pytest.mark.parametrize("method", sorted(IGNORED))
def test_each_setting_the_cache_key_leaves_out_changes_nothing(method):
    # a rank-2 signal in 4×4: every rank, τ, rule and restart kind matters to some method
    problem = GeneralCounterexample(4, 4, signal_rank=2, noise_scale=3.0)
    base = Settings(steps=25, replicas=4, nodes=3, rank=1, tau=5)
    reference = direct(problem, base, method)
    for name in IGNORED[method]:
        changed = direct(problem, dataclasses.replace(base, **{name: CHANGES[name]}), method)
        assert np.array_equal(changed.grad_norm_sq, reference.grad_norm_sq), name
        assert np.array_equal(changed.floats_sent, reference.floats_sent), name
    assert set(IGNORED) == set(registry.BUILT_IN)


def test_the_key_keeps_what_matters_a_negative_control():
    explorer = Explorer()
    for name, value in CHANGES.items():
        moved = dataclasses.replace(SMALL, **{name: value})
        assert explorer._key(moved, "powersgd+") != explorer._key(SMALL, "powersgd+"), name
    assert explorer._key(dataclasses.replace(SMALL, seed=1), "full") != explorer._key(SMALL, "full")


def test_progress_reaches_the_total_and_stop_ends_a_run_caching_nothing():
    explorer, seen = Explorer(), []
    explorer.view(SMALL, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (180, 180) and len(seen) > 100  # 3 runs × 60 steps, reported at each step
    longer = dataclasses.replace(SMALL, steps=500)
    stop_at_step_5 = lambda: len(seen) > 185 or seen.append(0)  # 180 from before, then one per step
    with pytest.raises(Stopped, match="step 5"):
        explorer.view(longer, stop=stop_at_step_5)
    assert not any(explorer.cached(longer, m) for m in longer.methods)


def test_theory_beside_the_measurement(shared):
    explorer = shared
    view = explorer.view(SMALL)
    t = view.theory
    assert t.epsilon0 == pytest.approx(16.0 / 2**4) and t.lock_probability == 2**-4
    assert t.theorem4 is not None and t.theorem4.vacuous and t.theorem4.status == "vacuous"
    assert t.theorem4.measured.n == SMALL.replicas and t.step_limit == pytest.approx(0.1 / 16)
    assert "vacuous" in summary(view)
    # a bound that can fail: N = 1, σ = 1, τ = 1, μ = 0, η = 1e-3, T = 1500: 8 + 0.32 + 5.05 < 16
    tight = Settings(sigma=1.0, nodes=1, tau=1, momentum=0.0, lr=1e-3, steps=1500, replicas=32)
    check = explorer.view(dataclasses.replace(tight, methods=("powersgd+",))).theory.theorem4
    assert not check.vacuous and check.bound < check.do_nothing and check.status == "holds"
    steep = explorer.view(dataclasses.replace(SMALL, lr=0.01)).theory
    assert steep.theorem4 is None and any("outside its step-size condition" in n for n in steep.notes)
    full_rank = explorer.view(dataclasses.replace(SMALL, rank=2)).theory
    assert any("full rank" in n for n in full_rank.notes)
    random_restart = explorer.view(dataclasses.replace(SMALL, restart="random")).theory
    assert random_restart.theorem4 is None and any("SVD restart" in n for n in random_restart.notes)


def test_the_quadratic_and_a_problem_of_your_own(shared):
    explorer = shared
    quadratic = explorer.view(dataclasses.replace(SMALL, problem="quadratic", sigma=1.0, rank=2))
    assert quadratic.theory.epsilon0 is None and quadratic.theory.lock_probability is None
    assert quadratic.curves["powersgd"].locked is None
    assert quadratic.theory.theorem4.constants["omega_sq_source"] == "visited"

    class Bare:  # a problem with no constants: curves, but no theory
        def __init__(self):
            self._inner = HeterogeneousQuadratic(4, 3, nodes=2)
            self.shape, self.x0 = self._inner.shape, self._inner.x0

        def loss(self, x):
            return self._inner.loss(x)

        def grad(self, x):
            return self._inner.grad(x)

        def stochastic_grads(self, x, nodes, rng):
            return self._inner.stochastic_grads(x, nodes, rng)

    own = Explorer(Bare())
    view = own.view(dataclasses.replace(SMALL, problem="custom", nodes=2))
    assert view.label == "your problem (Bare)" and view.theory.theorem4 is None
    assert any("no smoothness constant" in n for n in view.theory.notes)
    with pytest.raises(ValueError, match="custom"):
        Explorer().view(dataclasses.replace(SMALL, problem="custom"))


def test_each_built_in_problem_has_the_shape_the_rank_range_is_read_from(shared):
    explorer = shared
    for name, shape in SHAPES.items():
        assert explorer.problem(dataclasses.replace(SMALL, problem=name)).shape == shape
        assert explorer.max_rank(name) == min(shape)


def test_settings_out_of_range_are_refused_naming_them():
    with pytest.raises(ValueError, match="sigma lists one σ_i per node: 2 values for N = 4"):
        Settings(sigma=(5.0, 10.0)).checked()
    with pytest.raises(ValueError, match="methods"):
        Settings(methods=("nope",)).checked()
    with pytest.raises(ValueError, match="rank"):
        Explorer().view(dataclasses.replace(SMALL, rank=3))  # ψ is 2×2
    assert Settings(sigma=[5, 10], nodes=2).checked().sigma == (5.0, 10.0)


def test_the_locked_fraction_is_the_lock_test_and_near_two_to_the_minus_n():
    # N = 1: Theorem 1's lock event has probability 1/2; PowerSGD (r = 1) stays locked when it happens
    settings = dataclasses.replace(SMALL, nodes=1, steps=100, replicas=200)
    view = Explorer().view(settings)
    curves = view.curves["powersgd"]
    assert curves.locked == int(locked_mask(Psi2x2(5.0, basis="aligned"), curves.trace).sum())
    low, high = curves.locked_interval
    assert low < view.theory.lock_probability == 0.5 < high
    assert view.curves["full"].locked == 0


def test_a_map_cell_is_the_curves_run_at_its_tau_and_rank(shared):
    explorer = shared
    smap = explorer.sweep_map(SMALL, "powersgd+", taus=(1, 7), ranks=(1, 2))
    assert smap.final.shape == smap.floats.shape == (2, 2)
    for (i, j), value in np.ndenumerate(smap.final):
        cell = dataclasses.replace(SMALL, tau=smap.taus[j], rank=smap.ranks[i])
        curves = explorer.view(cell).curves["powersgd+"]
        assert value == curves.final and smap.floats[i, j] == curves.floats_per_step
    assert smap.final[0, 0] != smap.final[0, 1]  # τ matters at r = 1
    seen = []
    with pytest.raises(Stopped):
        explorer.sweep_map(
            SMALL, "powersgd+", (3,), (1,), progress=lambda d, t: seen.append(d), stop=lambda: seen
        )


def test_the_figures_draw_the_view_and_the_map(shared):
    explorer = shared
    view = explorer.view(SMALL)
    fig = figures.curves_figure(view)
    grad, floats, lock = fig.axes
    lines = {line.get_label().split(":")[0]: line for line in grad.lines}
    for method, curves in view.curves.items():
        assert np.array_equal(
            lines[method].get_ydata(), np.maximum(curves.trace.grad_norm_sq.mean(axis=0), 1e-300)
        )
    off_scale = [t.get_text() for t in grad.texts]  # the vacuous bound is written, not drawn
    assert any("Theorem 4's bound" in text and "vacuous" in text for text in off_scale)
    assert [tick.get_text() for tick in lock.get_xticklabels()] == list(view.curves)
    assert figures.png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    smap = explorer.sweep_map(SMALL, "powersgd+", taus=(1, 7), ranks=(1, 2))
    heat = figures.map_figure(smap).axes[0].images[0]
    assert np.array_equal(heat.get_array(), smap.final)


def test_jobs_keep_the_latest_of_a_kind_and_stop_the_running_one():
    jobs, ran, started, release = Jobs(), [], threading.Event(), threading.Event()

    def slow(stop):
        started.set()
        while not stop():
            release.wait(0.01)
        ran.append("slow stopped")

    jobs.submit("curves", slow)
    started.wait(5)
    jobs.submit("map", lambda stop: ran.append("map"))
    jobs.submit("curves", lambda stop: ran.append("first"))
    jobs.submit("curves", lambda stop: ran.append("latest"))  # replaces "first", stops "slow"
    assert jobs.wait(10) and not jobs.busy
    assert ran == ["slow stopped", "map", "latest"] and jobs.errors == []
    jobs.submit("curves", lambda stop: 1 / 0)
    jobs.wait(10)
    assert "ZeroDivisionError" in jobs.errors[0]


def test_without_ipywidgets_the_library_works_and_app_says_what_to_install(monkeypatch):
    import sys

    from simsgd import explore

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "simsgd.explore.widgets", raising=False)
    with pytest.raises(ImportError, match=r'pip install "simsgd\[notebooks\]"'):
        explore.app()
    assert Explorer().view(dataclasses.replace(SMALL, steps=5, methods=("full",))).curves["full"].final > 0
