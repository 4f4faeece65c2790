"""Algorithm 1 against hand-computed cases and its defining identities."""

import numpy as np
import pytest

import simsgd
from simsgd.orthogonalize import DegenerateQRError, orthogonalize

# Two nodes, 2×2: Δ1 = [[1, 2], [3, 4]], Δ2 = [[0, 1], [1, 0]], Q_{-1} = (1, 0)ᵀ.
DELTAS = np.array([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]])
Q0 = np.array([[1.0], [0.0]])


def test_ssp_hand_computed_2x2_two_nodes():
    # P = mean(Δ_i Q) = ((1+0)/2, (3+1)/2) = (1/2, 2) ∝ (1, 4): P̃ = ±(1, 4)/√17.
    # Q = mean(Δ_iᵀ) P̃ = ±(1/2·1 + 2·4, 3/2·1 + 2·4)/√17 = ±(8.5, 9.5)/√17.
    q, local_hat, global_hat = simsgd.ssp_compress(Q0, DELTAS)
    p_tilde = np.array([1.0, 4.0]) / np.sqrt(17.0)
    expected_q = np.array([8.5, 9.5]) / np.sqrt(17.0)
    sign = np.sign(q[0, 0])
    np.testing.assert_allclose(q[:, 0], sign * expected_q, rtol=1e-14)
    np.testing.assert_allclose(global_hat, np.outer([1.0, 4.0], [8.5, 9.5]) / 17.0, rtol=1e-14)
    # Δ̂^{(i)} = P̃ P̃ᵀ Δ^{(i)} (the local compression shares P̃).
    proj = np.outer(p_tilde, p_tilde)
    np.testing.assert_allclose(local_hat, proj @ DELTAS, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(local_hat.mean(0), global_hat, rtol=1e-14)


def test_svd_full_rank_reproduces_the_average():
    q, local_hat, global_hat = simsgd.svd_compress(DELTAS, rank=2)
    np.testing.assert_allclose(global_hat, DELTAS.mean(0), atol=1e-14)
    np.testing.assert_allclose(local_hat, DELTAS, atol=1e-14)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
@pytest.mark.parametrize("rank", [1, 2])
def test_svd_is_the_optimal_rank_r_approximation(shape, rank):
    rng = np.random.default_rng(1)
    deltas = rng.standard_normal((7, 3) + shape)  # 7 replicas, 3 nodes
    _, _, global_hat = simsgd.svd_compress(deltas, rank)
    u, s, vt = np.linalg.svd(deltas.mean(1))
    best = (u[..., :rank] * s[..., None, :rank]) @ vt[..., :rank, :]
    np.testing.assert_allclose(global_hat, best, atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6)])
def test_ssp_batched_equals_one_by_one(shape):
    rng = np.random.default_rng(2)
    deltas = rng.standard_normal((5, 3) + shape)
    q = rng.standard_normal((5, shape[1], 2))
    batched = simsgd.ssp_compress(q, deltas)
    for k in range(5):
        single = simsgd.ssp_compress(q[k], deltas[k])
        for a, b in zip(batched, single):
            np.testing.assert_allclose(a[k], b, rtol=1e-12, atol=1e-14)


def test_gram_schmidt_matches_householder_subspace():
    rng = np.random.default_rng(3)
    p = rng.standard_normal((10, 6, 3))
    hh, _ = orthogonalize(p, method="householder")
    gs, _ = orthogonalize(p, method="gram-schmidt")
    np.testing.assert_allclose(hh @ hh.mT, gs @ gs.mT, atol=1e-12)
    np.testing.assert_allclose(gs.mT @ gs, np.broadcast_to(np.eye(3), (10, 3, 3)), atol=1e-12)


class TestDegenerateConventions:
    zero = np.zeros((2, 2, 1))
    previous = np.array([[[0.6], [0.8]], [[1.0], [0.0]]])

    def test_detected(self):
        _, degenerate = orthogonalize(self.zero, degenerate_qr="native")
        assert degenerate.tolist() == [True, True]
        _, degenerate = orthogonalize(np.ones((1, 2, 1)), degenerate_qr="native")
        assert degenerate.tolist() == [False]

    def test_native_householder_gives_a_unit_vector(self):
        p_tilde, _ = orthogonalize(self.zero, degenerate_qr="native")
        np.testing.assert_allclose(np.abs(p_tilde[..., 0]), [[1.0, 0.0], [1.0, 0.0]])

    def test_native_gram_schmidt_follows_pytorch(self):
        with_eps, _ = orthogonalize(self.zero, method="gram-schmidt", epsilon=1e-8, degenerate_qr="native")
        assert np.all(with_eps == 0)
        without, _ = orthogonalize(self.zero, method="gram-schmidt", epsilon=0.0, degenerate_qr="native")
        assert np.all(np.isnan(without))

    def test_previous_keeps_the_old_basis(self):
        p = np.concatenate([self.zero[:1], np.array([[[3.0], [4.0]]])])
        p_tilde, degenerate = orthogonalize(p, previous=self.previous, degenerate_qr="previous")
        assert degenerate.tolist() == [True, False]
        np.testing.assert_array_equal(p_tilde[0], self.previous[0])
        np.testing.assert_allclose(np.abs(p_tilde[1]), [[0.6], [0.8]])

    def test_zero_and_raise(self):
        p_tilde, _ = orthogonalize(self.zero, degenerate_qr="zero")
        assert np.all(p_tilde == 0)
        with pytest.raises(DegenerateQRError, match="rank-deficient"):
            orthogonalize(self.zero, degenerate_qr="raise")

    def test_rank_deficient_but_nonzero(self):
        p = np.array([[[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]]])  # rank 1 < r = 2
        _, degenerate = orthogonalize(p, degenerate_qr="native")
        assert degenerate.tolist() == [True]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: simsgd.svd_compress(DELTAS, 3), "rank"),
        (lambda: simsgd.svd_compress(DELTAS, 0), "rank"),
        (lambda: simsgd.svd_compress(DELTAS[0], 1), "deltas"),
        (lambda: simsgd.ssp_compress(np.ones((3, 1)), DELTAS), "q must have shape"),
        (lambda: simsgd.ssp_compress(np.ones((2, 3)), DELTAS), "q must have shape"),
        (lambda: simsgd.ssp_compress(Q0, np.where(DELTAS == 4.0, np.nan, DELTAS)), "deltas must be finite"),
        (lambda: simsgd.ssp_compress(Q0 * np.inf, DELTAS), "q must be finite"),
        (lambda: simsgd.svd_compress(DELTAS * np.inf, 1), "deltas must be finite"),
        (lambda: simsgd.svd_compress(DELTAS.astype(np.float16), 1), "float32.? or .?float64"),
        (lambda: simsgd.svd_compress(DELTAS.astype(np.int64), 1), "float32.? or .?float64"),
        (lambda: simsgd.svd_compress(np.zeros((0, 2, 2)), 1), "N ≥ 1"),
        (lambda: simsgd.ssp_compress(Q0, np.zeros((0, 2, 2))), "N ≥ 1"),
        (lambda: simsgd.ssp_compress(Q0, DELTAS, orthogonalization="qr"), "orthogonalization"),
        (
            lambda: simsgd.ssp_compress(Q0, DELTAS, orthogonalization_epsilon=np.inf),
            "orthogonalization_epsilon",
        ),
        (lambda: simsgd.ssp_compress(Q0, DELTAS, bogus=1), "unknown options"),
    ],
)
def test_compressor_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
