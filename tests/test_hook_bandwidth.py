"""benchmarks/bandwidth.py: spread and crossovers, the load check, the collectives' stand-in,
the namespaces' cleanup, and (slow, root only) the quick run end to end."""

import json
import math
import subprocess

import numpy as np
import pytest

from benchmarks import _bw_analysis, _netns, bandwidth
from simsgd.cli import run

MBITS = [10, 30, 100, 300, 1000]


def _alpha_beta(c, volume, rng, noise=0.0005, repeats=7):
    """Seconds per step c + V·8/B (B in Mbit/s) with noise, one array of repeats per bandwidth."""
    return [c + volume * 8 / (b * 1e6) + noise * rng.standard_normal(repeats) for b in MBITS]


def test_spread_is_the_median_and_the_quartiles():
    s = _bw_analysis.spread([5.0, 1.0, 4.0, 2.0, 3.0])
    assert s == {"median": 3.0, "q1": 2.0, "q3": 4.0, "n": 5}


def test_crossover_recovers_the_exact_crossing_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    reference = _alpha_beta(0.010, 400_000, rng)
    method = _alpha_beta(0.030, 40_000, rng)
    exact = (400_000 - 40_000) * 8 / (0.020 * 1e6)  # c_m − c_ar = (V_ar − V_m)·8/B*
    c = _bw_analysis.crossover(method, reference, MBITS)
    assert c["status"] == "resolved" and c["low"] <= exact <= c["high"]
    assert c["mbit"] == pytest.approx(exact, rel=0.1) and c["high"] - c["low"] < 0.3 * exact


def test_crossover_says_when_it_cannot_tell():
    rng = np.random.default_rng(1)
    reference = _alpha_beta(0.010, 400_000, rng)
    faster = _alpha_beta(0.005, 40_000, rng)
    assert _bw_analysis.crossover(faster, reference, MBITS)["status"] == "faster at every bandwidth"
    slower = _alpha_beta(0.5, 40_000, rng)
    assert _bw_analysis.crossover(slower, reference, MBITS)["status"] == "slower at every bandwidth"
    # Negative control: a method whose times jump around the all-reduce's crosses more than once.
    zigzag = [r + (0.01 if k % 2 else -0.01) for k, r in enumerate(reference)]
    c = _bw_analysis.crossover(zigzag, reference, MBITS)
    assert c["status"] == "not resolved" and c["text"].startswith("not resolved")
    # And noise as large as the effect leaves the crossing unresolved in the resamples.
    noisy = [r + 0.002 * rng.standard_normal(7) for r in reference]
    assert _bw_analysis.crossover(noisy, reference, MBITS)["status"] != "resolved"


def _fake_measure(net, methods, args, port):
    cell = lambda k: {
        "step": [0.01 * (1 + k)] * args.repeats, "compute": [0.005] * args.repeats,
        "comm": [0.004] * args.repeats, "bytes": 1e3, "recorded_bytes": 1e3, "messages": 1.0,
        "message_floats": [[250]],
    }  # fmt: skip
    return {"latency_probe_seconds": 1e-4, "methods": {m: cell(k) for k, m in enumerate(methods)}}


class _NoNetwork:
    made = 0

    def __init__(self, nodes):
        _NoNetwork.made += 1
        self.nodes = nodes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def shape(self, mbit, delay_ms=0.0):
        pass


@pytest.fixture
def offline(monkeypatch):
    _NoNetwork.made = 0
    monkeypatch.setattr(bandwidth, "why_not", lambda: None)
    monkeypatch.setattr(bandwidth, "why_no_netem", lambda: "no netem (test)")
    monkeypatch.setattr(bandwidth, "Network", _NoNetwork)
    monkeypatch.setattr(bandwidth, "_measure", _fake_measure)
    return monkeypatch


def test_a_busy_machine_is_refused_before_any_namespace(offline, tmp_path, capsys):
    offline.setattr(bandwidth, "busy_cores", lambda seconds: 1.5)
    assert run(bandwidth.main, ["--quick", "--out", str(tmp_path)], prog="bw") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused: the machine is not quiet (1.50 cores" in err
    assert _NoNetwork.made == 0 and not list(tmp_path.iterdir())
    # --allow-loaded runs and marks every output.
    assert run(bandwidth.main, ["--quick", "--allow-loaded", "--out", str(tmp_path)], prog="bw") == 0
    table = (tmp_path / "bandwidth.md").read_text()
    assert "loaded before the run" in table
    assert json.loads((tmp_path / "bandwidth.json").read_text())["status"] == "loaded"
    (tmp_path / "bandwidth.md").unlink()  # --analyse rewrites the same table from the JSON alone
    assert run(bandwidth.main, ["--analyse", "--out", str(tmp_path)], prog="bw") == 0
    assert (tmp_path / "bandwidth.md").read_text() == table
    # Negative control: a quiet machine is not marked.
    offline.setattr(bandwidth, "busy_cores", lambda seconds: 0.05)
    assert run(bandwidth.main, ["--quick", "--out", str(tmp_path)], prog="bw") == 0
    assert json.loads((tmp_path / "bandwidth.json").read_text())["status"] == "quiet"


def test_a_delay_without_netem_is_refused_with_the_reason(offline, tmp_path, capsys):
    offline.setattr(bandwidth, "busy_cores", lambda seconds: 0.0)
    assert run(bandwidth.main, ["--quick", "--delay-ms", "5", "--out", str(tmp_path)], prog="bw") == 1
    assert "cannot add --delay-ms 5: no netem (test)" in capsys.readouterr().err
    assert _NoNetwork.made == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mbit", "0"], "--mbit"),
        (["--quick", "--mbit", "0"], "--mbit"),
        (["--nodes", "1"], "--nodes"),
        (["--quick", "--nodes", "1"], "--nodes"),
        (["--nodes", "100"], "--nodes"),
        (["--quick", "--repeats", "0"], "--repeats"),
        (["--mbit", "30", "30"], "--mbit"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_before_anything(argv, message, offline, capsys):
    offline.setattr(bandwidth, "busy_cores", lambda seconds: pytest.fail("measured the load"))
    assert run(bandwidth.main, argv, prog="bw") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("bw: error:")
    assert _NoNetwork.made == 0


def test_quick_keeps_explicit_values():
    args = bandwidth._parse(["--quick", "--mbit", "30", "10", "--repeats", "6"])
    assert (args.mbit, args.repeats, args.nodes, args.tau) == ([30, 10], 6, [2], 3)


def test_namespaces_are_removed_even_after_an_error():
    reason = _netns.why_not()
    if reason is not None:
        pytest.skip(reason)
    net = _netns.Network(2)
    with pytest.raises(RuntimeError, match="inside"):
        with net:
            net.shape(50)
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            assert all(name in listed for name in [*net.names, net.hub])
            raise RuntimeError("inside the network")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in [*net.names, net.hub])


def test_steps_to_target_reads_the_lm_comparison(tmp_path):
    path = tmp_path / "lm.csv"
    rows = ["method,rank,tau,seed,step,validation_loss,floats_per_node,seconds"]
    for seed, shift in ((0, 0.0), (1, 0.2)):
        for step, loss in ((0, 5.0), (10, 3.0), (20, 2.0)):
            rows.append(f"all-reduce,0,0,{seed},{step},{loss + shift},0,0")
            rows.append(f"PowerSGD,4,0,{seed},{step},{loss + 1 + shift},0,0")  # slower: ends at 3.1
    path.write_text("\n".join(rows) + "\n")
    target, steps = bandwidth.steps_to_target(path, {"all-reduce", "PowerSGD r=4", "absent"})
    assert target == pytest.approx(3.1)  # the worst final mean, so both reach it
    assert steps == {"all-reduce": 10, "PowerSGD r=4": 20}


@pytest.mark.slow
def test_quick_run_measures_every_cell_with_spread(tmp_path):
    reason = _netns.why_not()
    if reason is not None:
        pytest.skip(reason)
    assert run(bandwidth.main, ["--quick", "--allow-loaded", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "bandwidth.json").read_text())
    cells = record["measured"]["2"]
    assert set(cells) == {"0", "100"}
    for cell in cells.values():
        assert cell["latency_probe_seconds"] > 0
        for v in cell["methods"].values():
            assert all(len(v[q]) == 5 for q in ("step", "compute", "comm"))  # ≥ 5 repeats each
            assert v["recorded_bytes"] == pytest.approx(v["bytes"])  # the stand-in saw every message
    shaped, unshaped = cells["100"]["methods"]["all-reduce"], cells["0"]["methods"]["all-reduce"]
    # 548 kB at 100 Mbit/s take ≥ 44 ms alone; unshaped veth is far faster.
    assert np.median(shaped["comm"]) > 0.04 > np.median(unshaped["comm"])
    assert record["netem"] and record["status"] in ("quiet", "loaded")
    assert (tmp_path / "bandwidth.png").stat().st_size > 0
    assert not math.isnan(record["seconds"])
