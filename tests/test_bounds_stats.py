"""simsgd.stats additions used by bounds/: paired ratio bounds and local slopes."""

from __future__ import annotations

import numpy as np
import pytest

from simsgd.stats import local_slopes, ratio_bounds


def test_local_slopes_read_a_power_law_and_a_bend():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert local_slopes(x, 3 * x**2) == pytest.approx([2.0, 2.0, 2.0])
    bent = local_slopes(x, x**2 / (1 + x**2))  # saturates: slopes fall towards 0
    assert bent[0] > bent[1] > bent[2] > 0
    assert np.isnan(local_slopes([1.0, 2.0], [1.0, 0.0])[0])
    with pytest.raises(ValueError, match="distinct positive"):
        local_slopes([1.0, 1.0], [1.0, 2.0])


def test_ratio_bounds_cover_and_pairing_narrows():
    rng = np.random.default_rng(0)
    z = rng.exponential(1.0, 400) + 1.0
    y = 1.1 * z + 0.01 * rng.standard_normal(400)  # strongly paired: ratio ≈ 1.1, tight
    paired = ratio_bounds(y, z)
    assert paired.lower < 1.1 < paired.upper and paired.upper - paired.lower < 0.01
    unpaired = ratio_bounds(y, rng.permutation(z))
    assert unpaired.upper - unpaired.lower > 10 * (paired.upper - paired.lower)
    assert ratio_bounds(y, z, seed=3) == ratio_bounds(y, z, seed=3)  # seeded


def test_ratio_bounds_reject_bad_input():
    with pytest.raises(ValueError, match="pair up"):
        ratio_bounds(np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match="positive mean"):
        ratio_bounds(np.ones(5), -np.ones(5))
