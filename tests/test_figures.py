"""`python -m figures --quick` end to end, and the notebook executed headless."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = (
    "figure1.png",
    "figure1.csv",
    "sweep.csv",
    "pareto.png",
    "heatmap_tau_rank.png",
    "floats_table.md",
)


def _env():
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )


def _figures(out):
    return subprocess.run(
        [sys.executable, "-m", "figures", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    result = _figures(out)
    assert result.returncode == 0, result.stderr
    return out


def test_quick_run_writes_every_file_and_no_temporaries(quick):
    for name in EXPECTED:
        assert (quick / name).stat().st_size > 0, name
    assert sorted(p.name for p in quick.iterdir()) == sorted(EXPECTED)
    assert (quick / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_covers_the_grid_and_floats_match_table2_where_they_should(quick):
    rows = list(csv.DictReader(open(quick / "sweep.csv")))
    for problem in ("general", "quadratic"):
        cells = {
            (r["tau"], r["rank"]) for r in rows if r["problem"] == problem and r["method"] == "powersgd+"
        }
        assert cells == {
            (t, r) for t in ("1", "2", "5", "10", "20", "50", "100", "inf") for r in ("1", "2", "4", "8")
        }
    for r in rows:
        if r["method"] in ("full", "powersgd", "power-iteration") or (
            r["method"] == "galore" and r["tau"] != "inf" and 40 % int(r["tau"]) == 0
        ):
            assert float(r["floats_per_step"]) == pytest.approx(float(r["table2_floats"])), r


def test_figure1_data_shows_the_stall(quick):
    rows = list(csv.DictReader(open(quick / "figure1.csv")))
    last = {}
    for r in rows:
        last[r["basis"], r["optimizer"], r["method"]] = float(r["mean_loss"])
    first = float(rows[0]["mean_loss"])
    for opt in ("msgd", "adam"):
        assert last["aligned", opt, "powersgd+"] < last["aligned", opt, "powersgd"] <= first
        assert float(rows[0]["lower95"]) <= first <= float(rows[0]["upper95"])
        # a random rotation of the same problem: no stall
        assert last["random", opt, "powersgd"] < 0.1 * last["aligned", opt, "powersgd"]


def test_runs_are_deterministic(quick, tmp_path):
    assert _figures(tmp_path).returncode == 0
    for name in ("figure1.csv", "sweep.csv", "floats_table.md"):
        assert (tmp_path / name).read_bytes() == (quick / name).read_bytes(), name


def test_bad_output_folder_is_a_one_line_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "figures", "--quick", "--out", str(target)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--out" in result.stderr


def test_notebook_executes_headless(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = ROOT / "notebooks" / "explore_tau_rank.ipynb"
    notebook = nbformat.read(path, as_version=4)
    for name, value in _env().items():  # the kernel inherits this environment
        monkeypatch.setenv(name, value)
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("final E||∇f||²" in o.get("text", "") for o in outputs)
