"""powersgd_plus_hook's restart methods, minimal restart, fallback, half precision and stats.

The hook is called directly on stand-in buckets (the five methods of ``dist.GradBucket`` it
uses) holding fixed per-node gradients, on 2 gloo processes, so that every run sees the same
inputs and differences come from the option under test only:

- ``restart_method="randomized"`` with k = r + p ≥ min(m, n) spans Δ̄'s whole range, so
  its P̃ is the SVD basis: the same Δ̂ as ``"svd"`` (to float32 rounding), for
  (K + 1)(m + n)k floats per matrix instead of m n;
- ``minimal_restart`` gives the same Δ̂ as Algorithm 1's SVD-COMP and sends n r fewer
  floats per matrix and restart;
- a failing SVD falls back (counted, logged) and training goes on;
- bfloat16/float16 buckets: compressed in float32, so the result is the float32 run's
  result rounded once (tolerance 0, see the test); a run whose error memory is rounded to
  the half dtype is the negative control;
- ``state.stats()``: floats and bytes per bucket, kinds, Lemma 2's bound on the restart's
  relative error (the worst basis, which exceeds it, as negative control).
"""

import logging

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # spawns gloo process groups

import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from simsgd.distributed import launch, restart  # noqa: E402
from simsgd.distributed._bucket_memory import unflatten  # noqa: E402
from simsgd.distributed.hook import PowerSGDPlusState, powersgd_plus_hook  # noqa: E402

SHAPES = [(20, 12), (20,), (16, 3, 3, 3), (16,)]  # two compressed matrices (r = 2), two biases
COMPRESSED = [(20, 12), (16, 27)]
RANK = 2


class FakeBucket:
    """The part of ``dist.GradBucket`` the hook uses, over a fixed list of parameters."""

    def __init__(self, params, buffer):
        self._params, self._buffer = params, buffer

    def buffer(self):
        return self._buffer

    def gradients(self):
        return unflatten(self._buffer, self._params)

    def parameters(self):
        return self._params

    def index(self):
        return 0

    def is_last(self):
        return True


def _params():
    return [nn.Parameter(torch.zeros(shape)) for shape in SHAPES]


def _gradient(rank, step):
    """Node ``rank``'s bucket at ``step``: a shared rank-3 part plus node noise (float32)."""
    g = torch.Generator().manual_seed(7)
    shared = [
        torch.randn(s[0], 3, generator=g) @ torch.randn(3, int(torch.tensor(s[1:]).prod()), generator=g)
        if len(s) > 1
        else torch.randn(s, generator=g)
        for s in SHAPES
    ]
    g = torch.Generator().manual_seed(1000 * rank + step)
    parts = [(a + 0.3 * torch.randn(a.shape, generator=g)).reshape(-1) for a in shared]
    return torch.cat(parts)


def _run(state, steps, dtype=torch.float32, hook=powersgd_plus_hook):
    """Each step's averaged bucket (as float32, and in its own dtype)."""
    params = _params()
    out = []
    for t in range(steps):
        buffer = _gradient(dist.get_rank(), t).to(dtype)
        result = hook(state, FakeBucket(params, buffer)).wait()
        out.append(result.clone())
    return out


def _max_rel(a, b):
    pairs = [(torch.as_tensor(x).double(), torch.as_tensor(y).double()) for x, y in zip(a, b)]
    return max(float((x - y).abs().max() / y.abs().max()) for x, y in pairs)


def _mean(step):
    means = [_gradient(r, step) for r in range(dist.get_world_size())]
    return sum(means) / len(means)


def _projection_error(mean, bases):
    """‖Δ̄ − P̃P̃ᵀΔ̄‖²/‖Δ̄‖² over the compressed matrices, for given bases (one per matrix)."""
    views = [v for v in unflatten(mean, _params()) if v.dim() > 1]
    total = residual = 0.0
    for view, basis in zip(views, bases):
        matrix = view.reshape(view.shape[0], -1).double()
        basis = basis.double()
        residual += float(((matrix - basis @ (basis.T @ matrix)) ** 2).sum())
        total += float((matrix**2).sum())
    return residual / total


def _options(**kw):
    base = dict(matrix_approximation_rank=RANK, start_powerSGD_iter=0, restart_period=3)
    return {**base, **kw}


def _restarts_and_floats():
    """τ = 1 without error feedback, one step: Δ̂ and floats per restart method."""
    out = {}
    for name, kw in {
        "svd": dict(),
        "svd, not minimal": dict(minimal_restart=False),
        "randomized, k full": dict(restart_method="randomized", restart_oversampling=30),
        "randomized, p 1, K 1": dict(restart_method="randomized", restart_oversampling=1),
    }.items():
        state = PowerSGDPlusState(None, **_options(restart_period=1, use_error_feedback=False, **kw))
        result = _run(state, 1)[0]
        out[name] = (result, state.stats())
    state = PowerSGDPlusState(None, **_options(restart_period=1))
    _run(state, 1)
    out["local error"] = state.stats()["buckets"][0]["relative_error_local"]
    return out


def _minimal_vs_not():
    runs = {}
    for minimal in (True, False):
        state = PowerSGDPlusState(None, **_options(minimal_restart=minimal))
        runs[minimal] = (_run(state, 7), state.floats_sent_total, state.restarts)
    return _max_rel(runs[True][0], runs[False][0]), runs[False][1] - runs[True][1], runs[True][2]


def _fallbacks():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logging.getLogger("simsgd.distributed.hook").addHandler(Keep())
    exact = _run(PowerSGDPlusState(None, **_options(restart_oversampling=30)), 4)
    svd, svd_basis = restart._svd, restart.svd_basis

    def broken(*args):
        raise restart.FactorizationError("made to fail by the test")

    out = {}
    try:
        # "svd": Δ̄'s SVD fails (the fallback's own small SVD works); "randomized": every SVD.
        restart.svd_basis = broken
        state = PowerSGDPlusState(None, **_options(restart_oversampling=30))
        results = _run(state, 4)
        out["svd"] = (state.fallbacks, state.restarts, _max_rel(results, exact))
        restart.svd_basis, restart._svd = svd_basis, broken
        state = PowerSGDPlusState(None, **_options(restart_method="randomized", restart_oversampling=1))
        results = _run(state, 4)
        out["randomized"] = (
            state.fallbacks,
            state.restarts,
            all(bool(torch.isfinite(r).all()) for r in results),
        )
    finally:
        restart._svd, restart.svd_basis = svd, svd_basis
    unbroken = PowerSGDPlusState(None, **_options())
    _run(unbroken, 4)
    out["unbroken fallbacks"] = unbroken.fallbacks
    out["logged"] = sum("made to fail" in m or "range basis" in m for m in records)
    return out


def _half_precision():
    """float16/bfloat16 buckets (values on their grid) against float32 buckets of the same values,
    for PowerSGD and PowerSGD+; and a float32 run whose error memory is rounded to the half
    dtype after every step (what keeping the error in the bucket's dtype would do).
    """
    out = {}
    for dtype in (torch.bfloat16, torch.float16):
        worst = {"rounded error memory": 0.0}
        for tau in (None, 3):
            kw = dict(matrix_approximation_rank=RANK, start_powerSGD_iter=2, restart_period=tau)
            params = _params()
            half_state, full_state, control = (PowerSGDPlusState(None, **kw) for _ in range(3))
            worst[tau] = 0.0
            for t in range(8):
                grad = _gradient(dist.get_rank(), t).to(dtype)
                half = powersgd_plus_hook(half_state, FakeBucket(params, grad.clone())).wait()
                rounded = powersgd_plus_hook(full_state, FakeBucket(params, grad.float())).wait().to(dtype)
                worst[tau] = max(worst[tau], float((half.float() - rounded.float()).abs().max()))
                controlled = powersgd_plus_hook(control, FakeBucket(params, grad.float())).wait().to(dtype)
                for k, e in control.error_dict.items():
                    control.error_dict[k] = e.to(dtype).float()
                gap = float((controlled.float() - rounded.float()).abs().max())
                worst["rounded error memory"] = max(worst["rounded error memory"], gap)
            errors_equal = all(
                torch.equal(half_state.error_dict[k], full_state.error_dict[k]) for k in full_state.error_dict
            )
            worst[f"errors equal {tau}"] = errors_equal and half_state.error_dict[0].dtype == torch.float32
        out[str(dtype)] = (worst, half_state.stats())
    return out


def _ddp_half():
    """A bfloat16 model under DDP: runs, stays finite, keeps float32 memories."""
    torch.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8)).to(torch.bfloat16))
    state = PowerSGDPlusState(None, matrix_approximation_rank=2, start_powerSGD_iter=1, restart_period=2)
    model.register_comm_hook(state, powersgd_plus_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(dist.get_rank())
    for _ in range(5):
        x = torch.randn(16, 32, generator=g).to(torch.bfloat16)
        optimizer.zero_grad()
        model(x).float().pow(2).mean().backward()
        optimizer.step()
    return (
        all(bool(torch.isfinite(p).all()) for p in model.parameters()),
        {str(e.dtype) for e in state.error_dict.values()},
        state.restarts,
        state.stats()["bytes_sent_last_step"] == 4 * state.stats()["floats_sent_last_step"],
    )


def _plain(value):
    """Tensors as NumPy arrays: torch tensors sent through the result queue need their
    sender alive (shared memory), and the rank may have exited by then.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _work():
    return _plain(
        {
            "restarts": _restarts_and_floats(),
            "minimal": _minimal_vs_not(),
            "fallbacks": _fallbacks(),
            "half": _half_precision(),
            "ddp half": _ddp_half(),
            "means": [_mean(0)],
        }
    )


@pytest.fixture(scope="module")
def ranks():
    return launch(_work, 2, timeout=60, deadline=300)


def _uncompressed():
    return sum(s[0] for s in SHAPES if len(s) == 1)


def test_randomized_restart_with_full_sketch_is_the_svd_restart_for_fewer_floats(ranks):
    for r in ranks:
        runs = r["restarts"]
        svd, _ = runs["svd"]
        full, stats = runs["randomized, k full"]
        # k = min(r + p, m, n) = n: Y spans Δ̄'s range, P̃ = Y U_r is the SVD basis.
        assert _max_rel([full], [svd]) < 1e-5
        assert (
            stats["floats_sent_last_step"]
            == sum(restart.restart_floats("randomized", m, n, RANK, 30, 1) for m, n in COMPRESSED)
            + _uncompressed()
            + 1
        )
        small, stats = runs["randomized, p 1, K 1"]
        assert (
            stats["floats_sent_last_step"]
            == 2 * sum((m + n) * (RANK + 1) for m, n in COMPRESSED) + _uncompressed() + 1
        )
        assert stats["floats_sent_last_step"] < sum(m * n for m, n in COMPRESSED)
        # Not the SVD basis (k < n), but close: the shared part has rank 3 ≥ k.
        assert 0 < _max_rel([small], [svd]) < 0.5


def test_minimal_restart_sends_nr_less_for_the_same_step(ranks):
    for r in ranks:
        runs = r["restarts"]
        minimal, full = runs["svd"][1], runs["svd, not minimal"][1]
        assert minimal["floats_sent_last_step"] == sum(m * n for m, n in COMPRESSED) + _uncompressed() + 1
        assert full["floats_sent_last_step"] - minimal["floats_sent_last_step"] == sum(
            n * RANK for _, n in COMPRESSED
        )
        # Q = Δ̄ᵀP̃ against mean(Δ^{(i)ᵀ}P̃): the same sums in another order, float32: each entry
        # differs by ≤ (m + N) u |Δ||P̃| ≈ 22 · 6e-8 relative; 1e-5 leaves room for 7 steps of
        # error feedback carrying it.
        diff, saved, restarts = r["minimal"]
        assert diff < 1e-5
        assert saved == restarts * sum(n * RANK for _, n in COMPRESSED) and restarts == 3


def test_restart_relative_error_obeys_lemma_2_and_the_worst_basis_does_not(ranks):
    mean = torch.as_tensor(ranks[0]["means"][0])
    _, stats = ranks[0]["restarts"]["svd"]
    measured = stats["buckets"][0]["relative_error"]
    matrices = [v.reshape(v.shape[0], -1) for v in unflatten(mean, _params()) if v.dim() > 1]
    bases = [torch.linalg.svd(m.double(), full_matrices=False)[0][:, :RANK] for m in matrices]
    assert measured == pytest.approx(_projection_error(mean, bases), rel=1e-4)
    bound = max(1 - RANK / min(m.shape) for m in matrices)  # Lemma 2, δ = r/n per matrix
    assert measured <= bound
    # Negative control: the last r left singular vectors (the worst rank-r basis) break the bound.
    worst = [torch.linalg.svd(m.double(), full_matrices=False)[0][:, -RANK:] for m in matrices]
    assert _projection_error(mean, worst) > bound
    for rank, r in enumerate(ranks):
        # With error feedback (e = 0 before the first step): ‖G_i − P̃P̃ᵀΔ̄‖²/‖G_i‖² on node i.
        mine = torch.as_tensor(_gradient(rank, 0))
        local = [v for v in unflatten(mine, _params()) if v.dim() > 1]
        residual = total = 0.0
        for view, matrix, basis in zip(local, matrices, bases):
            g = view.reshape(view.shape[0], -1).double()
            residual += float(((g - basis @ (basis.T @ matrix.double())) ** 2).sum())
            total += float((g**2).sum())
        assert r["restarts"]["local error"] == pytest.approx(residual / total, rel=1e-4)
        for name, (_, stats) in ((k, v) for k, v in r["restarts"].items() if k != "local error"):
            bucket = stats["buckets"][0]
            assert bucket["kind"] == "restart"
            assert bucket["bytes"] == 4 * bucket["floats"]
            assert (bucket["relative_error"] is None) == name.startswith("randomized")


def test_failed_svd_falls_back_counted_and_logged(ranks):
    for r in ranks:
        out = r["fallbacks"]
        fallbacks, restarts, diff = out["svd"]
        # One fallback per compressed matrix and restart; the fallback's range finder with
        # k = n is exact, so the run matches the unbroken one.
        assert restarts == 2 and fallbacks == 2 * len(COMPRESSED) and diff < 1e-5
        fallbacks, restarts, finite = out["randomized"]
        assert fallbacks == restarts == 2 and finite
        assert out["unbroken fallbacks"] == 0
        assert out["logged"] == 2 * len(COMPRESSED) + 2


def test_half_precision_buckets_are_the_float32_result_rounded_once(ranks):
    for r in ranks:
        for dtype, (worst, stats) in r["half"].items():
            # The same float32 operations on the same values (the bucket is cast exactly to
            # float32), rounded to the bucket's dtype once at the end: tolerance 0.
            assert worst[None] == 0.0 and worst[3] == 0.0, dtype
            assert worst["errors equal None"] and worst["errors equal 3"]
            # Negative control: an error memory kept in the half dtype changes the result.
            assert worst["rounded error memory"] > 0.0, dtype
            assert stats["bytes_sent_last_step"] == 4 * stats["floats_sent_last_step"]
        finite, error_dtypes, restarts, bytes_ok = r["ddp half"]
        assert finite and error_dtypes == {"torch.float32"} and restarts > 0 and bytes_ok


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(restart_method="eigh"), "restart_method"),
        (dict(restart_oversampling=-1), "restart_oversampling"),
        (dict(restart_power_steps=0), "restart_power_steps"),
        (dict(compute_dtype=torch.float16), "compute_dtype"),
        (dict(compute_dtype=torch.int32), "compute_dtype"),
        (dict(between_restarts="lazy"), "between_restarts"),
        (dict(between_restarts="fixed"), "restart_period"),
        (dict(between_restarts="fixed", restart_period=5, warm_start=False), "warm_start"),
        (dict(matrix_approximation_rank=0), "matrix_approximation_rank"),
        (dict(random_seed=2**32), "random_seed"),
        (dict(orthogonalization_epsilon=float("nan")), "orthogonalization_epsilon"),
        (dict(restart_period=0), "restart_period"),
        (dict(restart_perod=10), "unknown option"),  # a misspelt option is named, never ignored
    ],
)
def test_bad_options_raise_at_construction(options, match):
    with pytest.raises(ValueError, match=match):
        PowerSGDPlusState(None, **options)


def test_a_bucket_of_integers_is_refused_before_any_collective():
    params = [nn.Parameter(torch.zeros(4, 4))]
    bucket = FakeBucket(params, torch.zeros(16, dtype=torch.int64))
    with pytest.raises(ValueError, match="float16, bfloat16, float32 and float64"):
        powersgd_plus_hook(PowerSGDPlusState(None, start_powerSGD_iter=0), bucket)


def test_options_given_as_one_record_or_by_keyword_are_the_same_state():
    from simsgd.distributed import HookOptions

    options = dict(matrix_approximation_rank=2, restart_period=10, start_powerSGD_iter=3)
    by_keyword = PowerSGDPlusState(None, **options)
    record = HookOptions(**options)
    by_record = PowerSGDPlusState(None, record)
    assert by_keyword.options == by_record.options == record
    assert by_record.restart_period == 10 and by_record.matrix_approximation_rank == 2  # read as attributes
    assert by_keyword.state_dict()["options"] == record.saved()
    with pytest.raises(ValueError, match="not both"):
        PowerSGDPlusState(None, record, restart_period=5)
    with pytest.raises(AttributeError):
        record.restart_period = 5  # frozen: a state's options cannot drift from what it saved
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = by_record.nonsense
