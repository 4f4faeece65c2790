"""benchmarks/bandwidth.py: the α–β fit and the namespaces' cleanup (the timing run itself is
the benchmark's; it is not a test)."""

import subprocess

import pytest

from benchmarks import bandwidth


def _synthetic(eta, nodes=4):
    c = {"all-reduce": 0.010, "PowerSGD": 0.030, "GaLore": 0.020}
    sent = {"all-reduce": 500_000, "PowerSGD": 50_000, "GaLore": 20_000}
    measured = {0: {m: {"seconds": c[m], "bytes": sent[m]} for m in c}}
    for mbit in (1000, 100, 30):
        measured[mbit] = {
            m: {
                "seconds": c[m] + 2 * (nodes - 1) / nodes * sent[m] * 8 / (eta * mbit * 1e6),
                "bytes": sent[m],
            }
            for m in c
        }
    return measured, c


@pytest.mark.parametrize("eta", [0.4, 0.9])
def test_fit_recovers_the_model_and_its_crossover(eta):
    measured, c = _synthetic(eta)
    fitted, c_fit, volume, crossover = bandwidth.fit(measured, 4)
    assert fitted == pytest.approx(eta, rel=1e-9) and c_fit == c
    assert crossover["all-reduce"] is None
    for m in ("PowerSGD", "GaLore"):
        b = crossover[m] * 1e6
        t_all = c["all-reduce"] + volume["all-reduce"] * 8 / (eta * b)
        t_m = c[m] + volume[m] * 8 / (eta * b)
        assert t_all == pytest.approx(t_m, rel=1e-9)  # the two lines cross there
    # Negative control: data made with another η give another crossover.
    assert bandwidth.fit(_synthetic(eta / 2)[0], 4)[3]["PowerSGD"] != pytest.approx(crossover["PowerSGD"])


def test_namespaces_are_removed_even_after_an_error():
    reason = bandwidth.why_not()
    if reason is not None:
        pytest.skip(reason)
    net = bandwidth.Network(2)
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
    rows = ["method,rank,tau,seed,step,validation_loss,floats_per_node"]
    for seed, shift in ((0, 0.0), (1, 0.2)):
        for step, loss in ((0, 5.0), (10, 3.0), (20, 2.0)):
            rows.append(f"all-reduce,0,0,{seed},{step},{loss + shift},0")
            rows.append(f"PowerSGD,4,0,{seed},{step},{loss + 1 + shift},0")  # slower: ends at 3.1
    path.write_text("\n".join(rows) + "\n")
    target, steps = bandwidth.steps_to_target(path, {"all-reduce", "PowerSGD r=4", "absent"})
    assert target == pytest.approx(3.1)  # the worst final mean, so both reach it
    assert steps == {"all-reduce": 10, "PowerSGD r=4": 20}
