"""The torch engine (simulate(..., backend="torch")): the NumPy engine's draws, numbers and checks.

Draws are bit for bit the NumPy engine's; trajectories are bit for bit on ψ in the aligned
basis under PowerSGD+ and full averaging (zeros stay exact there) and agree to rounding
elsewhere (torch's CPU ``sqrt`` is not correctly rounded and PowerSGD amplifies ulps). The
engine's own bad-input parametrisation is imported from test_core_engine.
"""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import test_core_engine as core  # noqa: E402

import simsgd  # noqa: E402
from simsgd.distributed import concat_traces, launch, simulate_sharded  # noqa: E402
from simsgd.distributed.matching import trace_diff  # noqa: E402
from simsgd.lock import locked_mask  # noqa: E402
from simsgd.ops import array_ops  # noqa: E402
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2  # noqa: E402
from simsgd.streams import NodeStreams, TorchNodeStreams  # noqa: E402
from simsgd.torch_ops import cholesky_qr2, top_left_singular_vectors_2x2  # noqa: E402

QUAD = HeterogeneousQuadratic(m=5, n=4, nodes=3, seed=1)
ALIGNED = Psi2x2(5.0, basis="aligned")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none on this machine")


def _both(problem, **kw):
    return simsgd.simulate(problem, **kw), simsgd.simulate(problem, backend="torch", **kw)


def _exact(a, b):
    return max(trace_diff(b, a).values()) == 0.0


# --- draws -----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [-1, 0, 7, 10**9, "tensor"])
def test_torch_streams_draw_the_numpy_bits(step):
    ids, nodes = np.array([0, 5, 2**40, 3, 2**62]), np.arange(4)
    t = torch.tensor(7) if step == "tensor" else step
    a, b = NodeStreams(3, ids, nodes).at(int(t)), TorchNodeStreams(3, ids, nodes).at(t)
    np.testing.assert_array_equal(a._bits((2, 3)).view(np.int64), b._bits((2, 3)).numpy())
    np.testing.assert_array_equal(a.uniform((5,)), b.uniform((5,)).numpy())
    np.testing.assert_array_equal(a.rademacher((3,)), b.rademacher((3,)).numpy())
    # Box–Muller through torch's log/cos: equal to rounding only.
    np.testing.assert_allclose(a.normal((4, 2)), b.normal((4, 2)).numpy(), rtol=1e-14, atol=1e-14)


def test_stream_identity_can_fail():
    # Negative controls: another seed, another node or another draw index gives other bits.
    ids = np.arange(6)
    ref = NodeStreams(3, ids, [0]).at(2).uniform((4,))
    assert not np.array_equal(ref, TorchNodeStreams(4, ids, [0]).at(2).uniform((4,)).numpy())
    assert not np.array_equal(ref, TorchNodeStreams(3, ids, [1]).at(2).uniform((4,)).numpy())
    other = TorchNodeStreams(3, ids, [0]).at(2)
    other.uniform((4,))
    assert not np.array_equal(ref, other.uniform((4,)).numpy())


@pytest.mark.parametrize("problem", [Psi2x2(5.0), ALIGNED, GeneralCounterexample(4, 3), QUAD])
def test_oracles_draw_identical_xi(problem):
    nodes = getattr(problem, "nodes", None) or 4  # per-node σ_i fix N; a scalar σ leaves it None
    ids = np.arange(50)
    # Dyadic X: the oracles' sums are exact in any order, so the ξ alone decides equality.
    x = np.random.default_rng(0).integers(-8, 9, (50,) + problem.shape) / 4.0
    g_np = problem.stochastic_grads(x, nodes, NodeStreams(2, ids, np.arange(nodes)).at(5))
    g_t = problem.stochastic_grads(
        torch.from_numpy(x), nodes, TorchNodeStreams(2, ids, np.arange(nodes)).at(5)
    )
    assert isinstance(g_t, torch.Tensor) and g_t.dtype == torch.float64
    if isinstance(problem, HeterogeneousQuadratic):  # Gaussian noise and data: rounding
        np.testing.assert_allclose(g_t.numpy(), g_np, rtol=1e-13, atol=1e-13)
    else:  # Rademacher signs: exact
        np.testing.assert_array_equal(g_t.numpy(), g_np)
    np.testing.assert_allclose(problem.loss(torch.from_numpy(x)).numpy(), problem.loss(x), rtol=1e-14)
    assert array_ops(x).name == "numpy" and array_ops(g_t).name == "torch"


def test_identical_lock_events():
    kw = dict(method="powersgd", nodes=4, steps=200, replicas=400, lr=0.005, seed=1)
    a, b = _both(ALIGNED, **kw)
    locked = locked_mask(ALIGNED, a)
    np.testing.assert_array_equal(locked, locked_mask(ALIGNED, b))
    assert 0 < locked.sum() < 400  # ~400/2^4 lock; the comparison is not trivially all-equal
    # Locked runs are bit for bit (exact zeros); escaped ones only to rounding, amplified.
    np.testing.assert_array_equal(a.x[locked], b.x[locked])
    np.testing.assert_array_equal(a.degenerate_count[locked], b.degenerate_count[locked])


# --- trajectories ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["powersgd+", "full"])
@pytest.mark.parametrize("optimizer", ["sgd", "msgd", "adam"])
def test_aligned_psi_is_bit_for_bit(method, optimizer):
    kw = dict(method=method, optimizer=optimizer, nodes=4, steps=150, replicas=64, lr=0.005, seed=2)
    a, b = _both(ALIGNED, **kw)
    if optimizer == "adam":  # Adam's √v̂: torch's CPU pow(·, 0.5) is not correctly rounded
        assert max(trace_diff(b, a).values()) <= 1e-12, trace_diff(b, a)
    else:
        assert _exact(a, b), trace_diff(b, a)
    assert np.abs(a.x - ALIGNED.x0).max() > 0.1  # the runs move


def test_aligned_exactness_can_fail():
    # Negative control: the paper basis rounds differently (no exact zeros) and the NumPy
    # and torch runs of PowerSGD+ part after a few steps.
    a, b = _both(Psi2x2(5.0), method="powersgd+", nodes=4, steps=150, replicas=64, lr=0.005, seed=2)
    assert not _exact(a, b)


@pytest.mark.parametrize("method", ["powersgd", "powersgd+", "full"])
@pytest.mark.parametrize("optimizer", ["sgd", "msgd", "adam"])
def test_quadratic_agrees_to_rounding(method, optimizer):
    # Measured ≤ 6e-12 over 30 steps (rank 2, float64); the bound leaves a factor ~20.
    kw = dict(method=method, optimizer=optimizer, nodes=3, steps=30, replicas=20, lr=0.01, seed=1, rank=2)
    a, b = _both(QUAD, **kw)
    assert max(trace_diff(b, a).values()) <= 1e-10, trace_diff(b, a)


def test_float32_runs_in_float32():
    a, b = _both(QUAD, nodes=3, steps=20, replicas=4, lr=0.01, dtype="float32")
    assert b.x.dtype == np.float32 and b.grad_norm_sq.dtype == np.float64
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-4)


@pytest.mark.parametrize("method", ["powersgd", "powersgd+", "full"])
def test_replica_is_the_same_alone_or_in_a_batch(method):
    kw = dict(method=method, nodes=4, optimizer="msgd", lr=0.005, steps=60, seed=11, backend="torch")
    batch = simsgd.simulate(Psi2x2(5.0), replicas=300, **kw)
    for k in (0, 137, 299):
        alone = simsgd.simulate(Psi2x2(5.0), replica_ids=[k], **kw)
        np.testing.assert_array_equal(alone.x[0], batch.x[k])
        np.testing.assert_array_equal(alone.grad_norm_sq[0], batch.grad_norm_sq[k])


def test_degenerate_qr_is_counted_as_in_numpy():
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    a, b = _both(problem, method="powersgd", nodes=2, lr=0.005, steps=200, replicas=500, seed=1)
    np.testing.assert_array_equal(a.degenerate_per_step, b.degenerate_per_step)
    assert abs(b.degenerate_per_step[1:].sum() / (199 * 500) - 0.75) < 0.01


def test_record_selects_fields():
    kw = dict(method="powersgd+", nodes=4, steps=40, replicas=10, lr=0.005, seed=3)
    full = simsgd.simulate(ALIGNED, **kw)
    for backend in ("numpy", "torch"):
        part = simsgd.simulate(ALIGNED, backend=backend, record=("loss",), **kw)
        assert part.grad_norm_sq is None and part.error_norm_sq is None and part.momentum_norm_sq is None
        np.testing.assert_array_equal(part.loss, full.loss)
        np.testing.assert_array_equal(part.x, full.x)
        assert part.replicas == 10


# --- bad input and finiteness ----------------------------------------------------------------

BAD = core.test_bad_input_names_the_parameter.pytestmark[0].args[1]


@pytest.mark.parametrize("kwargs, name", BAD)
def test_bad_input_names_the_parameter(kwargs, name):
    base = dict(method="powersgd+", nodes=2, steps=3, replicas=2, lr=0.01, backend="torch")
    with pytest.raises(ValueError, match=name):
        simsgd.simulate(Psi2x2(1.0), **{**base, **kwargs})


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(backend="jax"), "backend"),
        (dict(backend="torch", device="tpu"), "device"),
        (dict(backend="torch", device="meta"), "device"),
        (dict(device="cuda"), "backend='torch'"),
        (dict(compile=True), "backend='torch'"),
        (dict(backend="torch", compile="yes"), "compile"),
        (dict(record=("loss", "grad")), "record"),
    ],
)
def test_bad_backend_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        simsgd.simulate(Psi2x2(1.0), steps=3, replicas=2, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA"):
        simsgd.simulate(Psi2x2(1.0), steps=3, replicas=2, backend="torch", device="cuda")


def test_torch_backend_without_torch_is_a_clear_error():
    code = (
        "import sys; sys.modules['torch'] = None; import simsgd\n"
        "try:\n    simsgd.simulate(simsgd.problems.Psi2x2(5.0), steps=5, replicas=3, backend='torch')\n"
        "except ValueError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "needs torch" in out.stdout, out.stderr


class _TorchBadOracle(core._BadOracle):
    def __init__(self, kind, step=2):
        super().__init__(kind)
        self.step = step

    def loss(self, x):
        return torch.zeros(x.shape[:-2], dtype=x.dtype)

    def grad(self, x):
        return torch.zeros_like(x)

    def stochastic_grads(self, x, nodes, rng):
        g = torch.ones((x.shape[0], nodes, 2, 2), dtype=x.dtype)
        if self.kind == "nan":  # NaN at replica 3, node 1, step ``self.step``
            g[3, 1, 0, 0] = torch.where(torch.as_tensor(rng.step) == self.step, torch.nan, 1.0)
        return g[:, 0] if self.kind == "shape" else g


def test_non_finite_gradient_names_step_and_replica():
    with pytest.raises(FloatingPointError, match=r"stochastic gradient at step t=2 in 1 replica\(s\): 3"):
        simsgd.simulate(_TorchBadOracle("nan"), nodes=2, steps=5, replicas=5, lr=0.1, backend="torch")


def test_wrong_oracle_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"stochastic_grads must return shape"):
        simsgd.simulate(_TorchBadOracle("shape"), nodes=2, steps=5, replicas=5, lr=0.1, backend="torch")


def test_non_finite_iterate_names_the_step():
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    kw = dict(method="powersgd", nodes=2, lr=0.005, steps=50, replicas=50, degenerate_qr="native")
    with pytest.raises(FloatingPointError, match=r"step t=\d+ in \d+ replica"):
        simsgd.simulate(problem, orthogonalization="gram-schmidt", backend="torch", **kw)
    simsgd.simulate(problem, backend="torch", **kw)  # control: Householder stays finite


def test_degenerate_qr_raise():
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    with pytest.raises(simsgd.DegenerateQRError):
        simsgd.simulate(
            problem,
            method="powersgd",
            nodes=2,
            lr=0.005,
            steps=50,
            replicas=50,
            degenerate_qr="raise",
            backend="torch",
        )


# --- closed forms ----------------------------------------------------------------------------


def test_closed_form_2x2_svd_matches_lapack():
    rng = np.random.default_rng(0)
    d = rng.standard_normal((2000, 2, 2)) * 10.0 ** rng.integers(-150, 150, (2000, 1, 1))
    d[:5] = [np.diag([3.0, 1.0]), np.diag([1.0, 3.0]), np.zeros((2, 2)), [[1.0, 2.0], [2.0, 4.0]], np.eye(2)]
    u = top_left_singular_vectors_2x2(torch.from_numpy(d)).numpy()
    ref, s, _ = np.linalg.svd(d)
    np.testing.assert_allclose(u.mT @ u, np.broadcast_to(np.eye(2), u.shape), atol=1e-14)
    clear = s[:, 0] > s[:, 1] * (1 + 1e-6)  # the top direction is defined
    assert clear.sum() > 1900
    np.testing.assert_allclose(np.abs(np.sum(u[clear, :, 0] * ref[clear, :, 0], -1)), 1.0, atol=1e-12)
    np.testing.assert_array_equal(u[0], np.eye(2))  # diagonal: exact, as LAPACK's up to sign
    np.testing.assert_array_equal(np.abs(u[1]), [[0.0, 1.0], [1.0, 0.0]])
    # Negative control: the second singular vector is not the top one.
    assert np.abs(np.sum(u[clear, :, 1] * ref[clear, :, 0], -1)).max() < 1e-6


def test_cholesky_qr2_matches_householder_up_to_signs():
    p = torch.from_numpy(np.random.default_rng(1).standard_normal((100, 6, 2)))
    q, r_diag = cholesky_qr2(p)
    q_ref, r_ref = torch.linalg.qr(p)
    signs = torch.sign(torch.diagonal(r_ref, dim1=-2, dim2=-1))
    torch.testing.assert_close(q, q_ref * signs[:, None, :], rtol=0, atol=1e-13)
    torch.testing.assert_close(r_diag, torch.diagonal(r_ref, dim1=-2, dim2=-1).abs(), rtol=1e-12, atol=0)
    deficient = p.clone()
    deficient[:, :, 1] = 2 * deficient[:, :, 0]
    assert torch.all(cholesky_qr2(deficient)[1].amin(-1) < 1e-6)


def test_same_seed_same_numbers_whatever_the_thread_count():
    # PowerSGD in the paper basis amplifies last-bit differences, so any reordering would show.
    kw = dict(method="powersgd", nodes=4, steps=120, replicas=300, lr=0.005, seed=1, backend="torch")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = simsgd.simulate(Psi2x2(5.0), **kw)
        torch.set_num_threads(1)
        b = simsgd.simulate(Psi2x2(5.0), **kw)
    finally:
        torch.set_num_threads(threads)
    assert _exact(a, b), trace_diff(b, a)
    assert not _exact(simsgd.simulate(Psi2x2(5.0), **{**kw, "seed": 2}), a)  # control


# --- devices and compile ---------------------------------------------------------------------


@CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("problem", [ALIGNED, QUAD])
def test_cuda_matches_cpu(problem):
    kw = dict(method="powersgd+", nodes=getattr(problem, "nodes", 4), steps=30, replicas=64, lr=0.005, seed=2)
    a = simsgd.simulate(problem, backend="torch", **kw)
    b = simsgd.simulate(problem, backend="torch", device="cuda", **kw)
    assert max(trace_diff(b, a).values()) <= 1e-10


@pytest.fixture
def dynamo_off():
    """torch.compile returns its function uncompiled: the block path, run eagerly and fast."""
    import torch._dynamo

    # torch's own patch, not monkeypatch: pytest ≥ 9.2 looks attributes up statically, and the
    # config module's are dynamic.
    with torch._dynamo.config.patch(disable=True):
        yield


@pytest.mark.parametrize("method", ["powersgd", "powersgd+", "full"])
def test_block_path_is_the_step_path_bit_for_bit(dynamo_off, method):
    # ψ in the paper basis is chaotic, so any difference in the block path would show.
    kw = dict(
        method=method, nodes=4, steps=47, replicas=16, lr=0.005, seed=2, restart_period=5, backend="torch"
    )
    a = simsgd.simulate(Psi2x2(5.0), **kw)
    b = simsgd.simulate(Psi2x2(5.0), compile=True, **kw)
    assert _exact(a, b), trace_diff(b, a)
    np.testing.assert_array_equal(b.restart_residual, a.restart_residual)  # recorded in blocks too
    part = simsgd.simulate(Psi2x2(5.0), compile=True, record=("loss",), **kw)
    np.testing.assert_array_equal(part.loss, a.loss)


@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adamw", 0.1)])
def test_block_path_runs_adam_with_a_tensor_step_count(dynamo_off, optimizer, weight_decay):
    # The step count enters the blocks as a float64 tensor (an int would recompile per block).
    kw = dict(method="powersgd+", nodes=4, steps=47, replicas=16, lr=0.005, seed=2, restart_period=5)
    kw.update(backend="torch", optimizer=optimizer, weight_decay=weight_decay)
    a = simsgd.simulate(ALIGNED, **kw)
    b = simsgd.simulate(ALIGNED, compile=True, **kw)
    assert _exact(a, b), trace_diff(b, a)
    other = simsgd.simulate(ALIGNED, compile=True, **{**kw, "optimizer": "msgd"})  # control
    assert not _exact(other, b)


def test_block_path_checks_finiteness(dynamo_off):
    kw = dict(nodes=2, steps=25, replicas=5, lr=0.1, restart_period=5, backend="torch", compile=True)
    with pytest.raises(FloatingPointError, match=r"stochastic gradient at step t=12 in 1 replica\(s\): 3"):
        simsgd.simulate(_TorchBadOracle("nan", step=12), **kw)
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    with pytest.raises(FloatingPointError, match=r"iterate X_\{t\+1\} at step t=\d+"):
        simsgd.simulate(
            problem,
            method="powersgd",
            orthogonalization="gram-schmidt",
            degenerate_qr="native",
            **{**kw, "nodes": 2},
        )
    with pytest.raises(ValueError, match="degenerate_qr='raise'"):
        simsgd.simulate(problem, degenerate_qr="raise", **kw)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["msgd", "adam"])
def test_compiled_block_matches_eager(optimizer):
    # The compiled path's first call compiles (tens of seconds on CPU).
    kw = dict(method="powersgd+", nodes=4, steps=25, replicas=32, lr=0.005, seed=2, restart_period=5)
    kw["optimizer"] = optimizer
    a = simsgd.simulate(ALIGNED, backend="torch", **kw)
    b = simsgd.simulate(ALIGNED, backend="torch", compile=True, **kw)
    assert max(trace_diff(b, a).values()) <= 1e-12, trace_diff(b, a)


# --- sharded Monte Carlo under torch.distributed ---------------------------------------------

SHARDED = [
    (ALIGNED, dict(method="powersgd", nodes=4, steps=60, replicas=37, lr=0.005, seed=5)),
    (
        QUAD,
        dict(method="powersgd+", nodes=3, rank=2, steps=30, replicas=11, lr=0.01, seed=5, backend="torch"),
    ),
]


def _sharded():
    return [simulate_sharded(problem, **options) for problem, options in SHARDED]


@pytest.fixture(scope="module")
def sharded():
    return launch(_sharded, 2, timeout=120, deadline=300)


def test_sharded_run_is_the_single_process_trace_bit_for_bit(sharded):
    assert sharded[1] == [None, None]  # only rank 0 receives the trace
    for (problem, options), trace in zip(SHARDED, sharded[0]):
        ref = simsgd.simulate(problem, **options)
        assert _exact(trace, ref), trace_diff(trace, ref)
        assert trace.config == ref.config and trace.replicas == ref.replicas


def test_joining_shards_in_the_wrong_order_is_seen(sharded):
    # Negative control for the comparison above: the same shards joined in reverse order.
    problem, options = SHARDED[0]
    ids = np.arange(options["replicas"])
    kw = {k: v for k, v in options.items() if k != "replicas"}
    halves = [simsgd.simulate(problem, replica_ids=part, **kw) for part in np.array_split(ids, 2)]
    assert _exact(concat_traces(halves), sharded[0][0])
    assert not _exact(concat_traces(halves[::-1]), sharded[0][0])
    other = simsgd.simulate(problem, replica_ids=ids[:3], **{**kw, "seed": 6})
    with pytest.raises(ValueError, match="same run"):
        concat_traces([halves[0], other])


# --- the CUDA-only branches, run on CPU ---------------------------------------------------------


@pytest.fixture
def cholesky_backend(monkeypatch):
    """backend="torch-cholesky": the torch backend with TorchOps(qr="cholesky"), CUDA's QR, on CPU;
    yields the list of CholeskyQR2 calls.
    """
    import simsgd.torch_ops as torch_ops
    from simsgd import backends
    from simsgd.torch_ops import TorchOps

    calls = []
    real = torch_ops.cholesky_qr2
    monkeypatch.setattr(torch_ops, "cholesky_qr2", lambda p: calls.append(p.shape) or real(p))
    base = backends.get("torch")
    ops = lambda device: TorchOps(device, qr="cholesky")  # noqa: E731
    backends.register("torch-cholesky", lambda: base._replace(name="torch-cholesky", ops=ops))
    yield calls
    backends._LOADERS.pop("torch-cholesky")


CHOLESKY_KW = dict(method="powersgd+", nodes=3, rank=2, steps=30, replicas=11, lr=0.01, seed=5)


def test_cuda_qr_runs_on_cpu(cholesky_backend):
    a = simsgd.simulate(QUAD, backend="torch", **CHOLESKY_KW)
    assert cholesky_backend == []  # control: the CPU default is Householder
    b = simsgd.simulate(QUAD, backend="torch-cholesky", **CHOLESKY_KW)
    assert len(cholesky_backend) == 27  # every SSP step (30 steps, τ = 10: 3 restarts)
    diff = trace_diff(b, a)
    assert diff.pop("q") > 0.1  # Q_{T−1}'s columns: CholeskyQR2's signs are not Householder's
    np.testing.assert_allclose(np.abs(b.q), np.abs(a.q), rtol=1e-10, atol=1e-12)
    assert max(diff.values()) <= 1e-10  # P̃Qᵀ, and so the trajectory, does not see the signs


def test_cuda_qr_in_the_compiled_block_on_cpu(cholesky_backend, dynamo_off):
    a = simsgd.simulate(QUAD, backend="torch-cholesky", **CHOLESKY_KW)
    b = simsgd.simulate(QUAD, backend="torch-cholesky", compile=True, **CHOLESKY_KW)
    assert _exact(a, b), trace_diff(b, a)
    assert len(cholesky_backend) == 2 * 27


def test_bad_qr_option():
    from simsgd.torch_ops import TorchOps

    with pytest.raises(ValueError, match="qr must be"):
        TorchOps("cpu", qr="gram")


def test_compile_options_by_device():
    from simsgd.fused import compile_options

    cpu, cuda = compile_options(torch.device("cpu")), compile_options(torch.device("cuda"))
    assert cpu["cpp.vec_isa_ok"] is False and "cpp.vec_isa_ok" not in cuda
    assert {k: v for k, v in cpu.items() if not k.startswith("cpp.")} == cuda
