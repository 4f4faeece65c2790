"""One node of the bandwidth benchmark, run inside its network namespace.

``python -m benchmarks._bw_child CONFIG_JSON``: joins the gloo group at the hub address,
builds for each method two copies of the byte-level LM (the same seed): one trained for
real (plain DDP for the all-reduce, ``powersgd_plus_hook`` otherwise) and one whose
collectives are skipped (:mod:`benchmarks._collectives`), which also records the
messages a step sends. Then ``repeats`` rounds, the methods interleaved in each, of three
timed blocks of ``block`` steps: the real step, the compute alone (collectives skipped),
and the communication alone (the recorded messages replayed). Each block's time is the
slowest node's. Finally a latency probe (one-float all-reduces). Rank 0 prints JSON.
"""

import datetime
import json
import statistics
import sys
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from simsgd.distributed.hook import PowerSGDPlusState, powersgd_plus_hook
from simsgd.examples.bytelm import ByteLM, read_corpus, windows

from . import _collectives as coll
from ._netns import SUBNET

MODEL = dict(width=64, layers=2, heads=4, context=64)
BATCH, START, WARMUP, PROBES = 8, 2, 4, 30


def _model():
    torch.manual_seed(0)
    # The causal mask is a constant buffer: not broadcast every step, so only gradients travel.
    return DDP(ByteLM(**MODEL), broadcast_buffers=False)


def _setup(options):
    """(real model, its optimizer, hook state or None, skipped model, its optimizer, Recorder)."""
    real, skipped, recorder = _model(), _model(), coll.Recorder()
    state = None
    if options is None:
        skipped.register_comm_hook(recorder, coll.allreduce_skipped_hook)
    else:
        state = PowerSGDPlusState(None, start_powerSGD_iter=START, **options)
        real.register_comm_hook(state, powersgd_plus_hook)
        shadow = PowerSGDPlusState(None, start_powerSGD_iter=START, **options)
        skipped.register_comm_hook((shadow, recorder), coll.skipped_hook)
    make = lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3)
    return real, make(real), state, skipped, make(skipped), recorder


def _slowest(seconds):
    value = torch.tensor([seconds], dtype=torch.float64)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value)


def run(config):
    """Time every method; returns rank 0's results (None on the other ranks)."""
    torch.set_num_threads(1)
    rank, world, block = config["rank"], config["world"], config["block"]
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{SUBNET}.1:{config['port']}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=config["timeout"]),
    )
    train, _, _ = read_corpus(200_000)
    generator = torch.Generator().manual_seed(rank)
    batches = [windows(train, BATCH, MODEL["context"], generator) for _ in range(block)]

    def steps(model, optimizer, recorder=None):
        for x, y in batches:
            if recorder is not None:
                recorder.new_step()
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1)).backward()
            optimizer.step()

    runs = {}
    for name, options in config["methods"].items():
        real, real_opt, state, skipped, skipped_opt, recorder = _setup(options)
        for _ in range(WARMUP // block + 1):  # past start_powerSGD_iter and DDP's bucket rebuild
            steps(real, real_opt)
            steps(skipped, skipped_opt)
        recorder.on = True
        steps(skipped, skipped_opt, recorder)  # one block: what a step sends
        recorder.on = False
        messages = recorder.steps
        runs[name] = dict(
            real=(real, real_opt, state), skipped=(skipped, skipped_opt), messages=messages,
            tensors=coll.buffers(messages), sent=state.bytes_sent_total if state else 0,
            times={"step": [], "compute": [], "comm": []},
        )  # fmt: skip

    def timed(fn):
        dist.barrier()
        start = time.perf_counter()
        fn()
        return _slowest((time.perf_counter() - start) / block)

    for _ in range(config["repeats"]):  # interleaved: a change of load hits every method alike
        for run_ in runs.values():
            times = run_["times"]
            times["step"].append(timed(lambda r=run_: steps(*r["real"][:2])))
            times["compute"].append(timed(lambda r=run_: steps(*r["skipped"])))
            times["comm"].append(timed(lambda r=run_: coll.replay(r["messages"], r["tensors"])))
    one = torch.zeros(1)
    probe = []
    for _ in range(PROBES):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(one)
        probe.append(_slowest(time.perf_counter() - start))
    out = {"latency_probe_seconds": statistics.median(probe), "methods": {}}
    timed_steps = config["repeats"] * block
    for name, run_ in runs.items():
        model, _, state = run_["real"]
        numel = sum(p.numel() for p in model.parameters())
        sent = (state.bytes_sent_total - run_["sent"]) / timed_steps if state else 4 * numel
        flat = [m for step in run_["messages"] for m in step]
        out["methods"][name] = {
            **run_["times"],
            "bytes": sent,
            "recorded_bytes": sum(n * b for n, b in flat) / block,
            "messages": len(flat) / block,
            "message_floats": [[n for n, _ in step] for step in run_["messages"]],
        }
    dist.destroy_process_group()
    return out if rank == 0 else None


def main(argv):
    out = run(json.loads(argv[0]))
    if out is not None:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
