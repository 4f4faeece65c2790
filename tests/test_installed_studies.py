"""The study commands are installed with the package: they run from a folder outside the checkout."""

import subprocess
import sys

import pytest

STUDIES = [
    "figures",
    "bounds",
    "counterexamples.escape",
    "counterexamples.remark2",
    "counterexamples.search",
    "benchmarks.bench_engine",
    "simsgd.counterexample",
]


@pytest.mark.parametrize("module", STUDIES)
def test_study_runs_from_outside_the_checkout(module, tmp_path):
    # No PYTHONPATH and a working directory outside the repository: only an installed package is found.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "usage" in done.stdout.lower()


def test_a_module_that_is_not_installed_is_not_found(tmp_path):  # the control
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "no_such_study"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "No module named" in done.stderr
