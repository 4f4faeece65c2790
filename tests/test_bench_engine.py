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


def test_fused_rows_see_new_run_lengths_beside_the_anchor(tmp_path, monkeypatch):
    # The fused engine's graphs traced, not compiled (fast); the anchor needs numba (the bench extra).
    pytest.importorskip("numba")
    from simsgd import fused

    monkeypatch.setattr(fused, "_inductor", lambda graph, device: graph)
    monkeypatch.setattr(fused, "_GRAPHS", {})
    seen = []
    real = bench_engine._simulate

    def spy(replicas, steps, record=None, **kw):
        seen.append((steps, kw.get("backend", "numpy")))
        return real(replicas, steps, record, **kw)

    monkeypatch.setattr(bench_engine, "_simulate", spy)
    engines = ["numpy", "lanes_cpu_compiled", "fused_anchor"]
    argv = ["--replicas", "40", "--steps", "30", "--repeat", "2", "--engines", *engines]
    assert bench_engine.main([*argv, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench_engine.json").read_text())
    (row,) = result["rows"]
    assert row["steps"] == [30, 31] and set(row["rounds"]) == set(engines)
    warm = bench_engine.WARM_UP_STEPS
    assert [t for t, backend in seen if backend == "lanes"] == [warm, warm, 30, 31]  # then unseen T
    assert [t for t, backend in seen if backend == "numpy"] == [30, 31]
    assert result["checks"]["lanes_vs_numpy_aligned_max_rel_diff"] <= 1e-9
    moved = result["bytes_per_replica_step_moved"]
    lanes = next(v for k, v in moved.items() if k.startswith("lanes"))
    assert set(lanes) == {"restart step", "SSP step"} and all(b > 100 for b in lanes.values())
    table = (tmp_path / "bench_engine.md").read_text()
    assert "| fused_anchor |" in table and "first call" in table and "× anchor" in table
