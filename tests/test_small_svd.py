"""The closed-form left singular vectors of 2×n matrices (PowerSGD+'s restart in every engine)."""

import numpy as np
import pytest

from simsgd.ops import NUMPY
from simsgd.small_svd import top_left_singular_vectors_2xn


def _matrices(n, count=2000, seed=0):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-150, 150, (count, 1, 1))
    return rng.standard_normal((count, 2, n)) * scale


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_top_vectors_match_lapack(n):
    d = _matrices(n)
    u = top_left_singular_vectors_2xn(d, min(2, n), NUMPY)
    ref, s, _ = np.linalg.svd(d)
    # the top vector to rounding (a sign apart), where the singular values are apart
    gap = (s[:, 0] - (s[:, 1] if n > 1 else 0)) / s[:, 0] > 1e-3
    cos = np.abs(np.einsum("ri,ri->r", u[:, :, 0], ref[:, :, 0]))
    assert np.all(np.abs(cos[gap] - 1) <= 1e-12)
    k = u.shape[-1]  # orthonormal columns
    np.testing.assert_allclose(
        np.swapaxes(u, -1, -2) @ u, np.broadcast_to(np.eye(k), (len(d), k, k)), atol=1e-15
    )


def test_exact_where_it_should_be():
    d = np.zeros((4, 2, 3))
    d[0, 0, 0], d[1, 1, 2], d[2] = 3.0, -2.0, np.array([[1.0, 0, 0], [0, 5.0, 0]])
    u = top_left_singular_vectors_2xn(d, 2, NUMPY)
    np.testing.assert_array_equal(u[0], np.eye(2))  # diagonal: exact
    np.testing.assert_array_equal(np.abs(u[1]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(np.abs(u[2]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(u[3], np.eye(2))  # D = 0: e₁ by convention


def test_the_numpy_engine_restarts_in_closed_form_for_two_rows_only():
    d2, d3 = _matrices(3, 50), np.random.default_rng(1).standard_normal((50, 3, 3))
    np.testing.assert_array_equal(
        NUMPY.top_left_singular_vectors(d2, 1), top_left_singular_vectors_2xn(d2, 1, NUMPY)
    )
    np.testing.assert_array_equal(NUMPY.top_left_singular_vectors(d3, 2), np.linalg.svd(d3)[0][..., :2])
    # Negative control: LAPACK's vectors differ from the closed form in the last bits (this is
    # why committed PowerSGD+ results move with the closed form).
    lapack = np.linalg.svd(d2)[0][..., :1] * np.sign(np.linalg.svd(d2)[0][..., :1, :1])
    closed = top_left_singular_vectors_2xn(d2, 1, NUMPY)
    closed = closed * np.sign(closed[..., :1, :1])
    assert not np.array_equal(lapack, closed) and np.allclose(lapack, closed, rtol=0, atol=1e-14)
