"""benchmarks/_collectives.py: the stand-in records every message the hook counts and sends none."""

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # spawns a process

from simsgd.distributed.launch import launch  # noqa: E402


def _counts():
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    from benchmarks import _collectives as coll
    from simsgd.distributed.hook import PowerSGDPlusState, powersgd_plus_hook

    calls = []
    real_all_reduce = dist.all_reduce

    def counting(tensor, *args, **kwargs):
        calls.append(tensor.numel())
        return real_all_reduce(tensor, *args, **kwargs)

    dist.all_reduce = counting
    out = {}
    for name, hook in (("skipped", coll.skipped_hook), ("real", powersgd_plus_hook)):
        torch.manual_seed(0)
        model = DDP(nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 8)))
        state = PowerSGDPlusState(None, matrix_approximation_rank=2, start_powerSGD_iter=1, restart_period=3)
        recorder = coll.Recorder()
        model.register_comm_hook((state, recorder) if name == "skipped" else state, hook)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        recorder.on = True
        calls.clear()
        counted = []
        for _ in range(7):
            recorder.new_step()
            optimizer.zero_grad()
            model(torch.randn(4, 32)).sum().backward()
            optimizer.step()
            counted.append(state.bytes_sent_last_step)
        recorded = [sum(n * b for n, b in step) for step in recorder.steps]
        out[name] = {"calls": len(calls), "counted": counted, "recorded": recorded}
    dist.all_reduce = real_all_reduce
    return out


def test_skipped_hook_records_what_the_hook_counts_and_sends_nothing():
    out = launch(_counts, 1, timeout=120)[0]
    skipped, real = out["skipped"], out["real"]
    assert skipped["recorded"] == skipped["counted"]  # every message, warm-up and restarts included
    assert len(set(skipped["counted"])) == 3  # warm-up, power steps and restarts differ in size
    # The collectives are skipped; negative control: the real hook does call all_reduce.
    assert skipped["calls"] == 0 and real["calls"] > 0
    assert real["counted"] == skipped["counted"]  # the same messages
