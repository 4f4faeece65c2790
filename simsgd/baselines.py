"""The field's standard compressors as :class:`simsgd.compression.Compressor` objects.

:class:`TopK` and :class:`RandomK` (sparsification with error feedback: Stich, Cordonnier & Jaggi
2018), :class:`QSGD` (stochastic quantisation: Alistarh et al. 2017; unbiased, no error
feedback by default) and :class:`SignSGD` (scaled sign with error feedback: Karimireddy et al.
2019). Each node compresses its own Δ^{(i)}; Δ̂ is the node mean of the decoded messages, so in
torch.distributed it is an all-reduce of the decoded (dense) tensors — the same numbers a
gather of the compressed messages would give, while :meth:`floats` counts what the compressed
message itself would send (32-bit words: a value, an index, or 32 one-bit signs).

Their sizes default to the budget of rank-r PowerSGD, (m + n) r floats per node, so that
``method="topk"`` at ``rank=r`` sends what ``method="powersgd"`` sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._checks import check_int
from .compression import Compression

__all__ = ["TopK", "RandomK", "QSGD", "SignSGD", "FACTORIES"]


def _budget(k, rank, shape, per_entry):
    """k, or the entries that fit rank-r PowerSGD's (m + n) r floats at ``per_entry`` floats each."""
    m, n = shape
    return min(m * n, k if k is not None else max(1, (m + n) * rank // per_entry))


class _PerNode:
    """What the per-node compressors share: no state, no restart, Δ̂ = mean_i Δ̂^{(i)}."""

    period = None

    def basis_shape(self, shape):
        return None

    def init(self, q0):
        return ()

    def restart_at(self, t):
        return False

    def compress(self, state, deltas, t, *, errors=None, ops, draws=None, want_local=True):
        local_hat = self.encode_decode(deltas, ops, draws)
        return Compression(ops.node_mean(local_hat), local_hat), state


@dataclass(frozen=True)
class TopK(_PerNode):
    """Each node sends its k entries of largest |Δ^{(i)}_jl| (value and index: 2k floats).

    Parameters
    ----------
    k : int ≥ 1, optional
        Default ⌊(m + n) r / 2⌋, the floats of rank-r PowerSGD.
    rank : int ≥ 1
        r of that default.
    """

    k: int | None = None
    rank: int = 1
    name: str = "topk"
    error_feedback = True

    def __post_init__(self):
        check_int("rank", self.rank, 1)
        if self.k is not None:
            check_int("k", self.k, 1)

    def floats(self, t, shape, restart=False):
        return 2 * _budget(self.k, self.rank, shape, 2)

    def encode_decode(self, deltas, ops, draws):
        k = _budget(self.k, self.rank, deltas.shape[-2:], 2)
        return ops.where(ops.topk_mask(deltas, k), deltas, ops.zeros_like(deltas))


@dataclass(frozen=True)
class RandomK(_PerNode):
    """k entries chosen at random, the same on every node (a shared seed, so only the k values
    are sent and the sparse sum is an all-reduce); kept unscaled (the contractive variant,
    δ = k/(mn)), with error feedback.

    Parameters
    ----------
    k : int ≥ 1, optional
        Default (m + n) r, the floats of rank-r PowerSGD.
    rank : int ≥ 1
    """

    k: int | None = None
    rank: int = 1
    name: str = "randomk"
    error_feedback = True

    def __post_init__(self):
        check_int("rank", self.rank, 1)
        if self.k is not None:
            check_int("k", self.k, 1)

    def floats(self, t, shape, restart=False):
        return _budget(self.k, self.rank, shape, 1)

    def encode_decode(self, deltas, ops, draws):
        m, n = deltas.shape[-2:]
        k = _budget(self.k, self.rank, (m, n), 1)
        keys = draws.shared("uniform", (m, n), like=deltas)[..., None, :, :]  # (..., 1, m, n)
        return ops.where(ops.topk_mask(keys, k), deltas, ops.zeros_like(deltas))


@dataclass(frozen=True)
class QSGD(_PerNode):
    """QSGD with s levels: Q(v)_j = ||v||₂ sign(v_j) ξ_j / s, ξ_j ∈ {l, l + 1} with
    l = ⌊s|v_j|/||v||₂⌋ and P(ξ_j = l + 1) = s|v_j|/||v||₂ − l: unbiased, E||Q(v) − v||² ≤
    min(mn/s², √(mn)/s)||v||². Sends the norm and, per entry, a sign and a level
    (1 + ⌈log₂(s + 1)⌉ bits).

    Parameters
    ----------
    levels : int ≥ 1
        s.
    error_feedback : bool
        Keep an error memory (QSGD is unbiased and is usually run without).
    """

    levels: int = 4
    error_feedback: bool = False
    name: str = "qsgd"

    def __post_init__(self):
        check_int("levels", self.levels, 1)

    def floats(self, t, shape, restart=False):
        bits = 1 + math.ceil(math.log2(self.levels + 1))
        return 1 + shape[0] * shape[1] * bits / 32

    def encode_decode(self, deltas, ops, draws):
        norm = ops.sqnorm(deltas)[..., None, None] ** 0.5
        scaled = ops.abs(deltas) * self.levels / ops.where(norm > 0, norm, ops.ones_like(norm))
        low = ops.floor(scaled)
        up = draws.local("uniform", deltas.shape[-2:], like=deltas) < scaled - low
        level = low + ops.where(up, ops.ones_like(low), ops.zeros_like(low))
        return norm * ops.sign(deltas) * level / self.levels


@dataclass(frozen=True)
class SignSGD(_PerNode):
    """Scaled sign with error feedback (EF-SignSGD): C(v) = (||v||₁ / mn) sign(v): one float and
    mn signs (1 + mn/32 floats).
    """

    name: str = "sign"
    error_feedback = True

    def floats(self, t, shape, restart=False):
        return 1 + shape[0] * shape[1] / 32

    def encode_decode(self, deltas, ops, draws):
        m, n = deltas.shape[-2:]
        l1 = ops.col_sum(ops.col_sum(ops.abs(deltas)).mT)  # (..., 1, 1) = ||Δ^{(i)}||₁
        return (l1 / (m * n)) * ops.sign(deltas)


FACTORIES = {
    "topk": lambda o: TopK(rank=o.rank),
    "randomk": lambda o: RandomK(rank=o.rank),
    "qsgd": lambda o: QSGD(),
    "sign": lambda o: SignSGD(),
}
"""Their names for ``simulate(method=...)`` (sizes from ``rank``; see :mod:`simsgd.registry`)."""
