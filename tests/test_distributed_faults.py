"""Faults and edges of the torch.distributed backend: a raising or dying rank stops the run
with a clear error instead of a hang; bad options; the ops protocol; the GPU path.
(simsgd without torch is tested in tests/test_core_engine.py, which runs without torch.)"""

import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # each module spawns its process groups

import torch.distributed as dist  # noqa: E402

from simsgd.distributed import RankError, launch, simulate_distributed  # noqa: E402
from simsgd.distributed.matching import forced_step_diff, matching_problems, trace_diff  # noqa: E402
from simsgd.problems import HeterogeneousQuadratic  # noqa: E402

QUAD = HeterogeneousQuadratic(m=4, n=3, nodes=2, seed=0)


class _NanOnNode1:
    """QUAD, except that node 1's gradient is NaN from step 3 on."""

    def __getattr__(self, name):
        return getattr(QUAD, name)

    def stochastic_grads(self, x, nodes, rng):
        g = QUAD.stochastic_grads(x, nodes, rng)
        return g * np.nan if rng.step >= 3 and 1 in rng.node_ids else g


def _simulate_nan():
    return simulate_distributed(_NanOnNode1(), method="powersgd", steps=10, replicas=2)


def _die_on_rank1():
    if dist.get_rank() == 1:
        os._exit(7)
    x = torch.ones(3)
    dist.all_reduce(x)  # rank 0 waits here for a peer that is gone
    return x


def _sleep():
    time.sleep(60)


@pytest.mark.parametrize(
    "fn, deadline, match",
    [
        (
            _simulate_nan,
            None,
            r"rank 1 of 2 raised Diverged: non-finite stochastic gradient at step t=3",
        ),
        (_die_on_rank1, None, r"rank 1 of 2 died with exit code 7"),
        (_sleep, 2.0, r"deadline passed with ranks \[0, 1\] still running"),
    ],
)
def test_a_failing_rank_stops_the_run_with_a_clear_error(fn, deadline, match):
    start = time.monotonic()
    with pytest.raises(RankError, match=match):
        launch(fn, 2, timeout=30, deadline=deadline)
    # Well before the 30 s the blocked ranks would wait in their collective.
    assert time.monotonic() - start < 25


@pytest.fixture
def solo_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_bad_options_are_refused(solo_group):
    with pytest.raises(ValueError, match="nodes is the process group's world size"):
        simulate_distributed(QUAD, nodes=2)
    with pytest.raises(ValueError, match="rank must be an integer in"):
        simulate_distributed(HeterogeneousQuadratic(m=4, n=3, nodes=1), rank=9, steps=2)
    with pytest.raises(TypeError):
        simulate_distributed(QUAD, stepz=3)
    with pytest.raises(ValueError, match="world_size must be an integer"):
        launch(_sleep, 0)
    with pytest.raises(ValueError, match="backend must be one of"):
        launch(_sleep, 2, backend="mpi")


def _gpu_work(cases):
    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cuda:0"
    problems = matching_problems(dist.get_world_size())
    free = [simulate_distributed(problems[name], device=device, **options) for name, options in cases]
    forced = forced_step_diff(problems["quadratic"], **cases[-1][1])
    return free, forced


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (CI has none); the NCCL/GPU figures in the README are not yet measured",
)
def test_gpu_backend_matches_the_simulator():
    import simsgd

    world = max(torch.cuda.device_count(), 2)
    backend = "nccl" if torch.cuda.device_count() >= 2 else "gloo"  # gloo on CUDA tensors with one GPU
    cases = [
        (
            "psi-aligned",
            dict(
                method="powersgd+",
                optimizer="msgd",
                steps=200,
                replicas=3,
                seed=1,
                lr=0.005,
                restart_period=7,
            ),
        ),
        (
            "quadratic",
            dict(
                method="powersgd+",
                optimizer="adam",
                rank=2,
                steps=50,
                replicas=3,
                seed=1,
                lr=0.005,
                restart_period=7,
            ),
        ),
    ]
    free, forced = launch(_gpu_work, world, cases, backend=backend, timeout=120)[0]
    problems = matching_problems(world)
    ref = simsgd.simulate(problems["psi-aligned"], nodes=world, progress=False, **cases[0][1])
    assert max(trace_diff(free[0], ref).values()) <= 1e-10
    assert max(forced.values()) <= 1e-12


def test_torch_and_reference_ops_implement_the_array_ops_protocol(interface_mismatches):
    # Algorithm 2 is written against simsgd.ops.ArrayOps; both torch-side ops must implement it
    # (tests/test_core_engine.py shows that the check fails on a missing or re-shaped method).
    from simsgd.distributed.ops import ReferenceOps, TorchOps
    from simsgd.ops import ArrayOps

    for ops in (TorchOps, ReferenceOps):
        # issubclass() refuses a Protocol with data members (ArrayOps.name): compare members instead.
        assert interface_mismatches(ops, ArrayOps) == [], ops
