"""The robust-counterexample search (counterexamples/search): its problem family satisfies the
assumptions it claims, its decoder stays in range, and its failure detector can fire."""

import numpy as np
import pytest

from counterexamples.search.problem import SearchProblem
from counterexamples.search.search import BOUNDS, decode, detector_check
from simsgd.streams import NodeStreams


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


def test_decoder_gives_valid_instances():
    rng = np.random.default_rng(0)
    low, high = np.array(BOUNDS).T
    for z in rng.uniform(low, high, size=(200, len(BOUNDS))):
        problem_kw, options = decode(z)
        problem = SearchProblem(**problem_kw)  # raises on an invalid instance
        assert 1 <= options["rank"] <= problem.k and options["nodes"] == problem.nodes
        if options["optimizer"] == "msgd":
            assert options["lr"] <= (1 - options["momentum"]) / (2 * problem.L) + 1e-15


def test_failure_detector_fires_on_the_lock_and_not_in_a_rotation():
    """Theorem 1's lock (ψ, aligned, ξ_0 ≡ 1) fails in every run; the same start in a random
    basis fails in none (rounding frees it): the detector can say both."""
    check = detector_check(steps=150, replicas=8)
    assert check["psi_aligned_lock"] == [8, 8]
    assert check["psi_random_basis_lock_start"] == [0, 8]


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
