"""``--backend``/``--device`` of the studies, through :func:`simsgd.engine.default_engine`.

The context must reach every ``simulate`` below a command line, be gone after it, yield to a
call that names its own backend, and refuse a bad option before anything runs.
"""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import simsgd  # noqa: E402
from simsgd import backends  # noqa: E402
from simsgd.cli import run  # noqa: E402
from simsgd.counterexample import main as counterexample_main  # noqa: E402
from simsgd.engine import _ENGINE, Engine, default_engine  # noqa: E402
from simsgd.problems import Psi2x2  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KW = dict(method="powersgd+", nodes=2, steps=12, replicas=6, lr=0.01, seed=3, restart_period=4)


@pytest.fixture
def torch_calls(monkeypatch):
    """The devices of the torch engine's runs (the backend's ops, spied on)."""
    calls, load = [], backends._LOADERS["torch"]

    def spy():
        backend = load()

        def ops(device):
            calls.append(str(device))
            return backend.ops(device)

        return backend._replace(ops=ops)

    monkeypatch.setitem(backends._LOADERS, "torch", spy)
    return calls


def test_default_engine_reaches_calls_that_name_no_backend(torch_calls):
    problem = Psi2x2(5.0, basis="aligned")
    ref = simsgd.simulate(problem, backend="torch", **KW)
    assert torch_calls == ["cpu"]
    with default_engine("torch"):
        inside = simsgd.simulate(problem, **KW)
        assert len(torch_calls) == 2
        simsgd.simulate(problem, backend="numpy", **KW)  # a call naming its backend keeps it
        assert len(torch_calls) == 2
    np.testing.assert_array_equal(inside.grad_norm_sq, ref.grad_norm_sq)
    simsgd.simulate(problem, **KW)  # after the block: NumPy again
    assert len(torch_calls) == 2 and _ENGINE.get() is None


@pytest.mark.parametrize(
    "args, match",
    [(("jax",), "backend"), (("torch", "tpu"), "device"), (("numpy", "cuda"), "backend='torch'")],
)
def test_default_engine_checks_its_options_at_once(args, match):
    with pytest.raises(ValueError, match=match):
        default_engine(*args)  # not entered: the check comes before the block


def test_counterexample_cli_on_torch_reports_the_numpy_locks(capsys):
    # Same ξ, same lock events (the draw-identity property), so the same counts and fractions.
    # Not the same means: escaped PowerSGD runs in the paper basis amplify last-bit differences.
    argv = ["--N", "3", "--sigma", "5", "--steps", "40", "--replicas", "24", "--basis", "paper", "--json"]
    summaries = []
    for backend in ("numpy", "torch"):
        assert counterexample_main(argv + ["--backend", backend]) == 0
        summaries.append(json.loads(capsys.readouterr().out))
    numpy_run, torch_run = summaries
    assert torch_run["config"]["backend"] == "torch" and numpy_run["config"]["backend"] == "numpy"
    for method in ("powersgd", "powersgd+"):
        a, b = numpy_run["methods"][method], torch_run["methods"][method]
        for key in ("locked_runs", "locked_fraction", "median_escape_step", "diverged_runs"):
            assert a[key] == b[key], (method, key)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--device", "cuda"], "needs --backend torch"),
        (["--backend", "torch", "--precision", "exact"], "--precision exact"),
        (["--backend", "tpu"], "invalid choice"),
    ],
)
def test_counterexample_cli_refuses_bad_engine_options(argv, match, capsys):
    assert run(counterexample_main, ["--steps", "5", "--replicas", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is missing")
def test_counterexample_cli_names_a_missing_cuda(capsys):
    argv = ["--steps", "5", "--replicas", "2", "--backend", "torch", "--device", "cuda"]
    assert run(counterexample_main, argv) == 2
    assert "argument --device" in capsys.readouterr().err


class _Stop(Exception):
    pass


def _studies():
    import bounds.__main__
    import counterexamples.search.search
    import figures.__main__
    import figures.figure1

    return [
        (bounds.__main__, bounds.__main__, "run_all", ["--quick"]),
        (figures.__main__, figures.figure1, "make", ["--quick"]),
        (counterexamples.search.search, counterexamples.search.search, "study", ["--quick"]),
    ]


@pytest.mark.parametrize("index", range(3), ids=["bounds", "figures", "search"])
def test_each_study_runs_its_simulations_on_the_chosen_engine(index, monkeypatch, tmp_path):
    cli_module, owner, name, argv = _studies()[index]
    seen = []

    def stop(*args, **kwargs):
        seen.append(_ENGINE.get())
        raise _Stop

    monkeypatch.setattr(owner, name, stop)
    with pytest.raises(_Stop):
        cli_module.main([*argv, "--out", str(tmp_path), "--backend", "torch"])
    assert seen == [Engine("torch", "cpu")]
    with pytest.raises(_Stop):  # control: the default is NumPy, and nothing is left set
        cli_module.main([*argv, "--out", str(tmp_path)])
    assert seen[1] in (None, Engine("numpy", "cpu")) and _ENGINE.get() is None
