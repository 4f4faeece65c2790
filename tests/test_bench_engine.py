"""The engine benchmark's command line: rows chosen by --engines, --record passed on, bad options refused.

Speed itself is measured by the benchmark, never asserted here.
"""

import json

import pytest

pytest.importorskip("torch")

from benchmarks import bench_engine  # noqa: E402
from simsgd.cli import run  # noqa: E402


def test_chosen_rows_only(tmp_path, monkeypatch):
    records = []
    real = bench_engine._simulate

    def spy(replicas, steps, record=None, **kw):
        records.append(record)
        return real(replicas, steps, record, **kw)

    monkeypatch.setattr(bench_engine, "_simulate", spy)
    argv = ["--replicas", "50", "--steps", "20", "--repeat", "2", "--engines", "numpy", "plain_loop"]
    assert bench_engine.main([*argv, "--record", "loss", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench_engine.json").read_text())
    (row,) = result["rows"]
    assert set(row["rounds"]) == {"numpy", "plain_loop"} and len(row["rounds"]["numpy"]) == 2
    assert row["numpy"] == max(row["rounds"]["numpy"])
    assert records == [("loss",), ("loss",)] and result["settings"]["record"] == "loss"
    table = (tmp_path / "bench_engine.md").read_text()
    assert "| numpy |" in table and "torch_cpu_eager" not in table


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--record", "bogus"], "--record"),
        (["--record", "none", "--baseline-commit", "HEAD"], "--record"),
        (["--engines", "nope"], "--engines"),
        (["--repeat", "0"], "--repeat"),
        (["--replicas", "10", "20", "--steps", "5"], "--steps"),
    ],
)
def test_bad_options_are_refused(argv, match, capsys):
    assert run(bench_engine.main, argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
