"""powersgd_plus_hook on 2 gloo processes (one spawned run for all distributed checks).

- restart_period=None: the same parameters as PyTorch's powerSGD_hook at every step.
- restart steps: the averaged gradient of a compressed matrix is P̃P̃ᵀ·mean(G), P̃ = the
  first r left singular vectors of the mean; floats sent follow Algorithm 1's count (m n + n r)
  or, with ``minimal_restart``, m n.
- state_dict/load_state_dict: a resumed run continues bit for bit, across DDP's bucket
  rebuild (the resumed DDP starts in its first bucket order again), for each restart option
  and the GaLore-style fixed basis.
- non-finite gradients: "zero" keeps every rank finite, "raise" raises on every rank.
"""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # each module spawns its process groups

import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import PowerSGDState, powerSGD_hook  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from simsgd.distributed import launch  # noqa: E402
from simsgd.distributed.hook import PowerSGDPlusState, powersgd_plus_hook  # noqa: E402

PARITY_OPTIONS = [
    dict(matrix_approximation_rank=1, start_powerSGD_iter=2),
    dict(matrix_approximation_rank=3, start_powerSGD_iter=3, warm_start=False),  # QR branch, fresh Q
    dict(
        matrix_approximation_rank=2,
        start_powerSGD_iter=2,
        batch_tensors_with_same_shape=True,
        orthogonalization_epsilon=1e-8,
        min_compression_rate=1,
        random_seed=7,
    ),
]
PARITY_STEPS = 25


def _model():
    torch.manual_seed(0)  # the same initial parameters on every rank and in every copy
    return nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 32),
        nn.ReLU(),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 4),
    )


def _batch(rank, step):
    g = torch.Generator().manual_seed(1000 * rank + step)
    return torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)


def _train_step(model, optimizer, rank, step, scale=1.0):
    x, y = _batch(rank, step)
    optimizer.zero_grad()
    (scale * nn.functional.cross_entropy(model(x), y)).backward()
    optimizer.step()


def _ddp(hook, state, params=None):
    model = DDP(_model())
    if params is not None:
        with torch.no_grad():
            for p, saved in zip(model.parameters(), params):
                p.copy_(saved)
    model.register_comm_hook(state, hook)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _parity(rank):
    """Per option set, the largest |ours − PyTorch's| over parameters after each step."""
    out = []
    for options in PARITY_OPTIONS:
        theirs = _ddp(powerSGD_hook, PowerSGDState(None, **options))
        ours = _ddp(powersgd_plus_hook, PowerSGDPlusState(None, **options))
        worst = []
        for t in range(PARITY_STEPS):
            for model, optimizer in (theirs, ours):
                _train_step(model, optimizer, rank, t)
            worst.append(
                max(float((a - b).abs().max()) for a, b in zip(theirs[0].parameters(), ours[0].parameters()))
            )
        out.append(worst)
    return out


def _restart_step(rank, world, minimal):
    """τ = 1, no error feedback: DDP's gradient against P̃P̃ᵀ mean(G) computed by hand."""
    state = PowerSGDPlusState(
        None,
        matrix_approximation_rank=2,
        start_powerSGD_iter=0,
        use_error_feedback=False,
        warm_start=False,
        restart_period=1,
        minimal_restart=minimal,
    )
    model = DDP(_model())
    model.register_comm_hook(state, powersgd_plus_hook)
    plain = _model()
    x, y = _batch(rank, 0)
    nn.functional.cross_entropy(model(x), y).backward()
    nn.functional.cross_entropy(plain(x), y).backward()
    worst, expected_floats = 0.0, 1  # + the non-finite flag
    for p, q in zip(model.parameters(), plain.parameters()):
        mean = q.grad.clone()
        dist.all_reduce(mean)
        mean /= world
        matrix = mean.view(mean.shape[0], -1)
        m, n = matrix.shape
        r = min(m, n, 2)
        if (m + n) * r * 2 < m * n:
            u = torch.linalg.svd(matrix, full_matrices=False)[0][:, :r]
            mean = (u @ (u.T @ matrix)).view_as(mean)
            expected_floats += m * n + (0 if minimal else n * r)
        else:
            expected_floats += m * n
        worst = max(worst, float((p.grad - mean).abs().max() / mean.abs().max()))
    return worst, state.floats_sent_last_step, expected_floats, state.restarts


RESUME_OPTIONS = [
    dict(),
    dict(minimal_restart=False),
    dict(restart_method="randomized", restart_oversampling=2, restart_power_steps=2),
    dict(between_restarts="fixed", use_error_feedback=False),  # GaLore-style: P̃ is saved too
]


def _resume(rank, extra, steps=16, tau=3):
    """Uninterrupted run against a run stopped halfway and resumed from state_dicts."""
    # start 0: compression begins before DDP's bucket rebuild, in both runs.
    options = dict(matrix_approximation_rank=2, start_powerSGD_iter=0, restart_period=tau, **extra)
    whole = _ddp(powersgd_plus_hook, PowerSGDPlusState(None, **options))
    for t in range(steps):
        _train_step(*whole, rank, t)
    first_state = PowerSGDPlusState(None, **options)
    first = _ddp(powersgd_plus_hook, first_state)
    for t in range(steps // 2):
        _train_step(*first, rank, t)
    saved_params = [p.detach().clone() for p in first[0].parameters()]
    saved_optimizer, saved_hook = first[1].state_dict(), first_state.state_dict()
    state = PowerSGDPlusState(None, **options)
    state.load_state_dict(saved_hook)
    second = _ddp(powersgd_plus_hook, state, saved_params)
    second[1].load_state_dict(saved_optimizer)
    for t in range(steps // 2, steps):
        _train_step(*second, rank, t)
    diff = max(float((a - b).abs().max()) for a, b in zip(whole[0].parameters(), second[0].parameters()))
    return diff, state.restarts, state.floats_sent_total > 0


def _nonfinite(rank):
    """NaN on rank 1 at a compressed step (t = 4) and a restart step (t = 5) under "zero";
    then on a compressed step under "raise"."""
    out = {}
    state = PowerSGDPlusState(None, start_powerSGD_iter=2, restart_period=3, nonfinite="zero")
    model, optimizer = _ddp(powersgd_plus_hook, state)
    for t in range(8):
        _train_step(model, optimizer, rank, t, float("nan") if rank == 1 and t in (4, 5) else 1.0)
    out["zero"] = (
        state.nonfinite_steps,
        all(bool(torch.isfinite(p).all()) for p in model.parameters()),
        all(bool(torch.isfinite(e).all()) for e in state.error_dict.values()),
    )
    state = PowerSGDPlusState(None, start_powerSGD_iter=2, restart_period=3)
    model, optimizer = _ddp(powersgd_plus_hook, state)
    try:
        for t in range(8):
            _train_step(model, optimizer, rank, t, float("inf") if rank == 1 and t == 4 else 1.0)
        out["raise"] = None
    except FloatingPointError as exc:
        out["raise"] = (t, f"{type(exc).__name__}: {exc}")
    return out


def _work():
    rank, world = dist.get_rank(), dist.get_world_size()
    return {
        "parity": _parity(rank),
        "restart": [_restart_step(rank, world, minimal) for minimal in (True, False)],
        "resume": [_resume(rank, extra) for extra in RESUME_OPTIONS],
        "nonfinite": _nonfinite(rank),
    }


@pytest.fixture(scope="module")
def ranks():
    return launch(_work, 2, timeout=60, deadline=300)


def test_parity_with_pytorch_powersgd_hook_every_step(ranks):
    for rank_result in ranks:
        for options, worst in zip(PARITY_OPTIONS, rank_result["parity"]):
            assert len(worst) == PARITY_STEPS
            # The same operations in the same order: equal to the last bit, every step.
            assert max(worst) == 0.0, (options, worst)


def test_restart_step_is_svd_comp_and_counts_its_floats(ranks):
    for r in ranks:
        for worst, floats, expected, restarts in r["restart"]:  # minimal_restart True, False
            assert worst < 1e-5  # float32 SVD vs float32 SVD of the same mean
            assert floats == expected and restarts == 1


@pytest.mark.parametrize("case", range(len(RESUME_OPTIONS)), ids=[str(o) for o in RESUME_OPTIONS])
def test_resume_from_state_dict_is_bit_for_bit(ranks, case):
    for r in ranks:
        diff, restarts, counted = r["resume"][case]
        assert diff == 0.0 and restarts > 0 and counted


def test_nonfinite_gradient_policies(ranks):
    for r in ranks:
        steps, params_finite, errors_finite = r["nonfinite"]["zero"]
        assert steps == 2 and params_finite and errors_finite
        step, message = r["nonfinite"]["raise"]
        assert step == 4 and "FloatingPointError" in message and "non-finite gradient" in message


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(matrix_approximation_rank=0), "matrix_approximation_rank"),
        (dict(start_powerSGD_iter=-1), "start_powerSGD_iter"),
        (dict(restart_period=0), "restart_period"),
        (dict(nonfinite="ignore"), "nonfinite"),
        (dict(orthogonalization_epsilon=-1.0), "orthogonalization_epsilon"),
    ],
)
def test_bad_options_name_the_parameter(options, match):
    with pytest.raises(ValueError, match=match):
        PowerSGDPlusState(None, **options)


def test_load_state_dict_refuses_other_options():
    saved = PowerSGDPlusState(None, start_powerSGD_iter=2, restart_period=5).state_dict()
    with pytest.raises(ValueError, match="restart_period"):
        PowerSGDPlusState(None, start_powerSGD_iter=2, restart_period=6).load_state_dict(saved)
