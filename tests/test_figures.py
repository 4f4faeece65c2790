"""`python -m figures --quick` end to end (slow: subprocesses)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from figures import OTHER_FIGURES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = (
    "figure1.png",
    "figure1.csv",
    "figure1_claims.json",
    "figure1_table.md",
    "sweep.csv",
    "pareto.png",
    "heatmap_tau_rank.png",
    "floats_table.md",
    "PROVENANCE.md",
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


def _provenance_files(path):
    """The file names in the first column of a PROVENANCE.md table."""
    return {line.split("`")[1] for line in path.read_text().splitlines() if line.startswith("| `")}


def test_provenance_names_the_command_of_every_file(quick):
    text = (quick / "PROVENANCE.md").read_text()
    assert "`python -m figures --quick --out " in text and "commit `" in text and "seed=0" in text
    made = set(EXPECTED) - {"PROVENANCE.md"}
    assert _provenance_files(quick / "PROVENANCE.md") == made | set(OTHER_FIGURES)


def test_committed_figures_folder_has_provenance_for_every_result():
    # Fails when a result is added to figures/ without a command, or one listed is missing.
    results = {p.name for p in (ROOT / "figures").iterdir() if p.suffix in (".png", ".csv", ".md", ".json")}
    assert _provenance_files(ROOT / "figures" / "PROVENANCE.md") == results - {"PROVENANCE.md"}


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
        # a random rotation of the same problem: no stall
        assert last["random", opt, "powersgd"] < 0.1 * last["aligned", opt, "powersgd"]
    # Every row's band holds its mean (fails if the CSV's columns were swapped or mislabelled).
    assert all(float(r["lower95"]) <= float(r["mean_loss"]) <= float(r["upper95"]) for r in rows)


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


def test_save_figure_is_byte_reproducible_and_closes(tmp_path):
    import matplotlib.pyplot as plt

    from simsgd.plotting import save_figure

    def draw():
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [1, 0])
        return fig

    first, second = tmp_path / "a.png", tmp_path / "b.png"
    fig = draw()
    save_figure(fig, first)
    assert not plt.fignum_exists(fig.number)
    save_figure(draw(), second)
    assert first.read_bytes() == second.read_bytes() and b"Matplotlib" not in first.read_bytes()
    plain = draw()  # the negative control: matplotlib's default writes its version into the PNG
    plain.savefig(tmp_path / "plain.png")
    plt.close(plain)
    assert b"Matplotlib" in (tmp_path / "plain.png").read_bytes()
