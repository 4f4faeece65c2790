"""Counter-based random streams: every draw is a pure function of its coordinates.

A draw is addressed by ``(seed, replica, step, node, draw, element)``. Because no
generator state is shared between replicas or nodes, replica ``k`` produces the same
numbers whether it runs alone or inside a batch of 10⁵, and node ``i`` of a
``torch.distributed`` run draws exactly what node ``i`` of the simulation draws.

The mixing function is SplitMix64's finaliser (Steele, Lea & Flood 2014), applied
to a key built by chaining the coordinates; it passes BigCrush as a counter-based
generator and is vectorised here with NumPy's wrapping ``uint64`` arithmetic.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NodeStreams", "StepDraws", "initial_q"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TO_UNIT = 1.0 / float(1 << 53)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _key(base: np.ndarray, *coordinates: int | np.ndarray) -> np.ndarray:
    for c in coordinates:
        base = _mix(base + _GOLDEN * np.asarray(c, dtype=np.uint64))
    return base


class NodeStreams:
    """The random streams of a set of replicas and nodes.

    Parameters
    ----------
    seed : int
        Non-negative run seed.
    replica_ids : array_like of int, shape (R,)
        Global indices of the replicas held here.
    node_ids : array_like of int, shape (N_local,)
        Global indices of the nodes held here (all ``N`` in the simulation, one
        node per process in the torch backend).
    """

    def __init__(self, seed: int, replica_ids, node_ids):
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        with np.errstate(over="ignore"):
            self._replica_keys = _key(np.uint64(int(seed)), np.asarray(replica_ids, dtype=np.uint64))
        self.replica_ids = np.asarray(replica_ids, dtype=np.int64)
        self.node_ids = np.asarray(node_ids, dtype=np.int64)

    def at(self, step: int) -> StepDraws:
        """Draws for step ``step`` (``step = -1`` is used for initialisation)."""
        return StepDraws(self, step)


class StepDraws:
    """Random draws of one step; each call uses a fresh draw index.

    Every method takes the per-node trailing ``shape`` and returns an array of
    shape ``(R, N_local, *shape)``.
    """

    def __init__(self, streams: NodeStreams, step: int):
        self.step = step
        self.node_ids = streams.node_ids
        with np.errstate(over="ignore"):
            # step + 1 keeps the initialisation draws (step -1) in range of uint64.
            self._base = _key(streams._replica_keys, step + 1)
        self._draw = 0

    def _bits(self, shape) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        size = int(np.prod(shape, dtype=np.int64))
        self._draw += 1
        with np.errstate(over="ignore"):
            per_node = _key(self._base[:, None], self.node_ids[None, :], self._draw)
            elements = np.arange(size, dtype=np.uint64)
            bits = _mix(per_node[:, :, None] + _GOLDEN * (elements + np.uint64(1)))
        return bits.reshape(per_node.shape + shape)

    def uniform(self, shape=()) -> np.ndarray:
        """Uniform on [0, 1) with 53 random bits, float64."""
        return (self._bits(shape) >> _S11).astype(np.float64) * _TO_UNIT

    def rademacher(self, shape=()) -> np.ndarray:
        """Independent signs ±1 with probability 1/2 each, float64."""
        return 1.0 - 2.0 * (self._bits(shape) >> np.uint64(63)).astype(np.float64)

    def normal(self, shape=()) -> np.ndarray:
        """Standard normal (Box–Muller on two independent uniforms), float64."""
        u1 = 1.0 - self.uniform(shape)  # in (0, 1], so log is finite
        u2 = self.uniform(shape)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def initial_q(seed: int, replica_ids, n: int, rank: int) -> np.ndarray:
    """Default Q_{-1}: standard normal (R, n, rank), the same on every node.

    Drawn from node 0's stream at step −1, which no oracle call uses.
    """
    return NodeStreams(seed, replica_ids, [0]).at(-1).normal((n, rank))[:, 0]
