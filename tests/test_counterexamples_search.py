"""The floor-versus-step-size search (counterexamples/search): its family satisfies the assumptions
it claims and keeps X_0 away from stationarity, its rules say what they are meant to on inputs
whose answer is known (each can fire and each can stay silent), and its detector fires on
Theorem 1's lock and not on a rotation of it."""

import re
from pathlib import Path

import numpy as np
import pytest

from counterexamples.search.analysis import distribution, ratio, shrink
from counterexamples.search.controls import lock_controls
from counterexamples.search.family import X0_FRACTION, draw
from counterexamples.search.floors import Floor, horizon, relaxation_rate, step_size
from counterexamples.search.ladder import Settings
from counterexamples.search.problem import SearchProblem
from counterexamples.search.report import BEGIN, END
from counterexamples.search.robustness import perturbed_x0
from counterexamples.search.verdicts import best_verdict, floor_verdict, noconv_verdict
from simsgd.streams import NodeStreams

HERE = Path(__file__).resolve().parents[1] / "counterexamples" / "search"


@pytest.mark.parametrize("noise", ["rademacher", "normal", "uniform"])
def test_oracle_is_unbiased_with_bounded_variance(noise):
    problem = SearchProblem(6, 5, 2, [1.0, 3.0, 9.0], kink=0.7, noise=noise, heterogeneity=1.5, basis_seed=3)
    x = np.random.default_rng(0).standard_normal((1, 6, 5))
    draws = [
        problem.stochastic_grads(x, 3, NodeStreams(0, np.arange(4000), np.arange(3)).at(t)) for t in range(3)
    ]
    grads = np.concatenate(draws)  # (12000, 3, 6, 5)
    mean = grads.mean(axis=(0, 1))
    np.testing.assert_allclose(mean, problem.grad(x)[0], atol=0.05 * np.sqrt(problem.variance))
    per_node = ((grads - problem.grad(x)[:, None]) ** 2).sum((2, 3)).mean(0)
    assert np.all(per_node <= problem.variance * 1.05)
    assert np.sum(problem.grad(x) ** 2) <= problem.omega_sq


def test_family_instances_are_valid_and_start_away_from_stationarity():
    shares = []
    for i in range(60):
        kw, options = draw(0, i)
        problem = SearchProblem(**kw)  # raises on an invalid instance
        assert 1 <= options["rank"] <= problem.k and len(kw["sigmas"]) == options["nodes"]
        assert 0 <= options["momentum"] <= 0.9
        shares.append(np.sum(problem.grad(problem.x0) ** 2) / problem.omega_sq)
    assert min(shares) >= X0_FRACTION and max(shares) <= 1 + 1e-12
    assert draw(0, 5) == draw(0, 5) and draw(0, 5) != draw(1, 5)


def test_horizon_covers_the_same_relaxation_times_and_scales_as_one_over_eta():
    assert relaxation_rate(0.05, 0.0, 8.0) == pytest.approx(-np.log(1 - 0.05 * 8))
    for momentum in (0.0, 0.5, 0.9):
        eta1, eta2 = step_size(momentum, 1, 8.0), step_size(momentum, 2, 8.0)
        t1, t2 = horizon(eta1, momentum, 8.0), horizon(eta2, momentum, 8.0)
        assert t1 % 4 == 0 and t2 % 4 == 0
        assert t2 * relaxation_rate(eta2, momentum, 8.0) >= 30
        if momentum <= 0.5:  # overdamped at k = 1 and 2: T ∝ 1/η to 10%
            assert t2 * eta2 == pytest.approx(t1 * eta1, rel=0.1)
    # underdamped (μ = 0.9 at η_max): the momentum caps the rate at −ln √μ
    assert relaxation_rate(step_size(0.9, 0, 8.0), 0.9, 8.0) == pytest.approx(-np.log(np.sqrt(0.9)))


def _floor(eta, values, q=1.0, resolution=1e-26, method="m"):
    values = np.asarray(values, dtype=float)
    return Floor(method, eta, 100, values, q, resolution, np.zeros(values.size))


def _noisy(mean, size=32, seed=0):
    return mean * np.random.default_rng(seed).uniform(0.8, 1.2, size)


def test_shrink_test_fires_on_a_flat_floor_and_not_on_a_shrinking_one():
    flat = [_floor(1.0, _noisy(2.0, seed=1)), _floor(0.01, _noisy(2.0, seed=2))]
    assert shrink(flat)["verdict"] == "does not shrink"
    quadratic = [_floor(1.0, _noisy(1.0, seed=1)), _floor(0.01, _noisy(1e-4, seed=2))]
    assert shrink(quadratic)["verdict"] == "shrinks"
    rounding = [_floor(1.0, _noisy(1.0)), _floor(0.01, _noisy(1e-30))]
    assert shrink(rounding)["verdict"] == "shrinks"
    still_falling = [_floor(1.0, _noisy(1.0, seed=1)), _floor(0.01, _noisy(1.0, seed=2), q=0.1)]
    assert shrink(still_falling)["verdict"] == "decreasing"
    borderline = [_floor(1.0, [1.0, 20.0] * 4), _floor(0.01, [1.0] * 8)]  # factor 10.5, wide interval
    assert shrink(borderline)["verdict"] == "undecided"


def test_ratio_never_divides_by_a_rounding_floor():
    a, b = _floor(0.1, _noisy(3.0, seed=1)), _floor(0.1, _noisy(1.0, seed=2))
    r = ratio(a, b)
    assert r["ci95"][0] < r["ratio"] < r["ci95"][1] and r["ratio"] == pytest.approx(3.0, rel=0.15)
    censored = ratio(a, _floor(0.1, np.full(32, 1e-31)))
    assert (
        censored["censored"]
        and censored["ci95"][1] is None
        and censored["ratio"] == pytest.approx(3e26, rel=0.2)
    )
    assert ratio(_floor(0.1, np.full(32, 1e-31)), _floor(0.1, np.full(32, 1e-31)))["ratio"] is None


def _ladder(psgd, plus, seed=0):
    return {
        "powersgd": [_floor(10.0**-k, _noisy(v, seed=[seed, k])) for k, v in enumerate(psgd)],
        "powersgd+": [_floor(10.0**-k, _noisy(v, seed=[seed, 10 + k])) for k, v in enumerate(plus)],
    }


def test_claim_rules_fire_and_stay_silent():
    helped = [_ladder([1, 1e-2, 1e-4 * f], [1, 1e-2, 1e-4], i) for i, f in enumerate((5, 8, 12, 20, 30))]
    same = [_ladder([1, 1e-2, 1e-4], [1, 1e-2, 1e-4], i) for i in range(9)]
    assert floor_verdict(helped)["verdict"] == "holds in scope"
    assert floor_verdict(same)["verdict"] == "open"
    assert (
        floor_verdict(same)["value"]["median_ci95"][0] <= 1 <= floor_verdict(same)["value"]["median_ci95"][1]
    )
    assert noconv_verdict(helped)["verdict"] == "holds in scope"
    stalled = helped + [_ladder([2.0, 2.0, 2.0], [1, 1e-2, 1e-4])]
    found = noconv_verdict(stalled)
    assert found["verdict"] == "fails" and found["value"]["not_shrinking"][0]["method"] == "powersgd"
    assert noconv_verdict(helped, controls_passed=False)["verdict"] == "open"
    assert best_verdict({"selection": helped[-1], "fresh seeds": helped[-2]})["verdict"] == "holds"
    assert best_verdict({"selection": helped[-1], "fresh seeds": same[0]})["verdict"] == "open"


def test_distribution_counts_instances_on_each_side_of_one():
    rows = [{"ratio": v, "ci95": [v / 2, v * 2], "censored": False} for v in (0.1, 3.0, 5.0, 9.0)]
    rows.append({"ratio": None, "why": "both floors are at rounding level"})
    d = distribution(rows)
    assert d["n"] == 4 and d["excluded"] == 1 and d["above_1"] == 3 and d["below_1"] == 1
    assert d["median"] == pytest.approx(4.0)


def test_rotation_and_perturbation_change_what_they_say():
    from counterexamples.search.problem import _haar

    problem = SearchProblem(5, 4, 2, [3.0, 9.0], kink=0.8, heterogeneity=1.0, basis_seed=2, x0_noise=0.3)
    turned = problem.rotated(7)
    rng = np.random.default_rng([7, 2])
    rm, rn = _haar(5, rng), _haar(4, rng)
    x = np.random.default_rng(1).standard_normal((3, 5, 4))
    np.testing.assert_allclose(turned.loss(rm @ x @ rn.T), problem.loss(x))
    np.testing.assert_allclose(turned.grad(rm @ x @ rn.T), rm @ problem.grad(x) @ rn.T, atol=1e-12)
    np.testing.assert_allclose(turned.x0, rm @ problem.x0 @ rn.T)
    np.testing.assert_allclose(turned.H, rm @ problem.H @ rn.T)
    assert not np.allclose(turned.A, problem.A)
    moved = perturbed_x0(problem.x0, 0)
    assert np.linalg.norm(moved - problem.x0) == pytest.approx(1e-3 * np.linalg.norm(problem.x0))


def test_detector_fires_on_the_lock_and_not_in_a_rotation():
    """Theorem 1's lock (ψ, aligned, ξ_0 ≡ 1, N = 3): PowerSGD's floor stays at 16 at every η; the
    same start in a random basis is freed by rounding and its floor shrinks."""
    out = lock_controls(Settings(replicas=8, span=6.0))
    assert out["locked, aligned basis"]["shrink"]["powersgd"] == "does not shrink"
    assert out["locked, aligned basis"]["floors"]["powersgd"] == [16.0, 16.0, 16.0]
    assert "does not shrink" not in out["lock start, random basis"]["shrink"].values()
    assert out["passed"]


def test_readme_includes_the_generated_summary_verbatim():
    def block(text):
        match = re.search(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, re.S)
        assert match, "summary block missing"
        return match.group(1)

    table = (HERE / "search_table.md").read_text(encoding="utf-8")
    assert block((HERE / "README.md").read_text(encoding="utf-8")) == block(table)


@pytest.mark.parametrize("module", ["search", "escape", "remark2"])
def test_study_clis_refuse_a_file_as_out_before_computing(module, tmp_path, capsys):
    import importlib

    from simsgd.cli import run

    main = importlib.import_module(
        {"search": "counterexamples.search.search", "escape": "counterexamples.escape.escape_study"}.get(
            module, "counterexamples.remark2.remark2"
        )
    ).main
    target = tmp_path / "file"
    target.write_text("x")
    assert run(main, ["--quick", "--out", str(target)], prog=module) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]
    assert target.read_text() == "x"
