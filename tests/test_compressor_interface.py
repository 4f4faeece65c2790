"""The compressor interface: the baselines against independent references, both engines alike, the
registry, restart rules, and a backend whose ops have exactly the ArrayOps members."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import simsgd
from simsgd import backends, registry
from simsgd.baselines import QSGD, RandomK, SignSGD, TopK
from simsgd.compression import Compression, Compressor
from simsgd.ops import NUMPY, ArrayOps, NumpyOps
from simsgd.problems import HeterogeneousQuadratic, Psi2x2
from simsgd.restarts import ErrorGrowth, Geometric, Never, Periodic, is_restart

QUAD = HeterogeneousQuadratic(m=6, n=5, nodes=3, seed=1)
KW = dict(nodes=3, rank=2, steps=25, replicas=6, lr=0.01, seed=5)


class FixedDraws:
    """Draws from given arrays (what the references are handed too)."""

    def __init__(self, shared=None, local=None):
        self._shared, self._local = shared, local

    def shared(self, kind, shape, like):
        return self._shared

    def local(self, kind, shape, like):
        return self._local


# -- independent references, one entry at a time -------------------------------------------------


def ref_topk(v, k):
    flat = [(-abs(x), j, x) for j, x in enumerate(v.ravel())]
    keep = {j for _, j, _ in sorted(flat)[:k]}  # largest |x|, ties to the lower index
    return np.array([x if j in keep else 0.0 for j, x in enumerate(v.ravel())]).reshape(v.shape)


def ref_qsgd(v, u, s):
    norm = np.sqrt(sum(x * x for x in v.ravel()))
    out = []
    for x, r in zip(v.ravel(), u.ravel()):
        if norm == 0:
            out.append(0.0)
            continue
        level = s * abs(x) / norm
        low = np.floor(level)
        out.append(norm * np.sign(x) * (low + (1.0 if r < level - low else 0.0)) / s)
    return np.array(out).reshape(v.shape)


def ref_sign(v):
    return sum(abs(x) for x in v.ravel()) / v.size * np.sign(v)


def _deltas(seed=0, shape=(2, 3, 6, 5)):
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(shape)
    d[0, -1, 2, :] = 0.5  # ties, for the tie rule
    return d


@pytest.mark.parametrize("k", [1, 4, 30])
def test_topk_against_reference(k):
    d = _deltas()
    out, _ = TopK(k=k).compress((), d, 0, errors=None, ops=NUMPY, draws=None, want_local=True)
    ref = np.array([[ref_topk(d[r, i], k) for i in range(3)] for r in range(2)])
    np.testing.assert_array_equal(out.local_hat, ref)
    np.testing.assert_allclose(out.global_hat, ref.mean(1), rtol=1e-15)


def test_randomk_against_reference():
    d, keys = _deltas(), np.random.default_rng(9).random((2, 6, 5))
    out, _ = RandomK(k=7).compress((), d, 0, errors=None, ops=NUMPY, draws=FixedDraws(keys), want_local=True)
    for r, i in itertools.product(range(2), range(3)):
        mask = ref_topk(keys[r], 7) != 0  # the same 7 coordinates on every node
        np.testing.assert_array_equal(out.local_hat[r, i], np.where(mask, d[r, i], 0.0))
    assert (out.local_hat[:, 0] != 0).sum(axis=(-2, -1)).tolist() == [7, 7]


def test_qsgd_against_reference():
    d, u = _deltas(), np.random.default_rng(2).random((2, 3, 6, 5))
    out, _ = QSGD(levels=3).compress(
        (), d, 0, errors=None, ops=NUMPY, draws=FixedDraws(local=u), want_local=True
    )
    ref = np.array([[ref_qsgd(d[r, i], u[r, i], 3) for i in range(3)] for r in range(2)])
    np.testing.assert_allclose(out.local_hat, ref, rtol=1e-13, atol=1e-15)


def test_sign_against_reference():
    d = _deltas()
    out, _ = SignSGD().compress((), d, 0, errors=None, ops=NUMPY, draws=None, want_local=True)
    ref = np.array([[ref_sign(d[r, i]) for i in range(3)] for r in range(2)])
    np.testing.assert_allclose(out.local_hat, ref, rtol=1e-14)


@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
def test_topk_and_sign_contract(seed, k):
    d = np.random.default_rng(seed).standard_normal((1, 1, 6, 5))
    for compressor, bound in ((TopK(k=k), 1 - k / 30), (SignSGD(), None)):
        hat = compressor.compress((), d, 0, errors=None, ops=NUMPY, draws=None, want_local=True)[0].local_hat
        err, norm = np.sum((hat - d) ** 2), np.sum(d**2)
        if bound is None:  # scaled sign: ||C(v) − v||² = ||v||² − ||v||₁²/d exactly
            bound = 1 - np.sum(np.abs(d)) ** 2 / (30 * norm)
        assert err <= bound * norm * (1 + 1e-12)


def test_qsgd_is_unbiased_and_the_check_can_fail():
    d = _deltas(shape=(1, 1, 6, 5))
    u = np.random.default_rng(3).random((20000, 1, 6, 5))
    out, _ = QSGD(levels=2).compress((), np.broadcast_to(d, u.shape), 0, errors=None, ops=NUMPY,
                                     draws=FixedDraws(local=u), want_local=True)  # fmt: skip
    mean, se = out.local_hat.mean(0), out.local_hat.std(0) / np.sqrt(len(u))
    assert np.all(np.abs(mean - d[0]) <= 5 * se + 1e-12)
    biased = QSGD(levels=2).compress((), np.broadcast_to(d, u.shape), 0, errors=None, ops=NUMPY,
                                     draws=FixedDraws(local=np.ones_like(u)), want_local=True)[0]  # fmt: skip
    assert np.any(np.abs(biased.local_hat.mean(0) - d[0]) > 5 * se + 1e-12)  # never rounding up: biased


# -- both engines, registry, rules -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["topk", "randomk", "qsgd", "sign"])
def test_baselines_agree_across_engines(method):
    pytest.importorskip("torch")
    a = simsgd.simulate(QUAD, method=method, **KW)
    b = simsgd.simulate(QUAD, method=method, backend="torch", **KW)
    np.testing.assert_allclose(b.x, a.x, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(b.grad_norm_sq, a.grad_norm_sq, rtol=1e-12)
    np.testing.assert_array_equal(b.floats_sent, a.floats_sent)
    assert a.grad_norm_sq[:, -1].mean() < a.grad_norm_sq[:, 0].mean()  # it trains


def test_baselines_floats_follow_powersgds_budget():
    trace = {m: simsgd.simulate(QUAD, method=m, **KW).floats_sent[0] for m in ("powersgd", "topk", "randomk")}
    assert trace == {"powersgd": 22.0, "topk": 22.0, "randomk": 22.0}  # (m + n) r at r = 2
    assert simsgd.simulate(QUAD, method="qsgd", **KW).floats_sent[0] == 1 + 30 * 4 / 32
    assert simsgd.simulate(QUAD, method="sign", **KW).floats_sent[0] == 1 + 30 / 32


class HalfRank:
    """A user's compressor: PowerSGD's SSP from the package's kernel, sent at half the floats."""

    name, error_feedback, period = "half-rank", True, None

    def basis_shape(self, shape):
        return (shape[1], 1)

    def init(self, q0):
        return q0

    def restart_at(self, t):
        return False

    def floats(self, t, shape, restart):
        return (shape[0] + shape[1]) / 2

    def compress(self, state, deltas, t, *, errors, ops, draws, want_local):
        from simsgd.compressors import ssp_step

        out = ssp_step(state, deltas, want_local=want_local, ops=ops)
        return Compression(out.global_hat, out.local_hat), out.q


def test_a_registered_compressor_runs_in_both_engines():
    assert isinstance(HalfRank(), Compressor)
    registry.register("half-rank", lambda options: HalfRank())
    try:
        a = simsgd.simulate(QUAD, method="half-rank", **KW)
        assert a.config["method"] == "half-rank" and a.floats_sent[0] == 5.5
        if pytest.importorskip("torch"):
            b = simsgd.simulate(QUAD, method="half-rank", backend="torch", **KW)
            np.testing.assert_allclose(b.x, a.x, rtol=1e-10, atol=1e-12)
        with pytest.raises(ValueError, match="already registered"):
            registry.register("half-rank", lambda options: HalfRank())
    finally:
        registry.unregister("half-rank")
    with pytest.raises(ValueError, match="method must be one of"):
        simsgd.simulate(QUAD, method="half-rank", **KW)
    with pytest.raises(ValueError, match="built-in"):
        registry.register("topk", lambda options: HalfRank())
    np.testing.assert_array_equal(simsgd.simulate(QUAD, method=HalfRank(), **KW).x, a.x)  # or the object


def test_an_object_without_the_members_is_refused():
    class NoFloats:
        name, error_feedback, period = "no-floats", True, None
        basis_shape, init, restart_at, compress = (HalfRank.basis_shape, HalfRank.init, HalfRank.restart_at,
                                                   HalfRank.compress)  # fmt: skip

    with pytest.raises(ValueError, match=r"lacks \['floats'\]"):
        simsgd.simulate(QUAD, method=NoFloats(), **KW)
    assert registry.names()[: len(registry.BUILT_IN)] == registry.BUILT_IN
    assert set(registry.BUILT_IN) == set(simsgd.options.METHODS)


def test_restart_rules():
    assert [Periodic(3).at(t) for t in range(7)] == [is_restart(t, 3) for t in range(7)]
    assert [t for t in range(200) if Geometric(10, 2.0).at(t)] == [0, 10, 20, 40, 80, 160]
    assert not any(Never().at(t) for t in range(50))
    with pytest.raises(ValueError, match="growth"):
        Geometric(10, 1.0)
    with pytest.raises(ValueError, match="restart_period"):
        simsgd.simulate(QUAD, restart_period=0, **KW)
    trace = simsgd.simulate(QUAD, restart_period=Geometric(4, 3.0), **KW)
    assert np.flatnonzero(trace.restart_steps).tolist() == [0, 4, 12]


def test_a_state_dependent_rule_decides_per_replica():
    # ψ locked at t = 0: the error memory piles up the untransmitted signal; ErrorGrowth restarts
    # where it outgrows the gradients, replica by replica, and the floats are the replicas' mean.
    problem = Psi2x2(5.0, basis="aligned", lock_start=True)
    trace = simsgd.simulate(
        problem, restart_period=ErrorGrowth(50.0), nodes=4, steps=60, replicas=16, lr=5e-4
    )
    restarted = ~np.isnan(trace.restart_residual)
    assert trace.restart_steps[0] and restarted[:, 0].all()
    later = restarted[:, 1:]
    assert later.any() and not later.all(axis=0).all()  # some steps restart only some replicas
    ssp, restart = (2 + 2) * 1 + 2, 2 * 2 + 2 * 1 + 2  # (m + n)r and mn + nr, each + the rule's 2 floats
    expected = ssp + later.mean(axis=0) * (restart - ssp)
    np.testing.assert_allclose(trace.floats_sent[trace.restart_steps][1:], expected, rtol=1e-12)
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="periodic"):
        simsgd.simulate(
            problem, restart_period=ErrorGrowth(), steps=30, replicas=4, backend="torch", compile=True
        )


# -- a backend whose ops have exactly the protocol's members ----------------------------------------


def _exact_protocol_ops():
    members = [n for n in vars(ArrayOps) if not n.startswith("_")] + ["name"]
    namespace = {n: staticmethod(getattr(NumpyOps, n)) for n in members if n != "name"}
    namespace["name"] = "exactly-the-protocol"
    return type("ExactOps", (), namespace)()


def test_ops_with_exactly_the_protocol_run_simulate():
    ops = _exact_protocol_ops()
    assert isinstance(ops, ArrayOps)
    assert not hasattr(ops, "svd_") and set(n for n in dir(ops) if not n.startswith("_")) == set(
        n for n in vars(ArrayOps) if not n.startswith("_")
    ) | {"name"}
    base = backends.get("numpy")
    backends.register("exact", lambda: base._replace(name="exact", ops=lambda device: ops))
    try:
        for method in ("powersgd+", "galore", "topk", "qsgd"):
            a = simsgd.simulate(QUAD, method=method, **KW)
            b = simsgd.simulate(QUAD, method=method, backend="exact", **KW)
            np.testing.assert_array_equal(b.x, a.x)
    finally:
        backends._LOADERS.pop("exact")


def test_the_restart_option_names_the_restart_kinds():
    from simsgd.compressors import RESTART_KINDS

    assert set(simsgd.options.RESTARTS) == set(RESTART_KINDS)  # the Literal type and the table agree
