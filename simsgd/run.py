"""One run of Algorithm 2, checked before anything is computed: :func:`prepare` and :class:`Run`.

Shared by every engine (NumPy, torch eager and compiled, torch.distributed), so all refuse the
same inputs with the same messages.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_float_dtype, check_int, check_memory, check_real, check_seed
from .algorithm import Config
from .streams import initial_q

__all__ = ["Run", "prepare", "check_problem", "resolve_lr", "memory_estimate"]


class Run(NamedTuple):
    """The checked options of one run of Algorithm 2 (see :func:`prepare`).

    x : (R, m, n) X_0 per replica;  q : (R, n, r) Q_{-1}, or None for a compressor without one.
    """

    config: Config
    nodes: int
    steps: int
    seed: int
    dtype: np.dtype
    replica_ids: np.ndarray
    shape: tuple
    x: np.ndarray
    q: np.ndarray | None


def resolve_lr(lr, t: int) -> float:
    """η_t from a constant or a callable ``lr(t)``; must be finite and > 0."""
    value = lr(t) if callable(lr) else lr
    name = f"lr({t})" if callable(lr) else "lr"
    return check_real(name, value, 0.0, low_open=True)


def check_problem(problem):
    """The problem's (m, n) after checking it has the oracle protocol."""
    for attr in ("shape", "x0", "loss", "grad", "stochastic_grads"):
        if not hasattr(problem, attr):
            raise ValueError(f"problem must have attribute {attr!r} (see simsgd.problems)")
    shape = tuple(int(s) for s in problem.shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"problem.shape must be (m, n) with m, n ≥ 1, got {problem.shape!r}")
    return shape


def memory_estimate(replicas, steps, nodes, shape, rank=1, dtype="float64") -> float:
    """Bytes :func:`simsgd.simulate` needs, roughly, before it allocates them (a float: sizes may be huge).

    The record is 4 float64 arrays of (R, T+1) and about 64 bytes per step (the floats sent,
    restart and degenerate-QR counts, and the Python list they are built from); a step holds
    about 8 arrays of (R, N, m, n) (gradients, Δ, errors, Δ̂^{(i)}, NumPy's temporaries) and 8
    of (R, m, n) or (R, n, r), plus a fixed 256 KiB of small temporaries (a first call's
    imports, about 0.3 MB more, are not counted). Checked against tracemalloc's peak of a
    warm run in the tests (peak ≤ estimate ≤ 3·peak).
    """
    m, n = shape
    itemsize = np.dtype(dtype).itemsize
    per_replica = 4 * 8 * (float(steps) + 1) + itemsize * (
        8 * float(nodes) * m * n + 8 * (m * n + (m + n) * rank)
    )
    return float(replicas) * per_replica + 64.0 * float(steps) + 2.0**18


def prepare(
    problem, config: Config, *, nodes, steps, replicas, seed, q_init, dtype, x0, replica_ids, lr
) -> Run:
    """Check the options of a run of ``config`` on ``problem`` and build X_0 and Q_{-1}.

    Parameters as :func:`simsgd.simulate`.

    Raises
    ------
    ValueError
        An option outside its range.
    """
    dtype = check_float_dtype("dtype", dtype)  # first: nothing is computed with a dtype we refuse
    m, n = check_problem(problem)
    config.checked_for((m, n))
    nodes = check_int("nodes", nodes, 1)
    fixed = getattr(problem, "nodes", None)  # per-node σ_i or per-node data fix N
    if fixed is not None and nodes != fixed:
        raise ValueError(
            f"nodes must equal problem.nodes = {fixed} (the problem is built for it), got {nodes}"
        )
    steps = check_int("steps", steps, 1)
    seed = check_seed("seed", seed)
    if replica_ids is None:
        R = check_int("replicas", replicas, 1)
    else:
        replica_ids = np.asarray(replica_ids)
        if (
            replica_ids.ndim != 1
            or replica_ids.size < 1
            or not np.issubdtype(replica_ids.dtype, np.integer)
            or replica_ids.min() < 0
            or replica_ids.max() >= 2**63
        ):
            raise ValueError("replica_ids must be a non-empty 1-D array of integers in [0, 2⁶³)")
        R = replica_ids.size
    if not callable(lr):
        resolve_lr(lr, 0)
    check_memory(  # before anything of size R is allocated
        f"simulate with {R} replicas, {steps} steps, {nodes} nodes and X of shape {m}×{n}",
        memory_estimate(R, steps, nodes, (m, n), config.rank, dtype),
        "fewer replicas or steps (or run the replicas in batches with replica_ids)",
    )
    if replica_ids is None:
        replica_ids = np.arange(R)

    x = _checked_x0(problem.x0 if x0 is None else x0, (m, n), R, dtype)
    x = np.broadcast_to(x, (R, m, n)).copy()
    basis = config.compressor.basis_shape((m, n))
    q = None if basis is None else _initial_q(q_init, seed, replica_ids, *basis, dtype)
    return Run(config, nodes, steps, seed, dtype, replica_ids, (m, n), x, q)


def _initial_q(q_init, seed, replica_ids, n, rank, dtype):
    if q_init is None:
        return initial_q(seed, replica_ids, n, rank).astype(dtype)
    q = np.asarray(q_init, dtype=dtype)
    R = len(replica_ids)
    if q.shape == (n, rank):
        q = np.broadcast_to(q, (R, n, rank)).copy()
    if q.shape != (R, n, rank) or not np.all(np.isfinite(q)):
        raise ValueError(
            f"q_init must be a finite array of shape ({n}, {rank}) or ({R}, {n}, {rank}), "
            f"got shape {np.shape(q_init)}"
        )
    return q


def _checked_x0(x0, shape, R, dtype):
    """X_0 as ``dtype``: shape (m, n) or (R, m, n), every entry finite in that dtype."""
    m, n = shape
    with np.errstate(over="ignore"):  # a float64 X_0 beyond float32's range is reported below
        x = np.asarray(x0, dtype=dtype)
    if x.shape not in ((m, n), (R, m, n)):
        raise ValueError(f"x0 must be an array of shape ({m}, {n}) or ({R}, {m}, {n}), got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(np.asarray(x0, np.float64)[index])
        raise ValueError(
            f"x0 must be finite in {dtype.name}: x0{list(index)} = {value!r} "
            f"({int(bad.sum())} non-finite entr{'y' if bad.sum() == 1 else 'ies'})"
        )
    return x
