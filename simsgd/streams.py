"""Counter-based random streams: every draw is a pure function of its coordinates.

A draw is addressed by ``(seed, replica, step, node, draw, element)``. Because no
generator state is shared between replicas or nodes, replica ``k`` produces the same
numbers whether it runs alone or inside a batch of 10⁵, and node ``i`` of a
``torch.distributed`` run draws exactly what node ``i`` of the simulation draws.

The mixing function is SplitMix64's finaliser (Steele, Lea & Flood 2014), applied
to a key built by chaining the coordinates; it passes BigCrush as a counter-based
generator and is vectorised here with NumPy's wrapping ``uint64`` arithmetic, and on
torch ``int64`` tensors (:class:`TorchNodeStreams`: the same bits, two's-complement wrapping,
logical shifts by masking), so the torch engine draws exactly what the NumPy engine draws.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NodeStreams", "StepDraws", "TorchNodeStreams", "TorchStepDraws", "initial_q"]

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


# The same constants as signed int64 (torch has no general uint64 arithmetic).
_GOLDEN_I, _M1_I, _M2_I = (int(np.array(c).view(np.int64)) for c in (_GOLDEN, _M1, _M2))


def _shr(z, s: int):
    """Logical right shift of an int64 tensor (torch's ``>>`` is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix_torch(z):
    """:func:`_mix` on int64 tensors: the same 64 bits, read as two's complement."""
    z = (z ^ _shr(z, 30)) * _M1_I
    z = (z ^ _shr(z, 27)) * _M2_I
    return z ^ _shr(z, 31)


def _signed(v: int) -> int:
    """A Python int as the int64 with the same low 64 bits."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _key_torch(base, *coordinates):
    for c in coordinates:  # a Python int is wrapped here, a tensor wraps by itself
        base = _mix_torch(base + (_signed(_GOLDEN_I * c) if isinstance(c, int) else _GOLDEN_I * c))
    return base


class TorchNodeStreams:
    """:class:`NodeStreams` on torch tensors: the same draws, as tensors on ``device``.

    Parameters
    ----------
    seed, replica_ids, node_ids
        As :class:`NodeStreams`.
    device : str or torch.device
    """

    def __init__(self, seed: int, replica_ids, node_ids, device="cpu"):
        import torch

        keys = NodeStreams(seed, replica_ids, node_ids)._replica_keys  # one home for the seeding
        self._replica_keys = torch.from_numpy(keys.view(np.int64).copy()).to(device)
        # The ids stay NumPy (oracles index their per-node data with them); a tensor copy keys the draws.
        self.replica_ids = np.asarray(replica_ids, dtype=np.int64)
        self.node_ids = np.asarray(node_ids, dtype=np.int64)
        self._node_keys = torch.from_numpy(self.node_ids.copy()).to(device)

    def at(self, step) -> TorchStepDraws:
        """Draws for step ``step`` (an int, or a 0-d int64 tensor inside a compiled block)."""
        return TorchStepDraws(self, step)


class TorchStepDraws:
    """:class:`StepDraws` on torch: every method returns a tensor of shape (R, N_local, *shape)."""

    def __init__(self, streams: TorchNodeStreams, step):
        self.step = step
        self.node_ids, self._node_keys = streams.node_ids, streams._node_keys
        self._base = _key_torch(streams._replica_keys, step + 1)
        self._draw = 0

    def _bits(self, shape):
        import torch

        shape = tuple(int(s) for s in shape)
        size = math.prod(shape)  # not np.prod: a NumPy call breaks a compiled graph
        self._draw += 1
        per_node = _key_torch(self._base[:, None], self._node_keys[None, :], self._draw)
        elements = torch.arange(1, size + 1, dtype=torch.int64, device=per_node.device)
        bits = _mix_torch(per_node[:, :, None] + _GOLDEN_I * elements)
        return bits.reshape(per_node.shape + shape)

    def uniform(self, shape=()):
        """Uniform on [0, 1) with 53 random bits, float64."""
        import torch

        return _shr(self._bits(shape), 11).to(torch.float64) * _TO_UNIT

    def rademacher(self, shape=()):
        """Independent signs ±1 with probability 1/2 each, float64 (the top bit is the sign bit)."""
        import torch

        return 1.0 - 2.0 * (self._bits(shape) < 0).to(torch.float64)

    def normal(self, shape=()):
        """Standard normal (Box–Muller), float64; equal to :meth:`StepDraws.normal` to rounding
        (torch's ``log``/``cos`` may differ from NumPy's in the last bit).
        """
        import torch

        u1 = 1.0 - self.uniform(shape)
        u2 = self.uniform(shape)
        return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * np.pi * u2)
