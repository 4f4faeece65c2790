"""The backend registry and the refusals that go with it: one clear line, before any step."""

import numpy as np
import pytest

import simsgd
from simsgd import backends
from simsgd.problems import Psi2x2


class NumpyOnly:
    """An oracle written with NumPy calls only (np.clip on a tensor has no .astype path)."""

    def __init__(self):
        self._psi = Psi2x2(5.0)
        self.shape, self.x0 = self._psi.shape, self._psi.x0

    def loss(self, x):
        return self._psi.loss(x)

    def grad(self, x):
        return self._psi.grad(x)

    def stochastic_grads(self, x, nodes, rng):
        noise = rng.rademacher()[..., None, None]
        return np.asarray(x)[:, None].astype(np.float64) * 0 + noise  # NumPy-only: .astype


def test_a_numpy_oracle_on_the_torch_backend_is_refused_in_one_line():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="array_ops") as err:
        simsgd.simulate(NumpyOnly(), backend="torch", steps=3, replicas=2)
    assert "\n" not in str(err.value)
    trace = simsgd.simulate(NumpyOnly(), steps=3, replicas=2)  # the control: NumPy runs it
    assert trace.x.shape == (2, 2, 2)


def test_registry_names_and_refusals():
    assert backends.names()[:2] == ("numpy", "torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        simsgd.simulate(Psi2x2(5.0), backend="jax", steps=2, replicas=2)
    with pytest.raises(ValueError, match="taken"):
        backends.register("numpy", lambda: backends.get("numpy"))
    with pytest.raises(ValueError, match="compiled loop"):
        simsgd.simulate(Psi2x2(5.0), compile=True, steps=2, replicas=2)
    with pytest.raises(ValueError, match="device"):
        simsgd.simulate(Psi2x2(5.0), device="cuda", backend="numpy", steps=2, replicas=2)
