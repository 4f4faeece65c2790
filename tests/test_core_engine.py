"""Algorithm 2 in the simulated engine: reference loops, conventions, seeding, bad input."""

import os
import subprocess
import sys
import typing
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import simsgd
from simsgd import options
from simsgd.algorithm import Config
from simsgd.loop import checked_grads, run_loop
from simsgd.ops import NUMPY, ArrayOps, NumpyOps, _replica_fastest
from simsgd.problems import HeterogeneousQuadratic, Psi2x2
from simsgd.run import prepare
from simsgd.streams import NodeStreams, initial_q

QUAD = HeterogeneousQuadratic(m=5, n=4, nodes=3, seed=1)


def _grads(problem, x, nodes, seed, replica_ids, t):
    return problem.stochastic_grads(x, nodes, NodeStreams(seed, replica_ids, np.arange(nodes)).at(t))


def _plain_loop(problem, nodes, steps, seed, lr, compress, momentum=0.0, replica_ids=(0, 1, 2)):
    """A direct transcription of (7a)–(7c) with MSGD and a given global compressor."""
    ids = np.asarray(replica_ids)
    x = np.broadcast_to(problem.x0, (ids.size,) + problem.shape).copy()
    m = np.zeros_like(x)
    for t in range(steps):
        g = _grads(problem, x, nodes, seed, ids, t)
        m = momentum * m + compress(g.mean(1), t)
        x = x - lr * m
    return x


def _truncated_svd(a, r):
    u, s, vt = np.linalg.svd(a)
    return (u[..., :r] * s[..., None, :r]) @ vt[..., :r, :]


@pytest.mark.parametrize("optimizer, momentum", [("sgd", 0.0), ("msgd", 0.5)])
def test_full_equals_plain_distributed_sgd(optimizer, momentum):
    trace = simsgd.simulate(
        QUAD,
        method="full",
        nodes=3,
        optimizer=optimizer,
        momentum=momentum,
        lr=0.05,
        steps=30,
        replicas=3,
        seed=4,
    )
    x = _plain_loop(QUAD, 3, 30, 4, 0.05, lambda d, t: d, momentum)
    np.testing.assert_allclose(trace.x, x, rtol=1e-12, atol=1e-12)
    assert np.all(trace.floats_sent == 5 * 4) and not trace.restart_steps.any()


@pytest.mark.parametrize("rank", [1, 2])
def test_powersgd_plus_tau1_is_the_optimal_rank_r_step(rank):
    # With τ = 1 every step is SVD-COMP; without error feedback each update is the best
    # rank-r approximation of the node average.
    trace = simsgd.simulate(
        QUAD,
        method="powersgd+",
        restart_period=1,
        nodes=3,
        rank=rank,
        optimizer="msgd",
        momentum=0.3,
        lr=0.05,
        steps=25,
        replicas=3,
        seed=5,
        error_feedback="none",
    )
    x = _plain_loop(QUAD, 3, 25, 5, 0.05, lambda d, t: _truncated_svd(d, rank), 0.3)
    np.testing.assert_allclose(trace.x, x, rtol=1e-10, atol=1e-12)
    assert trace.restart_steps.all() and np.all(trace.floats_sent == 5 * 4 + 4 * rank)


def test_adam_matches_a_reference_implementation():
    trace = simsgd.simulate(
        QUAD, method="full", nodes=3, optimizer="adam", lr=0.01, steps=20, replicas=2, seed=6
    )
    ids = np.arange(2)
    x = np.broadcast_to(QUAD.x0, (2, 5, 4)).copy()
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(20):
        d = _grads(QUAD, x, 3, 6, ids, t).mean(1)
        m, v = 0.9 * m + 0.1 * d, 0.999 * v + 0.001 * d * d
        x = x - 0.01 * (m / (1 - 0.9 ** (t + 1))) / (np.sqrt(v / (1 - 0.999 ** (t + 1))) + 1e-8)
    np.testing.assert_allclose(trace.x, x, rtol=1e-12, atol=1e-14)


@given(
    seed=st.integers(0, 2**31),
    nodes=st.integers(1, 4),
    rank=st.integers(1, 3),
    optimizer=st.sampled_from(["sgd", "msgd", "adam"]),
    method=st.sampled_from(["powersgd", "powersgd+"]),
)
def test_local_and_global_error_feedback_give_the_same_iterates(seed, nodes, rank, optimizer, method):
    problem = HeterogeneousQuadratic(m=5, n=4, nodes=nodes, seed=seed % 1000)
    kw = dict(
        method=method,
        nodes=nodes,
        rank=rank,
        restart_period=3,
        optimizer=optimizer,
        lr=0.02,
        steps=15,
        replicas=4,
        seed=seed,
    )
    local = simsgd.simulate(problem, error_feedback="local", **kw)
    glob = simsgd.simulate(problem, error_feedback="global", **kw)
    # Linearity: Σ_i e^{(i)} is the same under both, so X, ||mean e|| and Q agree.
    np.testing.assert_allclose(local.x, glob.x, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(local.error_norm_sq, glob.error_norm_sq, rtol=1e-7, atol=1e-10)


def test_the_two_conventions_keep_different_local_errors():
    from simsgd import algorithm

    rng = np.random.default_rng(0)
    grads = rng.standard_normal((1, 3, 5, 4))
    states = {}
    for ef in ("local", "global"):
        cfg = algorithm.Config(
            method="powersgd", rank=1, restart_period=1, optimizer="sgd", momentum=0.0, error_feedback=ef
        )
        state = algorithm.init(np.zeros((1, 5, 4)), np.ones((1, 4, 1)), grads, cfg)
        states[ef], _ = algorithm.step(state, grads, 1, 0.1, cfg)
    assert not np.allclose(states["local"].error, states["global"].error)
    np.testing.assert_allclose(states["local"].error.mean(1), states["global"].error.mean(1), atol=1e-14)


@pytest.mark.parametrize("method", ["powersgd", "powersgd+", "full"])
def test_replica_is_the_same_alone_or_in_a_batch(method):
    kw = dict(method=method, nodes=4, optimizer="msgd", lr=0.005, steps=60, seed=11)
    problem = Psi2x2(5.0)
    batch = simsgd.simulate(problem, replicas=300, **kw)
    for k in (0, 137, 299):
        alone = simsgd.simulate(problem, replica_ids=[k], **kw)
        np.testing.assert_array_equal(alone.x[0], batch.x[k])
        np.testing.assert_array_equal(alone.grad_norm_sq[0], batch.grad_norm_sq[k])


def test_same_seed_same_numbers_other_seed_other_numbers():
    kw = dict(method="powersgd+", nodes=2, lr=0.02, steps=40, replicas=20)
    a = simsgd.simulate(HeterogeneousQuadratic(nodes=2), seed=3, **kw)
    b = simsgd.simulate(HeterogeneousQuadratic(nodes=2), seed=3, **kw)
    c = simsgd.simulate(HeterogeneousQuadratic(nodes=2), seed=4, **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not np.allclose(a.loss[:, -1], c.loss[:, -1])


def test_schedule_and_floats_sent():
    trace = simsgd.simulate(
        QUAD, method="powersgd+", nodes=3, rank=2, restart_period=4, steps=10, replicas=1, lr=0.01
    )
    assert trace.restart_steps.tolist() == [t % 4 == 0 for t in range(10)]
    expected = [5 * 4 + 4 * 2 if t % 4 == 0 else (5 + 4) * 2 for t in range(10)]
    assert trace.floats_sent.tolist() == expected
    plain = simsgd.simulate(QUAD, method="powersgd", nodes=3, rank=2, steps=10, replicas=1, lr=0.01)
    assert plain.floats_sent.tolist() == [18] * 10 and not plain.restart_steps.any()


def test_trace_fields_and_shapes():
    trace = simsgd.simulate(
        QUAD, method="powersgd", nodes=3, rank=2, steps=7, replicas=5, lr=0.01, optimizer="msgd", momentum=0.9
    )
    for name in ("grad_norm_sq", "loss", "error_norm_sq", "momentum_norm_sq"):
        assert getattr(trace, name).shape == (5, 8)
    assert trace.error_norm_sq[:, 0].tolist() == [0.0] * 5
    assert trace.momentum_norm_sq[:, 0].tolist() == [0.0] * 5
    np.testing.assert_allclose(trace.loss[:, 0], QUAD.loss(QUAD.x0))
    np.testing.assert_allclose(trace.loss[:, -1], QUAD.loss(trace.x))
    assert trace.x.shape == (5, 5, 4) and trace.q.shape == (5, 4, 2)


def test_float32_runs_in_float32():
    trace = simsgd.simulate(QUAD, nodes=3, steps=20, replicas=4, lr=0.01, dtype="float32")
    assert trace.x.dtype == np.float32 and np.all(np.isfinite(trace.loss))
    ref = simsgd.simulate(QUAD, nodes=3, steps=20, replicas=4, lr=0.01, dtype="float64")
    np.testing.assert_allclose(trace.loss, ref.loss, rtol=1e-3)


def test_callable_learning_rate_and_q_init():
    schedule = lambda t: 0.05 / (1 + t)  # noqa: E731
    q0 = np.ones((4, 1))
    a = simsgd.simulate(QUAD, nodes=3, steps=10, replicas=2, lr=schedule, q_init=q0)
    b = simsgd.simulate(QUAD, nodes=3, steps=10, replicas=2, lr=schedule, q_init=np.ones((2, 4, 1)))
    np.testing.assert_array_equal(a.x, b.x)
    with pytest.raises(ValueError, match=r"lr\(3\)"):
        simsgd.simulate(QUAD, nodes=3, steps=10, replicas=2, lr=lambda t: 0.1 if t < 3 else -1.0)


def test_default_q_init_is_seeded_and_per_replica():
    q = initial_q(0, np.arange(3), 4, 2)
    assert q.shape == (3, 4, 2)
    np.testing.assert_array_equal(q[2], initial_q(0, [2], 4, 2)[0])
    assert not np.allclose(q[0], q[1])


def test_degenerate_qr_is_counted():
    # Aligned ψ basis, N = 2, forced lock: P_t = q_{t-1}·(Σ_i ξ_t^{(i)})·(2σ/N)·C and
    # Q_{t-1} ∝ Σ_i ξ_{t-1}^{(i)}, so P_t = 0 when either sum vanishes (each with
    # probability p0 = 1/2): rate 1 − (1 − p0)² = 3/4 per step after the first.
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    trace = simsgd.simulate(problem, method="powersgd", nodes=2, lr=0.005, steps=200, replicas=500, seed=1)
    rate = trace.degenerate_per_step[1:].sum() / (199 * 500)
    assert abs(rate - 0.75) < 0.01
    assert trace.degenerate_count.sum() == trace.degenerate_per_step.sum()
    assert np.all(trace.grad_norm_sq == 16.0)  # "previous" keeps the lock


def test_degenerate_qr_field_is_a_deprecated_alias_of_degenerate_count():
    trace = simsgd.simulate(Psi2x2(5.0), method="powersgd", nodes=2, steps=20, replicas=8, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name does not warn
        count = trace.degenerate_count
    with pytest.warns(DeprecationWarning, match="degenerate_count"):
        assert trace.degenerate_qr is count


def test_degenerate_qr_raise_names_the_problem():
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    with pytest.raises(simsgd.DegenerateQRError):
        simsgd.simulate(
            problem, method="powersgd", nodes=2, lr=0.005, steps=50, replicas=50, degenerate_qr="raise"
        )


def test_gram_schmidt_without_epsilon_stops_with_a_named_step():
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    with pytest.raises(FloatingPointError, match=r"step t=\d+ in \d+ replica"):
        simsgd.simulate(
            problem,
            method="powersgd",
            nodes=2,
            lr=0.005,
            steps=50,
            replicas=50,
            orthogonalization="gram-schmidt",
            degenerate_qr="native",
        )


class _BadOracle:
    shape = (2, 2)
    x0 = np.zeros((2, 2))

    def __init__(self, kind):
        self.kind = kind

    def loss(self, x):
        return np.zeros(x.shape[:-2])

    def grad(self, x):
        return np.zeros_like(x)

    def stochastic_grads(self, x, nodes, rng):
        g = np.ones((x.shape[0], nodes, 2, 2))
        if self.kind == "nan":
            g[3, 1, 0, 0] = np.nan if rng.step == 2 else 1.0
        if self.kind == "shape":
            g = g[:, 0]
        return g


def test_non_finite_gradient_names_step_and_replica():
    with pytest.raises(FloatingPointError, match=r"stochastic gradient at step t=2 in 1 replica\(s\): 3"):
        simsgd.simulate(_BadOracle("nan"), nodes=2, steps=5, replicas=5, lr=0.1)


def test_wrong_oracle_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"stochastic_grads must return shape"):
        simsgd.simulate(_BadOracle("shape"), nodes=2, steps=5, replicas=5, lr=0.1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(rank=0), "rank"),
        (dict(rank=3), "rank"),
        (dict(rank=1.5), "rank"),
        (dict(restart_period=0), "restart_period"),
        (dict(nodes=0), "nodes"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(momentum=-0.1), "momentum"),
        (dict(replicas=0), "replicas"),
        (dict(steps=0), "steps"),
        (dict(seed=-1), "seed"),
        (dict(dtype="int32"), "dtype"),
        (dict(dtype="float16"), "dtype"),
        (dict(method="sgd"), "method"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(error_feedback="both"), "error_feedback"),
        (dict(orthogonalization="svd"), "orthogonalization"),
        (dict(degenerate_qr="ignore"), "degenerate_qr"),
        (dict(orthogonalization_epsilon=-1e-8), "orthogonalization_epsilon"),
        (dict(q_init=np.ones((3, 1))), "q_init"),
        (dict(x0=np.ones(3)), "x0"),
        (dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    base = dict(method="powersgd+", nodes=2, steps=3, replicas=2, lr=0.01)
    with pytest.raises(ValueError, match=name):
        simsgd.simulate(Psi2x2(1.0), **{**base, **kwargs})


def test_problem_constructors_reject_bad_input():
    with pytest.raises(ValueError, match="noise_scale"):
        Psi2x2(-1.0)
    with pytest.raises(ValueError, match="basis"):
        Psi2x2(1.0, basis="diagonal")
    with pytest.raises(ValueError, match="noise_rank"):
        HeterogeneousQuadratic(m=3, n=2, noise_rank=3)
    with pytest.raises(ValueError, match="nodes must equal"):
        simsgd.simulate(HeterogeneousQuadratic(nodes=3), nodes=2, steps=2, replicas=1, lr=0.01)


def test_import_without_torch():
    # Runs whether or not torch is installed: torch is hidden, and must not be loaded.
    code = (
        "import sys; sys.modules['torch'] = None; import simsgd; "
        "t = simsgd.simulate(simsgd.problems.Psi2x2(5.0), steps=5, replicas=3); print(t.x.shape); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' and sys.modules[m]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["(3, 2, 2)", "[]"]


def test_numpy_ops_implement_the_array_ops_protocol(interface_mismatches):
    assert isinstance(NUMPY, ArrayOps) and interface_mismatches(NumpyOps, ArrayOps) == []


def test_the_array_ops_check_can_fail(interface_mismatches):
    class NoQR(NumpyOps):
        qr = None  # a member that is not a method

    class WrongSignature(NumpyOps):
        @staticmethod
        def node_mean(x, axis):
            return x.mean(axis)

    class Empty:
        pass

    assert not isinstance(Empty(), ArrayOps)
    assert interface_mismatches(Empty, ArrayOps)[:2] == ["name: missing", "node_mean: missing"]
    assert interface_mismatches(NoQR, ArrayOps) == ["qr: not a method"]
    assert [m.split(":")[0] for m in interface_mismatches(WrongSignature, ArrayOps)] == ["node_mean"]


def test_progress_bar_when_asked(capsys):
    simsgd.simulate(Psi2x2(1.0), steps=3, replicas=2, progress=True)
    assert "3/3" in capsys.readouterr().err
    simsgd.simulate(Psi2x2(1.0), steps=3, replicas=2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "option, values",
    [
        ("method", options.METHODS),
        ("error_feedback", options.ERROR_FEEDBACKS),
        ("orthogonalization", options.ORTHOGONALIZATIONS),
        ("degenerate_qr", options.DEGENERATE_QR),
        ("optimizer", options.OPTIMIZERS),
        ("dtype", typing.get_args(options.FloatDtype)),
    ],
)
def test_every_literal_option_value_runs_and_no_other(option, values):
    hint = typing.get_type_hints(simsgd.simulate)[option]
    literals = [a for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is typing.Literal]
    assert literals[0].__args__ == values
    for value in values:
        trace = simsgd.simulate(QUAD, nodes=3, rank=2, steps=2, replicas=2, lr=0.01, **{option: value})
        assert trace.config[option] == value
    with pytest.raises(ValueError, match=option):
        simsgd.simulate(QUAD, nodes=3, rank=2, steps=2, replicas=2, **{option: "no-such-value"})


def test_built_in_problems_implement_the_problem_protocols():
    from simsgd.problems import GeneralCounterexample, Problem, ProblemWithConstants

    for problem in (Psi2x2(5.0), QUAD, GeneralCounterexample(4, 4, 1, 5.0)):
        assert isinstance(problem, Problem) and isinstance(problem, ProblemWithConstants)
        for name in ("L", "variance", "f_star", "omega_sq"):
            value = getattr(problem, name)
            assert value is None or np.isfinite(value)

    class NoConstants:  # the negative control: an oracle without L, variance, f*, ω²
        shape, x0 = QUAD.shape, QUAD.x0
        loss, grad, stochastic_grads = QUAD.loss, QUAD.grad, QUAD.stochastic_grads

    assert isinstance(NoConstants(), Problem) and not isinstance(NoConstants(), ProblemWithConstants)
    del NoConstants.grad
    assert not isinstance(NoConstants(), Problem)


def test_one_version_source():
    # pyproject.toml reads simsgd.__version__ (dynamic); the installed metadata must agree with it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("simsgd")
    except PackageNotFoundError:
        pytest.skip("simsgd is not installed")
    assert installed == simsgd.__version__
    text = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "pyproject.toml")).read()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text.split("[tool.")[0]


# --- NumpyOps' entry-by-entry kernels: the plain NumPy expressions' numbers, bit for bit ------


def _plain_node_mean(x):
    total = x[..., 0, :, :].copy()
    for i in range(1, x.shape[-3]):
        total += x[..., i, :, :]
    return total / x.shape[-3]


def _plain_matmul(a, b):  # the broadcast outer products, summed in order of j
    out = a[..., :, 0:1] * b[..., 0:1, :]
    for j in range(1, a.shape[-1]):
        out += a[..., :, j : j + 1] * b[..., j : j + 1, :]
    return out


@given(
    batch=st.lists(st.integers(0, 3), max_size=2),
    nodes=st.integers(1, 5),
    m=st.integers(1, 5),
    k=st.integers(1, 4),
    n=st.integers(1, 5),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**32 - 1),
    special=st.sampled_from([None, np.nan, np.inf, -0.0]),
    fortran=st.booleans(),
)
def test_numpy_ops_fast_paths_are_the_plain_expressions(batch, nodes, m, k, n, dtype, seed, special, fortran):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, nodes, m, n)).astype(dtype) * 10.0 ** rng.integers(-3, 4)
    if special is not None and x.size:
        x.flat[rng.integers(x.size)] = special
    a = rng.standard_normal((*batch, 1, m, k)).astype(dtype)
    b = x[..., :k, :] if k <= m else rng.standard_normal((*batch, nodes, k, n)).astype(dtype)
    if fortran:  # the engine's layout (NumpyOps.node_layout): same numbers
        x, a, b = np.asfortranarray(x), np.asfortranarray(a), np.asfortranarray(b)
    mean, plain_mean = NUMPY.node_mean(x), _plain_node_mean(x)
    assert mean.dtype == plain_mean.dtype and mean.shape == plain_mean.shape
    np.testing.assert_array_equal(mean, plain_mean)
    np.testing.assert_array_equal(NUMPY.maxabs(x), np.abs(x).max(axis=(-2, -1)))
    product = NUMPY.matmul(a, b)
    np.testing.assert_array_equal(product, _plain_matmul(a, b))
    if special is None:  # and the product it stands for
        np.testing.assert_allclose(product, a @ b, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-6)


def test_numpy_ops_fast_paths_control():
    # Negative control: the comparison sees a last-bit change (a sum in another order).
    x = np.random.default_rng(0).standard_normal((7, 4, 2, 2))
    reordered = (x[..., 3, :, :] + x[..., 2, :, :] + x[..., 1, :, :] + x[..., 0, :, :]) / 4
    assert not np.array_equal(NUMPY.node_mean(x), reordered)


# --- the NumPy engine's layout: replicas fastest in memory for small matrices, same numbers ----

_LAYOUT_CASES = {  # problem, nodes, rank: 2×2; m = 8 with r = 1 (a sum NumPy would pair); m·n = 16
    "psi": (Psi2x2(5.0), 4, 1),
    "quadratic 8x2": (HeterogeneousQuadratic(m=8, n=2, nodes=3, seed=1, noise=0.3), 3, 1),
    "quadratic 4x4": (HeterogeneousQuadratic(m=4, n=4, nodes=3, seed=2), 3, 2),
}


def _layout_trace(name, method, optimizer="msgd"):
    problem, nodes, rank = _LAYOUT_CASES[name]
    return simsgd.simulate(
        problem, method=method, nodes=nodes, rank=rank, optimizer=optimizer, restart_period=3,
        steps=12, replicas=6, seed=3, lr=0.01, progress=False,
    )  # fmt: skip


def _trace_arrays(trace):
    names = ("grad_norm_sq", "loss", "error_norm_sq", "momentum_norm_sq", "x", "q", "restart_residual")
    return [getattr(trace, name) for name in names] + [trace.degenerate_per_step]


@pytest.mark.parametrize("name", list(_LAYOUT_CASES))
@pytest.mark.parametrize("method", ["powersgd", "powersgd+", "galore", "full"])
def test_numpy_engine_numbers_do_not_depend_on_the_layout(monkeypatch, name, method):
    laid_out = _layout_trace(name, method, "adam" if method == "galore" else "msgd")
    monkeypatch.setattr(NumpyOps, "node_layout", staticmethod(lambda x: x))  # C order throughout
    plain = _layout_trace(name, method, "adam" if method == "galore" else "msgd")
    for a, b in zip(_trace_arrays(laid_out), _trace_arrays(plain)):
        np.testing.assert_array_equal(a, b)


def test_numpy_engine_layout_control(monkeypatch):
    # Negative control: a sum whose order follows the layout (NumPy sums a contiguous axis of
    # ≥ 8 pairwise, a strided one in sequence) makes the two layouts' numbers differ.
    monkeypatch.setattr(NumpyOps, "col_sum", staticmethod(lambda x, keep=True: x.sum(axis=-2, keepdims=keep)))
    laid_out = _layout_trace("quadratic 8x2", "powersgd")
    monkeypatch.setattr(NumpyOps, "node_layout", staticmethod(lambda x: x))
    assert not np.array_equal(laid_out.x, _layout_trace("quadratic 8x2", "powersgd").x)


@pytest.mark.parametrize("shape, fastest", [((2, 2), True), ((8, 2), True), ((9, 1), False), ((4, 5), False)])
def test_numpy_engine_keeps_per_node_arrays_replicas_fastest(shape, fastest):
    # What its speed rests on: one C-order array in (7a)–(7b) would turn every later one C.
    problem = HeterogeneousQuadratic(m=shape[0], n=shape[1], nodes=3, seed=0)
    config = Config(method="powersgd+", rank=1, restart_period=3, optimizer="msgd", momentum=0.9)
    run = prepare(
        problem, config, nodes=3, steps=7, replicas=5, seed=0, q_init=None, dtype="float64", x0=None,
        replica_ids=None, lr=0.01,
    )  # fmt: skip
    streams = NodeStreams(run.seed, run.replica_ids, np.arange(run.nodes))
    state = run_loop(run, 0.01, lambda x, t: checked_grads(problem, x, run, streams.at(t)))
    arrays = (state.error, state.compressor.q, state.compressor.basis)
    assert [_replica_fastest(a) for a in arrays] == [fastest] * 3


def test_psi_oracle_returns_the_engines_layout(monkeypatch):
    problem, replicas, nodes = Psi2x2(5.0), 50, 4
    x = np.broadcast_to(problem.x0, (replicas, 2, 2)).copy()
    streams = NodeStreams(0, np.arange(replicas), np.arange(nodes))
    grads = problem.stochastic_grads(x, nodes, streams.at(3))
    monkeypatch.setattr(NumpyOps, "node_layout", staticmethod(lambda a: a))
    plain = problem.stochastic_grads(x, nodes, streams.at(3))  # the same draws (a step's draws are consumed)
    assert _replica_fastest(grads) and not _replica_fastest(plain)  # control: without the hint, C order
    np.testing.assert_array_equal(grads, plain)


class _CountingPsi(Psi2x2):
    """ψ counting its ∇f evaluations."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.grad_calls = 0

    def grad(self, x):
        self.grad_calls += 1
        return super().grad(x)


class _CountingPsiWithoutGradKeyword(_CountingPsi):
    def stochastic_grads(self, x, nodes, rng):
        return super().stochastic_grads(x, nodes, rng)


@pytest.mark.parametrize(
    "problem_type, record, calls",
    [
        (_CountingPsi, None, "T + 1"),  # one per recorded X_t; the next oracle call reuses it
        (_CountingPsiWithoutGradKeyword, None, "2T + 1"),  # control: computed again
        (_CountingPsi, ("loss",), "T"),  # nothing recorded to reuse: the oracle's own
    ],
)
def test_engine_hands_the_recorded_gradient_to_the_oracle(problem_type, record, calls):
    steps, problem = 9, problem_type(5.0)
    options = dict(method="powersgd+", nodes=4, steps=steps, replicas=5, seed=1, lr=0.01, restart_period=3)
    trace = simsgd.simulate(problem, record=record, progress=False, **options)
    assert problem.grad_calls == {"T + 1": steps + 1, "2T + 1": 2 * steps + 1, "T": steps}[calls]
    reference = simsgd.simulate(Psi2x2(5.0), record=record, progress=False, **options)
    for a, b in zip(_trace_arrays(trace), _trace_arrays(reference)):
        np.testing.assert_array_equal(a, b)
