"""The replicas-innermost engine (backend="lanes"): the NumPy engine's numbers, one graph per restart
decision, the checks of the eager engines.

The traced-step tests run the graph ``make_fx`` records without inductor (fast); one slow test
compiles it (tens of seconds to minutes on a busy 2-core machine).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import simsgd  # noqa: E402
from simsgd import fused  # noqa: E402
from simsgd.distributed.matching import trace_diff  # noqa: E402
from simsgd.lanes import LANES, Lanes, LanesOps, LanesStreams  # noqa: E402
from simsgd.ops import NUMPY, ArrayOps  # noqa: E402
from simsgd.orthogonalize import orthogonalize_checked  # noqa: E402
from simsgd.problems import HeterogeneousQuadratic, Psi2x2  # noqa: E402
from simsgd.restarts import ErrorGrowth  # noqa: E402
from simsgd.streams import NodeStreams  # noqa: E402

ALIGNED = Psi2x2(5.0, basis="aligned")
KW = dict(nodes=4, steps=23, replicas=16, lr=0.005, seed=2, restart_period=5)


def _exact(a, b):
    return max(trace_diff(b, a).values()) == 0.0


def _lanes(a):
    return LANES.from_numpy(a)


def _replicas_fastest(a):
    return np.asfortranarray(a)


# --- the array and its ops ------------------------------------------------------------------


def test_lanes_ops_is_an_array_ops(interface_mismatches):
    assert isinstance(LANES, ArrayOps) and interface_mismatches(LanesOps, ArrayOps) == []


def test_lanes_hold_one_length_r_tensor_per_entry():
    x = _lanes(np.arange(24.0).reshape(3, 2, 4))
    assert x.shape == (3, 2, 4) and x.entries.shape == (2, 4)
    assert all(e.shape == (3,) and e.is_contiguous() for e in x.entries.flat)
    np.testing.assert_array_equal(
        LANES.asnumpy(x[..., 1:2, :].mT), np.arange(24.0).reshape(3, 2, 4)[:, 1, :, None]
    )
    with pytest.raises(IndexError, match="replica axis"):
        x[0]


@pytest.mark.parametrize("shape", [(4, 2, 2), (3, 2, 3), (2, 4, 1)])
def test_reductions_and_products_are_numpy_ops_bit_for_bit(shape):
    rng = np.random.default_rng(0)
    d = _replicas_fastest(
        rng.standard_normal((500, *shape)) * np.exp(rng.standard_normal((500, 1, 1, 1)) * 20)
    )
    q = _replicas_fastest(rng.standard_normal((500, shape[-1], 1)))
    dl, ql = _lanes(d), _lanes(q)
    pairs = [
        (NUMPY.node_mean(d), LANES.node_mean(dl)),
        (NUMPY.matmul(d, q[:, None]), LANES.matmul(dl, ql[..., None, :, :])),
        (NUMPY.sqnorm(d), LANES.sqnorm(dl)),
        (NUMPY.maxabs(d), LANES.maxabs(dl)),
        (NUMPY.col_sum(d), LANES.col_sum(dl)),
        (NUMPY.amin_last(d), LANES.amin_last(dl)),
    ]
    for expected, got in pairs:
        np.testing.assert_array_equal(LANES.asnumpy(got), expected)


def test_sqnorm_order_is_visible():
    # Negative control: summing the four squares in sequence differs from NumPy's einsum order.
    x = np.random.default_rng(0).standard_normal((20000, 2, 2)) * 1e3
    f = (x * x).reshape(-1, 4)
    sequential = ((f[:, 0] + f[:, 1]) + f[:, 2]) + f[:, 3]
    assert (sequential != NUMPY.sqnorm(x)).any()
    np.testing.assert_array_equal(LANES.asnumpy(LANES.sqnorm(_lanes(x))), NUMPY.sqnorm(x))


@pytest.mark.parametrize("m", [1, 2, 3])
def test_rank_one_qr_is_numpy_ops(m):
    p = np.random.default_rng(1).standard_normal((300, m, 1))
    p[:5] = 0.0  # a zero column: LAPACK's Q = e₁
    p[5:10, 1:] = 0.0  # no tail: Q = e₁ too
    a = orthogonalize_checked(p, method="householder", ops=NUMPY)
    b = orthogonalize_checked(_lanes(p), method="householder", ops=LanesOps())
    np.testing.assert_array_equal(LANES.asnumpy(b.basis), a.basis)
    np.testing.assert_array_equal(LANES.asnumpy(b.degenerate), a.degenerate)
    # "lapack": LAPACK's geqrf/orgqr in NumPy, the closed form here: to rounding
    a = orthogonalize_checked(p, method="lapack", ops=NUMPY)
    b = orthogonalize_checked(_lanes(p), method="lapack", ops=LanesOps())
    np.testing.assert_allclose(LANES.asnumpy(b.basis), a.basis, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_restart_svd_is_numpy_ops(n):
    d = np.random.default_rng(2).standard_normal((300, 2, n))
    d[:4] = 0.0
    d[:4, 0] = 3.0  # rank one, exactly
    for rank in range(1, min(2, n) + 1):
        got = LANES.asnumpy(LANES.top_left_singular_vectors(_lanes(d), rank))
        np.testing.assert_array_equal(got, NUMPY.top_left_singular_vectors(d, rank))


def test_streams_draw_the_numpy_bits():
    ids, nodes = np.array([0, 5, 2**40, 2**62]), np.arange(3)
    a, b = NodeStreams(3, ids, nodes).at(7), LanesStreams(3, ids, nodes).at(torch.tensor(7))
    np.testing.assert_array_equal(LANES.asnumpy(b.uniform((2, 3))), a.uniform((2, 3)))
    np.testing.assert_array_equal(LANES.asnumpy(b.rademacher()), a.rademacher())
    np.testing.assert_allclose(LANES.asnumpy(b.normal((2,))), a.normal((2,)), rtol=1e-14, atol=1e-14)
    other = LanesStreams(4, ids, nodes).at(7)  # negative control: another seed
    assert not np.array_equal(LANES.asnumpy(other.uniform((2, 3))), a.uniform((2, 3)))


def test_a_larger_matrix_is_refused():
    with pytest.raises(ValueError, match="at most 16 entries"):
        simsgd.simulate(HeterogeneousQuadratic(m=5, n=4, nodes=3, seed=1), nodes=3, steps=2, backend="lanes")


# --- eager: the NumPy engine's trajectories --------------------------------------------------

CASES = [
    dict(method="powersgd+", optimizer="msgd"),
    dict(method="powersgd", optimizer="sgd"),
    dict(method="full", optimizer="adam"),
    dict(method="galore", optimizer="msgd"),
    dict(method="powersgd+", optimizer="adamw", weight_decay=0.1),
    dict(method="powersgd+", dtype="float32"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_eager_aligned_psi_is_numpy_bit_for_bit(case):
    a = simsgd.simulate(ALIGNED, **KW, **case)
    b = simsgd.simulate(ALIGNED, backend="lanes", **KW, **case)
    assert _exact(a, b), trace_diff(b, a)
    assert not _exact(a, simsgd.simulate(ALIGNED, backend="lanes", **{**KW, "seed": 3}, **case))  # control


def test_eager_quadratic_2x3_agrees_to_rounding():
    problem = HeterogeneousQuadratic(m=2, n=3, nodes=3, seed=1)
    a = simsgd.simulate(problem, **dict(KW, nodes=3))
    b = simsgd.simulate(problem, backend="lanes", **dict(KW, nodes=3))
    assert max(trace_diff(b, a).values()) <= 1e-10


# --- the traced step (make_fx's graph, run by torch without inductor) ------------------------


@pytest.fixture
def traced(monkeypatch):
    """The fused engine with its graphs traced but not compiled; counts the graphs traced."""
    made = []
    monkeypatch.setattr(fused, "_inductor", lambda graph, device: made.append(graph) or graph)
    monkeypatch.setattr(fused, "_GRAPHS", {})
    return made


def test_traced_step_is_numpy_bit_for_bit(traced):
    for case in (dict(method="powersgd+"), dict(method="full", optimizer="adamw", weight_decay=0.1)):
        a = simsgd.simulate(ALIGNED, **KW, **case)
        b = simsgd.simulate(ALIGNED, backend="lanes", compile=True, **KW, **case)
        assert _exact(a, b), trace_diff(b, a)
        np.testing.assert_array_equal(b.restart_residual, a.restart_residual)
    part = simsgd.simulate(ALIGNED, backend="lanes", compile=True, record=("loss",), **KW)
    np.testing.assert_array_equal(part.loss, simsgd.simulate(ALIGNED, **KW).loss)
    assert part.grad_norm_sq is None


def test_one_graph_per_restart_decision_whatever_r_t_seed_and_lr(traced):
    simsgd.simulate(Psi2x2(5.0, basis="aligned"), backend="lanes", compile=True, **KW)
    assert len(traced) == 2  # a restart step and an SSP step
    for other in (dict(replicas=5), dict(steps=41), dict(seed=7), dict(lr=lambda t: 0.01 / (1 + t))):
        problem = Psi2x2(5.0, basis="aligned")  # a fresh object, equal: the same graphs
        b = simsgd.simulate(problem, backend="lanes", compile=True, **{**KW, **other})
        assert _exact(b, simsgd.simulate(problem, **{**KW, **other}))
    assert len(traced) == 2
    # controls: other recorded fields, another problem
    simsgd.simulate(Psi2x2(5.0, basis="aligned"), backend="lanes", compile=True, record=("loss",), **KW)
    assert len(traced) == 4
    simsgd.simulate(Psi2x2(4.0, basis="aligned"), backend="lanes", compile=True, **KW)
    assert len(traced) == 6


def test_randomized_restart_draws_in_the_graph(traced):
    # The sketch comes from the lanes streams in the graph: the NumPy engine's normals to rounding.
    kw = dict(KW, method="powersgd+", restart="randomized", restart_oversampling=0)
    a, b = (
        simsgd.simulate(Psi2x2(5.0), **kw),
        simsgd.simulate(Psi2x2(5.0), backend="lanes", compile=True, **kw),
    )
    assert max(trace_diff(b, a).values()) <= 1e-10


class _NanOracle:
    """ψ's oracle with a NaN at replica 3, node 1, step 12."""

    shape, x0 = (2, 2), np.eye(2)

    def loss(self, x):
        return ALIGNED.loss(x)

    def grad(self, x):
        return ALIGNED.grad(x)

    def stochastic_grads(self, x, nodes, rng):
        g = ALIGNED.stochastic_grads(x, nodes, rng)
        entry = g.entries[1, 0, 0]
        bad = (torch.arange(entry.shape[0]) == 3) & (torch.as_tensor(rng.step) == 12)
        g[..., 1, 0, 0] = Lanes.of(torch.where(bad, torch.nan, entry))
        return g


def _diverged(**kw):
    with pytest.raises(FloatingPointError) as info:
        simsgd.simulate(**kw)
    return str(info.value)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_traced_step_checks_finiteness(traced):
    kw = dict(nodes=2, steps=25, replicas=5, lr=0.1, restart_period=5, backend="lanes", compile=True)
    assert "stochastic gradient at step t=12 in 1 replica(s): 3" in _diverged(problem=_NanOracle(), **kw)
    kw.update(nodes=4, lr=1e306)
    assert "iterate X_{t+1}" in (
        numpy := _diverged(problem=ALIGNED, **{**kw, "backend": "numpy", "compile": False})
    )
    assert _diverged(problem=ALIGNED, **kw) == numpy


def test_refused_options():
    kw = dict(steps=5, replicas=3, backend="lanes", compile=True)
    with pytest.raises(ValueError, match="restarts decided by t"):
        simsgd.simulate(ALIGNED, restart_period=ErrorGrowth(), **kw)
    with pytest.raises(ValueError, match="degenerate_qr='raise'"):
        simsgd.simulate(ALIGNED, degenerate_qr="raise", **kw)


@pytest.mark.slow
def test_compiled_step_is_numpy_bit_for_bit(monkeypatch):
    # Inductor's C++ (std::sqrt, IEEE arithmetic): the NumPy engine's numbers, for another R and T too,
    # with no second compile.
    compiles = []
    real = fused._inductor
    monkeypatch.setattr(fused, "_inductor", lambda *a: compiles.append(1) or real(*a))
    for kw in (KW, dict(KW, replicas=300, steps=37, seed=5)):
        a = simsgd.simulate(ALIGNED, **kw)
        b = simsgd.simulate(ALIGNED, backend="lanes", compile=True, **kw)
        assert _exact(a, b), trace_diff(b, a)
    assert len(compiles) == 2
