"""Issue 12's options through the torch backend (reference mode, N = 4 gloo processes): per-node
σ_i, AdamW, and every lighter PowerSGD+ restart reproduce simsgd.simulate bit for bit, so the
restart sketches are the same on every node and the new degeneracy readings agree."""

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import simsgd  # noqa: E402
from simsgd.distributed import launch, simulate_distributed  # noqa: E402
from simsgd.distributed.matching import trace_diff  # noqa: E402
from simsgd.distributed.runner import in_lanes  # noqa: E402
from simsgd.problems import GeneralCounterexample, Psi2x2  # noqa: E402

WORLD = 4
COMMON = dict(steps=60, replicas=3, seed=5, lr=5e-3, restart_period=7, progress=False)
PLUS = dict(method="powersgd+", rank=2, optimizer="msgd", weight_decay=0.01, restart_power_steps=2)
CASES = [
    (
        Psi2x2([1.0, 2.0, 4.0, 8.0], basis="paper", lock_start=True),
        dict(method="powersgd", optimizer="adamw", weight_decay=0.1),
    ),
    (Psi2x2(25.0, basis="random", lock_start=True), dict(method="powersgd", orthogonalization="lapack")),
] + [
    (GeneralCounterexample(6, 5, 2, noise_scale=5.0, basis="random"), {**PLUS, "restart": restart})
    for restart in ("randomized", "random", "power")
]


def _work():
    return in_lanes(
        partial(simulate_distributed, reference=True), [(p, {**COMMON, **o}) for p, o in CASES], 5
    )


@pytest.fixture(scope="module")
def ranks():
    return launch(_work, WORLD, timeout=120, deadline=600)


def test_new_options_run_distributed_bit_for_bit(ranks):
    for (problem, options), trace in zip(CASES, ranks[0]):
        ref = simsgd.simulate(problem, nodes=WORLD, **COMMON, **options)
        diffs = trace_diff(trace, ref)
        assert max(diffs.values()) == 0.0, (options, diffs)
        np.testing.assert_array_equal(trace.degenerate_own_scale, ref.degenerate_own_scale)
        # Lemma 2's residual at restarts: one more node mean of Δ on restart steps, the same numbers
        np.testing.assert_array_equal(trace.restart_residual, ref.restart_residual)
    flagged = ranks[0][1].degenerate_count.sum()  # ψ random basis, N = 4: balanced steps are flagged
    assert flagged > 0
