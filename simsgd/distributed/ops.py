"""The array operations of Algorithm 2 for one node per process.

:class:`TorchOps` has the methods of :class:`simsgd.ops.NumpyOps` on torch tensors,
so :func:`simsgd.algorithm.step` runs unchanged on it: arrays keep the node axis at -3
with length 1, and ``node_mean`` sums it away and all-reduces the sum over the process
group, divided by the world size. :class:`ReferenceOps` keeps NumPy's kernels and only
moves the node mean across processes, in the simulator's order of summation, so a
distributed run reproduces :func:`simsgd.simulate` bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from ..ops import NumpyOps
from ..torch_ops import TorchOps as LocalTorchOps

__all__ = ["TorchOps", "ReferenceOps"]


class TorchOps(LocalTorchOps):
    """Algorithm 2's array operations for the node held by this process.

    The kernels of :class:`simsgd.torch_ops.TorchOps`; only the node mean crosses processes.

    Parameters
    ----------
    group : ProcessGroup, optional
        The nodes to average over (default: the world).
    device : str or torch.device
        Where :meth:`from_numpy` puts arrays ("cpu", or "cuda:k" with NCCL).

    Notes
    -----
    The results agree with :class:`~simsgd.ops.NumpyOps` to rounding, not bit for
    bit: the all-reduce adds the N terms in its own order, torch's QR (MKL), sums and
    even ``sqrt`` round differently from NumPy's in the last bit, and the SVD of a
    restart step may return singular vectors of the opposite sign (then Q_t has the
    opposite sign; P̃ Qᵀ, X_t and the trace do not depend on it). :class:`ReferenceOps`
    reproduces the simulator exactly.
    """

    name = "torch+all_reduce"

    def __init__(self, group=None, device="cpu"):
        super().__init__(device)
        self.group = group
        self.world_size = dist.get_world_size(group)

    def node_mean(self, x):
        """(1/N) Σ_i x^{(i)}: ``(..., 1, a, b) -> (..., a, b)``, an all-reduce of the local sum."""
        total = x.sum(dim=-3)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.group)
        return total / self.world_size


class ReferenceOps(NumpyOps):
    """NumPy's kernels for the node held by this process; node means across the group.

    ``node_mean`` all-gathers the N local terms (gloo, CPU) and adds them in node order
    0, 1, …, N−1 with :meth:`NumpyOps.node_mean` itself, so every number is the
    simulator's bit for bit. It receives N−1 tensors per node where a ring all-reduce
    moves about 2(N−1)/N: a check of the distributed algorithm, not a way to train.
    """

    name = "numpy+all_gather"

    def __init__(self, group=None):
        self.group = group
        self.world_size = dist.get_world_size(group)

    def node_mean(self, x):
        """(1/N) Σ_i x^{(i)}: ``(..., 1, a, b) -> (..., a, b)``, NumPy arrays."""
        local = torch.from_numpy(np.ascontiguousarray(x[..., 0, :, :]))
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local, group=self.group)
        return NumpyOps.node_mean(np.stack([part.numpy() for part in parts], axis=-3))
