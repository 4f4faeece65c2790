"""benchmarks.scale_model: the traffic it derives from layer shapes, its fits, its break-even rates."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from benchmarks import _scale_fit, _scale_predict, _scale_shapes, scale_model  # noqa: E402
from simsgd.cli import run  # noqa: E402


def test_traffic_from_shapes_matches_the_hooks_count_on_the_byte_lm():
    shapes = _scale_shapes.bytelm_shapes()
    assert _scale_shapes.parameters(shapes) == 136_960
    # The hook's own counts (recorded by benchmarks.bandwidth): one bucket; PowerSGD sends the
    # uncompressed tensors + flag (1 793), P (6 912) and Q (4 352) floats.
    assert _scale_predict.step_traffic(shapes, "all-reduce") == (1, 547_840.0, 0.0)
    assert _scale_predict.step_traffic(shapes, "PowerSGD", 4) == (3, 52_228.0, 0.0)
    plus = _scale_predict.step_traffic(shapes, "PowerSGD+", 4, 3)
    assert plus[:2] == pytest.approx((7 / 3, (2 * 52_228 + 4 * 136_961) / 3))
    galore = _scale_predict.step_traffic(shapes, "GaLore-style", 4, 3)
    assert galore[:2] == pytest.approx((5 / 3, (2 * 4 * (1793 + 4352) + 4 * 136_961) / 3))
    # Negative control: at r = 32 the 64 × 64 matrices are no longer compressed, so more is sent.
    assert _scale_predict.step_traffic(shapes, "PowerSGD", 32)[1] > 4 * 136_960 / 2


def test_buckets_follow_ddps_caps():
    big = (3000, 3000)  # 36 MB: a bucket of its own
    parts = _scale_predict.buckets(([(100, 100), big, (100, 100)], 10))
    assert [len(ms) for ms, _ in parts] == [1, 1, 1] and parts[-1][1] == 10
    assert len(_scale_predict.buckets(([(100, 100)] * 5, 0))) == 1  # 200 kB < 1 MiB
    assert len(_scale_predict.buckets(_scale_shapes.MODELS["LLaMA 7B"])) > 200


def _synthetic_bandwidth(alpha, eta, rate=5000.0):
    measured = {}
    for n in (2, 4):
        measured[str(n)] = {}
        for mbit in (0, 30, 300):
            methods = {}
            for name, messages, volume in (("all-reduce", 1, 5e5), ("PowerSGD r=4", 3, 5e4)):
                b = (mbit * eta if mbit else rate) * 1e6
                t = messages * 2 * (n - 1) * alpha + 2 * (n - 1) / n * 8 * volume / b
                methods[name] = {"comm": [t] * 5, "messages": messages, "recorded_bytes": volume}
            measured[str(n)][str(mbit)] = {"methods": methods}
    return measured


def test_fit_comm_recovers_alpha_eta_and_the_veth_rate():
    fit = _scale_fit.fit_comm(_synthetic_bandwidth(2e-4, 0.9))
    assert fit["alpha"] == pytest.approx(2e-4, rel=1e-6) and fit["eta"] == pytest.approx(0.9, rel=1e-6)
    assert fit["unshaped_mbit"] == pytest.approx(5000.0, rel=1e-6)
    assert max(abs(c["residual"]) for c in fit["cells"]) < 1e-9
    # Negative control: data made with a larger latency do not fit the first model.
    other = _scale_fit.fit_comm(_synthetic_bandwidth(8e-4, 0.9))
    assert other["alpha"] == pytest.approx(8e-4, rel=1e-6)


def _compute_record(c0=1e-4, c1=2e-8, s=1e-9, head=5e-4):
    shapes = {}
    f = lambda kind, m, n: c0 + c1 * m * n + (s * m * n * min(m, n) if kind == "restart" else 0.0)
    for layers, (m, n) in [(1, (64, 64)), (1, (128, 64)), (1, (256, 256)), (1, (512, 512)), (4, (64, 64))]:
        shapes[f"{layers}*{m}x{n}"] = {
            "m": m, "n": n, "layers": layers, "rank": 4, "baseline": 1e-3,
            **{k: head + layers * f(k, m, n) for k in ("power", "restart", "fixed")},
        }  # fmt: skip
    return {"device_name": "test CPU", "shapes": shapes}, f


def test_compute_model_separates_bucket_and_matrix_costs_and_extrapolates():
    record, f = _compute_record()
    model = _scale_fit.fit_compute(record)
    assert model.bucket("power") == pytest.approx(5e-4)
    assert model.matrix("power", 128, 64) == pytest.approx(f("power", 128, 64))  # measured shape
    for kind in ("power", "restart", "fixed"):  # an unmeasured shape: the fit
        assert model.matrix(kind, 2048, 1024) == pytest.approx(f(kind, 2048, 1024), rel=1e-6)


def test_break_even_is_where_the_two_step_times_cross():
    shapes = _scale_shapes.MODELS["GPT-2 124M"]
    record, _ = _compute_record()
    compute = _scale_fit.fit_compute(record)
    ref = _scale_predict.step_traffic(shapes, "all-reduce", 4, None, compute)
    plus = _scale_predict.step_traffic(shapes, "PowerSGD+", 4, 10, compute)
    for algo in ("ring", "tree"):
        b = _scale_predict.break_even(plus, ref, 64, 1e-4, 0.9, algo)
        assert 0 < b < math.inf
        t = lambda traffic, g, algo=algo: _scale_predict.predict(traffic, 64, g, 1e-4, 0.9, algo)
        assert t(plus, b) == pytest.approx(t(ref, b), rel=1e-9)
        assert t(plus, b / 2) < t(ref, b / 2) and t(plus, 2 * b) > t(ref, 2 * b)
    # Negative control: with no compute and no latency the compressed method wins at every rate.
    free = (ref[0], plus[1], 0.0)
    assert _scale_predict.break_even(free, ref, 64, 1e-4, 0.9) == math.inf


def test_cli_writes_the_tables_and_figure_from_result_files(tmp_path, capsys):
    record, _ = _compute_record()
    compute = tmp_path / "compute.json"
    compute.write_text(json.dumps(record))
    measured = _synthetic_bandwidth(2e-4, 0.9)
    for cells in measured.values():
        for cell in cells.values():
            cell["latency_probe_seconds"] = 4e-4
            for name, v in cell["methods"].items():
                method, tau = scale_model._bandwidth_method(name)
                messages, volume, _ = _scale_predict.step_traffic(
                    _scale_shapes.bytelm_shapes(), method, 4, tau
                )
                v.update(messages=messages, recorded_bytes=volume, step=[0.05] * 5, compute=[0.04] * 5)
    bandwidth = tmp_path / "bandwidth.json"
    bandwidth.write_text(json.dumps({"measured": measured, "status": "quiet", "command": "test"}))
    argv = ["--bandwidth", str(bandwidth), "--compute", str(compute), "--out", str(tmp_path / "out")]
    assert run(scale_model.main, argv) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(scale_model.NAMES)
    validation = (tmp_path / "out" / "scale_validation.md").read_text()
    assert "equal those the hook recorded in every cell" in validation
    table = (tmp_path / "out" / "scale_table.md").read_text()
    assert "**Model, not measurement.**" in table and "LLaMA 7B" in table and "**assumed** α" in table
    saved = json.loads((tmp_path / "out" / "scale_model.json").read_text())
    assert saved["label"] == "a model, not a measurement" and len(saved["validation"]["cells"]) == 12
    assert np.isfinite(saved["validation"]["summary"]["comm"][0])


def test_cli_names_an_unreadable_input(tmp_path, capsys):
    assert run(scale_model.main, ["--bandwidth", str(tmp_path / "none.json")], prog="sm") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sm: error: argument --bandwidth: cannot read") and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [(["--shapes", "1x5"], "--shapes"), (["--rank", "0"], "--rank"),
                                           (["--repeats", "0"], "--repeats")])  # fmt: skip
def test_compression_cost_checks_its_arguments_first(argv, message, capsys, monkeypatch):
    from benchmarks import compression_cost

    monkeypatch.setattr(compression_cost, "measure", lambda *a, **k: pytest.fail("measured"))
    assert run(compression_cost.main, argv, prog="cc") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.slow
def test_compression_cost_quick_run_measures_the_hooks_work(tmp_path):
    from benchmarks import compression_cost

    assert run(compression_cost.main, ["--quick", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "compute_cpu.json").read_text())
    shapes = record["shapes"]
    assert set(shapes) == {"256x64", "64x64", "192x64", "64x256", "256x256", "4*64x64"}
    big = shapes["256x256"]
    assert big["restart"] > big["power"] > 0  # an SVD of 256 × 256 costs more than a power step
    assert all(len(t) == 3 for t in big["raw"].values())
