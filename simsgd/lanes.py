"""Replicas innermost: arrays whose every entry is a length-R torch tensor, one lane per replica.

A :class:`Lanes` array of logical shape (R, *small) — what :func:`simsgd.algorithm.step` sees,
e.g. Δ of shape (R, N, m, n) — holds a NumPy object array of shape ``small`` whose elements
are torch tensors of shape (R,) (the replicas contiguous, innermost) or 0-d tensors (a value
the same for every replica). Indexing, ``.mT`` and broadcasting act on the small axes only,
in Python; arithmetic acts entry by entry, so every operation of Algorithm 2 on small matrices
becomes a sequence of pointwise operations on length-R vectors. ``torch.compile`` fuses such a
step into one loop over R with the state in registers (:mod:`simsgd.fused`).

:class:`LanesOps` is the :class:`simsgd.ops.ArrayOps` of these arrays. Its reductions add in the
order :class:`simsgd.ops.NumpyOps` does (node slices 0..N−1; matrix products term by term; a
squared norm in NumPy's ``einsum`` order), its QR of one column and its 2×n SVD are the NumPy
engine's closed forms, and :class:`LanesStreams` draws the NumPy engine's bits, so a run
computes the NumPy engine's numbers. The replica axis cannot be indexed (only ``...`` or a full
``:`` may stand for it), and matrices of more than :data:`MAX_ENTRIES` entries are refused: a
compiled step would unroll too many operations.

Needs torch; ``import simsgd`` does not import this module.
"""

from __future__ import annotations

import contextlib
import operator

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch._subclasses.fake_tensor import FakeTensor

from .streams import _GOLDEN_I, _TO_UNIT, NodeStreams, _key_torch, _mix_torch, _shr, _signed

__all__ = ["Lanes", "LanesOps", "LanesStreams", "LanesStepDraws", "MAX_ENTRIES"]

MAX_ENTRIES = 16
"""Most entries m·n of the matrices of a run: beyond, a compiled step would unroll thousands of
operations per replica."""


def _box(value) -> np.ndarray:
    """A 0-d object array holding ``value`` (NumPy would unpack a tensor given to it directly)."""
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def _entries(value, like: Lanes) -> np.ndarray | float | bool:
    """``value`` as entries that broadcast against ``like``'s (a Python number stays one)."""
    if isinstance(value, Lanes):
        return value.entries
    if isinstance(value, torch.Tensor):
        if value.ndim:
            raise ValueError(f"a tensor of shape {tuple(value.shape)} meets a Lanes array: use LanesOps")
        return _box(value)
    if isinstance(value, np.generic):  # a NumPy scalar would turn a tensor into an array
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return value
    return LANES.asarray(value, like).entries


def _map(fn, *arrays) -> np.ndarray:
    """``fn`` applied entry by entry, the object arrays broadcast against each other."""
    with np.errstate(all="ignore"):  # NumPy reads the FPU flags torch's kernels leave (0/0 is NaN here)
        out = np.frompyfunc(fn, len(arrays), 1)(*arrays)
    return out if isinstance(out, np.ndarray) else _box(out)


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    """√v, correctly rounded as NumPy's and compiled code's: torch's eager CPU kernel is not
    (it differs from NumPy's in ~1% of float64 inputs), so eager CPU tensors go through NumPy.
    """
    if v.device.type != "cpu" or isinstance(v, FakeTensor) or v.requires_grad:
        return torch.sqrt(v)
    return torch.from_numpy(np.sqrt(v.numpy()))


def _sqrt_or_pow(v, p):
    return _sqrt(v) if p == 0.5 else v * v if p == 2 else v**p


def _first_tensor(entries):
    return next(e for e in entries.flat)


class Lanes:
    """An array of shape (R, *small) held as ``small`` entries of length-R (or 0-d) torch tensors.

    Parameters
    ----------
    entries : object ndarray of shape ``small``
        Each a torch tensor of shape (R,) or ().
    """

    __slots__ = ("entries",)
    __array_ufunc__ = None  # NumPy scalars and arrays defer to the reflected operators below

    def __init__(self, entries: np.ndarray):
        self.entries = entries

    @classmethod
    def of(cls, values: torch.Tensor) -> Lanes:
        """The (R,) array of the per-replica ``values`` (R,)."""
        return cls(_box(values))

    @property
    def replicas(self) -> int:
        """R (1 when every entry is the same for all replicas)."""
        return max((e.shape[0] if e.ndim else 1) for e in self.entries.flat)

    @property
    def shape(self) -> tuple:
        return (self.replicas,) + self.entries.shape

    @property
    def ndim(self) -> int:
        return 1 + self.entries.ndim

    @property
    def dtype(self):
        return _first_tensor(self.entries).dtype

    @property
    def device(self):
        return _first_tensor(self.entries).device

    @property
    def array_ops(self) -> LanesOps:
        """:data:`LANES` (what :func:`simsgd.ops.array_ops` returns for this array)."""
        return LANES

    @property
    def mT(self) -> Lanes:
        return Lanes(np.swapaxes(self.entries, -1, -2))

    def _key(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if Ellipsis in key:
            return key
        if key and key[0] == slice(None):  # a full slice of the replica axis
            return key[1:]
        raise IndexError(f"Lanes index {key!r}: the replica axis is indexed only by ... or a full :")

    def __getitem__(self, key) -> Lanes:
        out = self.entries[self._key(key)]
        return Lanes(out if isinstance(out, np.ndarray) else _box(out))

    def __setitem__(self, key, value):
        value = _entries(value, self)
        if not isinstance(value, np.ndarray):  # a Python number: a 0-d tensor of this dtype
            value = _box(torch.tensor(value, dtype=self.dtype, device=self.device))
        self.entries[self._key(key)] = value

    def __bool__(self):
        raise TypeError("the truth value of a Lanes array is ambiguous (use LanesOps.any)")

    def __repr__(self):
        return f"Lanes(shape={self.shape}, dtype={self.dtype})"

    def _binary(self, other, fn, reflected=False):
        other = _entries(other, self)
        return Lanes(_map(fn, other, self.entries) if reflected else _map(fn, self.entries, other))

    def _inplace(self, other, fn):
        self.entries[...] = self._binary(other, fn).entries
        return self

    def __add__(self, o):
        return self._binary(o, operator.add)

    def __radd__(self, o):
        return self._binary(o, operator.add, True)

    def __sub__(self, o):
        return self._binary(o, operator.sub)

    def __rsub__(self, o):
        return self._binary(o, operator.sub, True)

    def __mul__(self, o):
        return self._binary(o, operator.mul)

    def __rmul__(self, o):
        return self._binary(o, operator.mul, True)

    def __truediv__(self, o):
        return self._binary(o, operator.truediv)

    def __rtruediv__(self, o):
        return self._binary(o, operator.truediv, True)

    def __pow__(self, p):
        if not isinstance(p, (int, float)):
            raise TypeError("Lanes arrays are raised to Python numbers only")
        return Lanes(_map(lambda v: _sqrt_or_pow(v, p), self.entries))

    def __iadd__(self, o):
        return self._inplace(o, operator.add)

    def __isub__(self, o):
        return self._inplace(o, operator.sub)

    def __imul__(self, o):
        return self._inplace(o, operator.mul)

    def __itruediv__(self, o):
        return self._inplace(o, operator.truediv)

    def __neg__(self):
        return Lanes(_map(operator.neg, self.entries))

    def __abs__(self):
        return Lanes(_map(torch.abs, self.entries))

    def __invert__(self):
        return Lanes(_map(torch.logical_not, self.entries))

    def __and__(self, o):
        return self._binary(o, torch.logical_and)

    def __or__(self, o):
        return self._binary(o, torch.logical_or)

    def __lt__(self, o):
        return self._binary(o, operator.lt)

    def __le__(self, o):
        return self._binary(o, operator.le)

    def __gt__(self, o):
        return self._binary(o, operator.gt)

    def __ge__(self, o):
        return self._binary(o, operator.ge)

    def __eq__(self, o):  # noqa: D105 (elementwise, as NumPy's)
        return self._binary(o, operator.eq)

    def __ne__(self, o):
        return self._binary(o, operator.ne)

    __hash__ = None

    def sum(self, axis: int) -> Lanes:
        """Σ over one small axis (negative, as the oracles write it), in order, as NumPy sums fewer
        than 8 terms.
        """
        if not -self.entries.ndim <= axis < 0:
            raise IndexError(
                f"Lanes.sum takes one small axis from the right (−1 … −{self.entries.ndim}), got {axis}"
            )
        rest = (slice(None),) * (-axis - 1)
        total = self[(..., 0, *rest)]
        for k in range(1, self.entries.shape[axis]):
            total = total + self[(..., k, *rest)]
        return total

    def mean(self, axis: int) -> Lanes:
        return self.sum(axis) / self.entries.shape[axis]

    def __matmul__(self, o):
        return LANES.matmul(self, LANES.asarray(o, self))

    def __rmatmul__(self, o):
        return LANES.matmul(LANES.asarray(o, self), self)


def _flatten(x: Lanes):
    return list(x.entries.flat), x.entries.shape


def _unflatten(values, shape) -> Lanes:
    entries = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        entries[i] = v
    return Lanes(entries.reshape(shape))


pytree.register_pytree_node(Lanes, _flatten, _unflatten, serialized_type_name="simsgd.lanes.Lanes")


def _sum_lanes(terms):
    """Σ terms in NumPy ``einsum``'s order for a contiguous sum of < 8 products (SSE2: two lanes,
    even and odd terms, added last).
    """
    even, odd = terms[0::2], terms[1::2]
    total = even[0]
    for v in even[1:]:
        total = total + v
    if odd:
        rest = odd[0]
        for v in odd[1:]:
            rest = rest + v
        total = total + rest
    return total


class LanesOps:
    """The :class:`simsgd.ops.ArrayOps` of :class:`Lanes` arrays: all N nodes in axis -3, averaged
    in memory; the orders of summation are :class:`simsgd.ops.NumpyOps`'.

    Parameters
    ----------
    device : str or torch.device
        Where :meth:`from_numpy` puts arrays.
    traced : bool
        Inside a compiled graph (:mod:`simsgd.fused`): :meth:`any` answers True, so a
        data-dependent branch becomes a ``where`` (the same numbers).
    """

    name = "lanes"

    def __init__(self, device="cpu", traced=False):
        self.device, self.traced = torch.device(device), traced

    # -- Algorithm 1 and 2 ---------------------------------------------------------------
    @staticmethod
    def node_mean(x):
        total = x[..., 0, :, :]
        if x.shape[-3] == 1:
            return total / 1
        for i in range(1, x.shape[-3]):
            total = total + x[..., i, :, :]
        return total / x.shape[-3]

    @staticmethod
    def matmul(a, b):
        """``a @ b``: out_il = Σ_j a_ij b_jl, added in order j = 0, 1, … (NumpyOps' order)."""
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for j in range(1, a.shape[-1]):
            out = out + a[..., :, j : j + 1] * b[..., j : j + 1, :]
        return out

    def qr(self, p):
        """QR of one column (..., m, 1) in closed form: LAPACK's answer to rounding (Q = p/β,
        β = −sign(p₁)||p||, as :func:`simsgd.orthogonalize.orthogonalize`'s "householder"; m = 1: Q = 1).
        """
        from .orthogonalize import _householder_rank1

        if p.shape[-1] != 1:
            raise NotImplementedError("backend='lanes' orthogonalises rank r = 1 only")
        if p.shape[-2] == 1:
            return self.ones_like(p), p[..., 0, :]
        return _householder_rank1(p, self)

    @staticmethod
    def svd(p):
        raise NotImplementedError("backend='lanes' has no general SVD (it needs r = 1 or m = 2)")

    def top_left_singular_vectors(self, d, rank):
        """Closed form for m = 2 (:func:`simsgd.small_svd.top_left_singular_vectors_2xn`) and m = 1."""
        from .small_svd import top_left_singular_vectors_2xn

        if d.shape[-2] == 1:
            return self.ones_like(d[..., :, :1])
        if d.shape[-2] == 2:
            return top_left_singular_vectors_2xn(d, rank, self)
        raise NotImplementedError("backend='lanes' restarts (SVD) 1×n and 2×n matrices only")

    @staticmethod
    def sqnorm(x):
        """Σ_ij x_ij² in NumPy's ``einsum`` order (row-major terms, two lanes)."""
        terms = [v * v for v in (x[..., i, j] for i in range(x.shape[-2]) for j in range(x.shape[-1]))]
        return _sum_lanes(terms)

    @staticmethod
    def maxabs(x):
        flat = x.entries.reshape(x.entries.shape[:-2] + (-1,))
        out = Lanes(_map(torch.abs, flat[..., 0]))
        for k in range(1, flat.shape[-1]):
            out = Lanes(_map(torch.maximum, out.entries, _map(torch.abs, flat[..., k])))
        return out

    @staticmethod
    def col_sum(x, keep=True):
        total = x[..., 0:1, :]
        for i in range(1, x.shape[-2]):
            total = total + x[..., i : i + 1, :]
        return total if keep else total[..., 0, :]

    @staticmethod
    def expand_mask(mask, like):
        return mask[..., None, None]

    @staticmethod
    def amin_last(x):
        out = x[..., 0]
        for k in range(1, x.shape[-1]):
            out = Lanes(_map(torch.minimum, out.entries, x.entries[..., k]))
        return out

    @staticmethod
    def copy(x):
        return Lanes(x.entries.copy())

    @staticmethod
    def where(mask, a, b):
        like = a if isinstance(a, Lanes) else b if isinstance(b, Lanes) else mask
        return Lanes(_map(torch.where, _entries(mask, like), _entries(a, like), _entries(b, like)))

    @staticmethod
    def zeros_like(x):
        return Lanes(_map(torch.zeros_like, x.entries))

    def any(self, mask) -> bool:
        return True if self.traced else any(bool(torch.any(e)) for e in mask.entries.flat)

    @staticmethod
    def eps(x) -> float:
        return float(torch.finfo(x.dtype).eps)

    @staticmethod
    def ignore_division_warnings():
        return contextlib.nullcontext()  # torch does not warn on 0/0

    # -- the baselines' compressors ------------------------------------------------------
    @staticmethod
    def topk_mask(x, k):
        raise NotImplementedError("backend='lanes' has no top-k (use backend='torch' or 'numpy')")

    @staticmethod
    def sign(x):
        return Lanes(_map(torch.sign, x.entries))

    @staticmethod
    def floor(x):
        return Lanes(_map(torch.floor, x.entries))

    # -- the engine's loop and record ----------------------------------------------------
    @staticmethod
    def asnumpy(x) -> np.ndarray:
        """(R, *small) NumPy array (R = 1 for an array the same for every replica)."""
        r = x.replicas
        columns = [e.detach().expand(r) for e in x.entries.flat]
        return torch.stack(columns, -1).cpu().numpy().reshape((r,) + x.entries.shape)

    def from_numpy(self, a) -> Lanes:
        """(R, *small) NumPy array -> Lanes: each entry a contiguous length-R tensor on the device."""
        a = np.asarray(a)
        if a.ndim >= 3 and a.shape[-2] * a.shape[-1] > MAX_ENTRIES:
            raise ValueError(
                f"backend='lanes' is for matrices of at most {MAX_ENTRIES} entries, got {a.shape[-2]}×"
                f"{a.shape[-1]} (use backend='torch' or 'numpy')"
            )
        entries = np.empty(a.shape[1:], dtype=object)
        for index in np.ndindex(entries.shape):
            entries[index] = torch.from_numpy(np.ascontiguousarray(a[(slice(None),) + index])).to(self.device)
        return Lanes(entries)

    @staticmethod
    def asarray(a, like) -> Lanes:
        """``a`` in ``like``'s dtype and device: a Lanes array (cast), or a NumPy array, number or
        0-d tensor without a replica axis (the same for every replica).
        """
        dtype, device = like.dtype, like.device
        if isinstance(a, Lanes):
            return a if a.dtype == dtype else Lanes(_map(lambda e: e.to(dtype), a.entries))
        if isinstance(a, torch.Tensor) and a.ndim == 0:
            return Lanes(_box(a.to(dtype)))
        if isinstance(a, torch.Tensor):
            raise ValueError("a tensor with axes cannot become a Lanes array (its replica axis is unknown)")
        values = np.asarray(a)
        kind = torch.bool if values.dtype == bool else dtype
        entries = np.empty(values.shape, dtype=object)
        for index in np.ndindex(values.shape):
            entries[index] = torch.tensor(values[index].item(), dtype=kind, device=device)
        return Lanes(entries)

    @staticmethod
    def node_layout(x):
        return x

    @staticmethod
    def all_finite(x) -> bool:
        return all(bool(torch.isfinite(e).all()) for e in x.entries.flat)

    @staticmethod
    def stack(arrays):
        raise NotImplementedError(
            "backend='lanes' cannot stack along the replica axis (error_block = 1 only)"
        )

    # -- the oracles' array namespace ----------------------------------------------------
    @staticmethod
    def abs(x):
        return abs(x)

    @staticmethod
    def clip(x, low, high):
        return Lanes(_map(lambda e: torch.clamp(e, low, high), x.entries))

    @staticmethod
    def einsum(subscripts, *operands):
        """Einstein summation over the small axes (``...`` takes none: the replica axis stays
        implicit), in NumPy's object-array order: term by term, row-major.
        """
        like = next(o for o in operands if isinstance(o, Lanes))
        out = np.einsum(subscripts, *(np.asarray(_entries(o, like), dtype=object) for o in operands))
        return Lanes(out if isinstance(out, np.ndarray) else _box(out))

    @staticmethod
    def ones_like(x):
        return Lanes(_map(torch.ones_like, x.entries))


LANES = LanesOps()
"""The CPU instance (what :func:`simsgd.ops.array_ops` returns for a Lanes array; its methods that
array_ops' callers use do not depend on the device)."""


def all_finite_per_replica(x: Lanes) -> torch.Tensor:
    """(R,) bool: whether every entry of each replica is finite, as Σ_k x_k·0 == 0 (a product
    with 0 is ±0 for a finite entry and NaN for an infinite or NaN one; two operations per entry).
    """
    total = None
    for e in x.entries.flat:
        total = e * 0 if total is None else total + e * 0
    return total == 0


class LanesStreams:
    """:class:`simsgd.streams.NodeStreams` with draws as :class:`Lanes` arrays (the same bits).

    Parameters
    ----------
    seed, replica_ids, node_ids
        As :class:`~simsgd.streams.NodeStreams`.
    device : str or torch.device
    """

    def __init__(self, seed, replica_ids, node_ids, device="cpu"):
        keys = NodeStreams(seed, replica_ids, node_ids)._replica_keys  # one home for the seeding
        self.replica_keys = torch.from_numpy(keys.view(np.int64).copy()).to(device)
        self.replica_ids = np.asarray(replica_ids, dtype=np.int64)
        self.node_ids = np.asarray(node_ids, dtype=np.int64)

    def _with(self, **changes) -> LanesStreams:
        other = object.__new__(LanesStreams)
        other.__dict__.update(self.__dict__, **changes)
        return other

    def with_nodes(self, node_ids) -> LanesStreams:
        """The same replicas' streams at other node ids (e.g. a compressor's own draws)."""
        return self._with(node_ids=np.asarray(node_ids, dtype=np.int64))

    def with_keys(self, replica_keys: torch.Tensor) -> LanesStreams:
        """These streams keyed by ``replica_keys`` (R,) int64, e.g. a compiled graph's input."""
        return self._with(replica_keys=replica_keys)

    def at(self, step) -> LanesStepDraws:
        """Draws of step ``step`` (an int, or a 0-d int64 tensor in a compiled step)."""
        return LanesStepDraws(self.replica_keys, self.node_ids, step)


class LanesStepDraws:
    """:class:`simsgd.streams.StepDraws` as :class:`Lanes` arrays of logical shape (R, N_local, *shape)."""

    def __init__(self, replica_keys, node_ids, step):
        self.step, self.node_ids = step, node_ids
        self._base = _key_torch(replica_keys, step + 1)
        self._draw = 0

    def _bits(self, shape) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        self._draw += 1
        size = int(np.prod(shape, dtype=np.int64))
        entries = np.empty((self.node_ids.size, size), dtype=object)
        for i, node in enumerate(self.node_ids):
            per_node = _key_torch(self._base, int(node), self._draw)
            for e in range(size):
                entries[i, e] = _mix_torch(per_node + _signed(_GOLDEN_I * (e + 1)))
        return entries.reshape((self.node_ids.size,) + shape)

    def uniform(self, shape=()) -> Lanes:
        return Lanes(_map(lambda z: _shr(z, 11).to(torch.float64) * _TO_UNIT, self._bits(shape)))

    def rademacher(self, shape=()) -> Lanes:
        return Lanes(_map(lambda z: 1.0 - 2.0 * (z < 0).to(torch.float64), self._bits(shape)))

    def normal(self, shape=()) -> Lanes:
        """Box–Muller, as :meth:`simsgd.streams.TorchStepDraws.normal` (torch's ``log``/``cos``)."""
        u1 = 1.0 - self.uniform(shape)
        u2 = self.uniform(shape)
        return Lanes(
            _map(lambda a, b: _sqrt(-2.0 * torch.log(a)) * torch.cos(2.0 * np.pi * b), u1.entries, u2.entries)
        )
