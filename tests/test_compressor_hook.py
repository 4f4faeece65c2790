"""hook_for(compressor) on 2 gloo processes: the DDP hook gives the simulator's Δ̂ to rounding.

A model with one 6×5 weight W and a bias b, loss ⟨W, G_t^{(i)}⟩ + ⟨b, h_t^{(i)}⟩ on rank i, so the
gradients are known; SGD with lr = 1 makes Δ̂_t = W_t − W_{t+1}. The reference is
simsgd.algorithm.step on the stacked (1, N, m, n) gradients with NumPy (the simulator's own
path, which tests/test_compressor_interface.py checks against independent references), with
the same seed, hence the same Q_{−1} and the same draws. The bias is all-reduced as it is.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # spawns a process group

from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from simsgd import algorithm  # noqa: E402
from simsgd.baselines import QSGD, RandomK, SignSGD, TopK  # noqa: E402
from simsgd.distributed import launch  # noqa: E402
from simsgd.distributed.compressor_hook import hook_for  # noqa: E402
from simsgd.loop import LOCAL_STREAM, SHARED_STREAM, StreamDraws  # noqa: E402
from simsgd.methods import PowerSGDPlus  # noqa: E402
from simsgd.streams import NodeStreams, initial_q  # noqa: E402

M, N_COLS, WORLD, STEPS, SEED = 6, 5, 2, 7, 4
COMPRESSORS = {
    "topk": TopK(k=4),
    "randomk": RandomK(k=9),
    "qsgd": QSGD(levels=3),
    "sign": SignSGD(),
    "powersgd+": PowerSGDPlus(rank=1, rule=3),
}


def _grads(rank, t):
    g = torch.Generator().manual_seed(100 * rank + t)
    return torch.randn(M, N_COLS, generator=g, dtype=torch.float64), torch.randn(
        3, generator=g, dtype=torch.float64
    )


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, M * N_COLS, dtype=torch.float64).reshape(M, N_COLS))
        self.b = nn.Parameter(torch.zeros(3, dtype=torch.float64))

    def forward(self, g, h):
        return (self.w * g).sum() + (self.b * h).sum()


def _run_all():
    return {name: _run(name) for name in COMPRESSORS}


def _run(name):
    import torch.distributed as dist

    rank = dist.get_rank()
    model = DDP(_Model())
    state, hook = hook_for(COMPRESSORS[name], seed=SEED)
    model.register_comm_hook(state, hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    hats, bias, floats = [], [], []
    for t in range(STEPS):
        before = model.module.w.detach().clone(), model.module.b.detach().clone()
        optimizer.zero_grad()
        model(*_grads(rank, t)).backward()
        optimizer.step()
        hats.append((before[0] - model.module.w.detach()).numpy())
        bias.append((before[1] - model.module.b.detach()).numpy())
        floats.append(state.floats_sent_last_step)
    return np.array(hats), np.array(bias), floats


def _reference(name):
    """The simulator's step on the same gradients: Δ̂_t per step, and the floats it counts."""
    compressor = COMPRESSORS[name]
    config = algorithm.Config(method=compressor, optimizer="sgd", momentum=0.0)
    grads = np.array(
        [[[_grads(i, t)[0].numpy() for i in range(WORLD)]] for t in range(STEPS)]
    )  # (T, 1, N, m, n)
    basis = compressor.basis_shape((M, N_COLS))
    q0 = None if basis is None else initial_q(SEED, [0], *basis)
    state = algorithm.init(np.zeros((1, M, N_COLS)), q0, grads[0], config)
    shared, local = (
        NodeStreams(SEED, [0], [SHARED_STREAM]),
        NodeStreams(SEED, [0], LOCAL_STREAM + np.arange(WORLD)),
    )
    hats, floats = [], []
    for t in range(STEPS):
        state, info = algorithm.step(state, grads[t], t, 1.0, config, draws=StreamDraws(shared, local, t))
        hats.append(info.delta_hat[0])
        floats.append(compressor.floats(t, (M, N_COLS), info.restart) + 3 + 1)  # + the bias and the flag
    return np.array(hats), floats


@pytest.fixture(scope="module")
def ddp_runs():
    ranks = launch(_run_all, WORLD, timeout=60, deadline=300)
    return {name: [runs[name] for runs in ranks] for name in COMPRESSORS}


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_hook_gives_the_simulators_delta_hat(ddp_runs, name):
    (hats0, bias0, floats0), (hats1, bias1, _) = ddp_runs[name]
    np.testing.assert_array_equal(hats0, hats1)  # every rank applies the same update
    ref, ref_floats = _reference(name)
    np.testing.assert_allclose(hats0, ref, rtol=1e-12, atol=1e-12)
    mean_h = np.mean([[_grads(i, t)[1].numpy() for i in range(WORLD)] for t in range(STEPS)], axis=1)
    np.testing.assert_allclose(bias0, mean_h, rtol=1e-14, atol=1e-15)  # all-reduced uncompressed
    assert floats0 == pytest.approx(ref_floats)


def test_the_agreement_check_can_fail(ddp_runs):
    # Control: a reference with another seed (other Q_{-1} and draws) or without error feedback differs.
    hats, _, _ = ddp_runs["randomk"][0]
    global SEED
    saved, SEED = SEED, SEED + 1
    try:
        other, _ = _reference("randomk")
    finally:
        SEED = saved
    assert not np.allclose(hats, other, rtol=1e-6)
    hats, _, _ = ddp_runs["topk"][0]
    config_free = _reference_without_error_feedback("topk")
    assert not np.allclose(hats[1:], config_free[1:], rtol=1e-6)


def _reference_without_error_feedback(name):
    compressor = COMPRESSORS[name]
    config = algorithm.Config(method=compressor, optimizer="sgd", momentum=0.0, error_feedback="none")
    grads = np.array([[[_grads(i, t)[0].numpy() for i in range(WORLD)]] for t in range(STEPS)])
    state = algorithm.init(np.zeros((1, M, N_COLS)), None, grads[0], config)
    return np.array([algorithm.step(state, grads[t], t, 1.0, config)[1].delta_hat[0] for t in range(STEPS)])
