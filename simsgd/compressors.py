"""Algorithm 1: the rank-r SSP and SVD compressors, for N nodes at once.

Arrays carry the node axis explicitly: ``deltas`` is (..., N, m, n), with any leading
replica axes. A node average is ``ops.node_mean`` (a mean over axis -3 here, an
``all_reduce`` in the torch backend).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_choice, check_float_dtype, check_int, check_real
from .ops import NUMPY
from .orthogonalize import DEGENERATE_QR, ORTHOGONALIZATIONS, orthogonalize

__all__ = [
    "Compressed",
    "ssp_compress",
    "svd_compress",
    "ssp_step",
    "svd_step",
    "project",
    "power_iteration_step",
]


class Compressed(NamedTuple):
    """Result of one call of Algorithm 1.

    Attributes
    ----------
    q : (..., n, r)
        Q_t = (1/N) Σ_i Q^{(i)}, the basis carried to the next SSP step.
    local_hat : (..., N, m, n) or None
        Δ̂^{(i)} = P̃ (Q^{(i)})ᵀ (None when not asked for).
    global_hat : (..., m, n)
        Δ̂ = P̃ Qᵀ = P̃ P̃ᵀ Δ.
    basis : (..., m, r)
        P̃_t.
    degenerate : bool array (...) or None
        Where QR(P) met a rank-deficient P (SSP only).
    """

    q: object
    local_hat: object
    global_hat: object
    basis: object
    degenerate: object


def project(basis, deltas, *, want_local=True, ops=NUMPY):
    """Second half of both compressors: Q^{(i)} = (Δ^{(i)})ᵀ P̃, Q = mean_i Q^{(i)}."""
    q_local = ops.matmul(basis[..., None, :, :].mT, deltas).mT  # (..., N, n, r) = Δ^{(i)ᵀ} P̃
    q = ops.node_mean(q_local)  # (..., n, r)  all-reduce mean
    local_hat = ops.matmul(basis[..., None, :, :], q_local.mT) if want_local else None
    return q, local_hat, ops.matmul(basis, q.mT)


def ssp_step(
    q,
    deltas,
    *,
    previous_basis=None,
    orthogonalization="householder",
    orthogonalization_epsilon=0.0,
    degenerate_qr="previous",
    want_local=True,
    ops=NUMPY,
):
    """SSP-COMP(Q, Δ^{(1..N)}) with its diagnostics; see :func:`ssp_compress`."""
    p = ops.node_mean(ops.matmul(deltas, q[..., None, :, :]))  # P = mean_i Δ^{(i)} Q, all-reduce mean
    basis, degenerate = orthogonalize(
        p,
        method=orthogonalization,
        epsilon=orthogonalization_epsilon,
        previous=previous_basis,
        degenerate_qr=degenerate_qr,
        ops=ops,
    )
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, degenerate)


def svd_step(deltas, rank, *, want_local=True, ops=NUMPY):
    """SVD-COMP(Δ^{(1..N)}) with its diagnostics; see :func:`svd_compress`."""
    basis = ops.top_left_singular_vectors(ops.node_mean(deltas), rank)  # all-reduce of full Δ
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, None)


def power_iteration_step(
    q,
    deltas,
    power_steps,
    *,
    previous_basis=None,
    orthogonalization="householder",
    orthogonalization_epsilon=0.0,
    degenerate_qr="previous",
    want_local=True,
    ops=NUMPY,
):
    """K steps of power iteration (8) on the node average, warm-started from Q_{t-1}.

    Each of the ``power_steps`` = K steps is one :func:`ssp_step` (two all-reduces, of P
    and of Q), so a node sends K (m + n) r floats; K = 1 is SSP-COMP exactly.

    Parameters
    ----------
    q : array, shape (..., n, r)
        Q_{t-1}.
    deltas : array, shape (..., N, m, n)
    power_steps : int, K ≥ 1
    previous_basis, orthogonalization, orthogonalization_epsilon, degenerate_qr, want_local
        As :func:`ssp_step`.

    Returns
    -------
    Compressed
        Of the last power step; ``degenerate`` is true where any step met a
        rank-deficient P.
    """
    degenerate = None
    for k in range(power_steps):
        out = ssp_step(
            q,
            deltas,
            previous_basis=previous_basis,
            orthogonalization=orthogonalization,
            orthogonalization_epsilon=orthogonalization_epsilon,
            degenerate_qr=degenerate_qr,
            want_local=want_local and k == power_steps - 1,
            ops=ops,
        )
        q, previous_basis = out.q, out.basis
        degenerate = out.degenerate if degenerate is None else degenerate | out.degenerate
    return out._replace(degenerate=degenerate)


def ssp_compress(q, deltas, **options):
    """SSP-COMP of Algorithm 1: one step of power iteration on the node average.

    Parameters
    ----------
    q : array, shape (..., n, r)
        Previous basis Q_{t-1}; finite.
    deltas : array, shape (..., N, m, n)
        Δ^{(i)} of every node: float32 or float64, finite, N ≥ 1.
    **options
        ``orthogonalization`` ("householder" | "lapack" | "gram-schmidt"),
        ``orthogonalization_epsilon``, ``degenerate_qr`` and ``previous_basis``, as in
        :func:`simsgd.orthogonalize.orthogonalize`.

    Returns
    -------
    q : (..., n, r)
        Q_t.
    local_hat : (..., N, m, n)
        Δ̂^{(i)} = P̃ (Q^{(i)})ᵀ.
    global_hat : (..., m, n)
        Δ̂ = P̃ Q_tᵀ.

    Raises
    ------
    ValueError
        A bad shape, dtype, option or a non-finite input, naming the argument.
    FloatingPointError
        When the exact result is beyond the float range (possible only for inputs
        within a factor √(mn) of it).
    simsgd.orthogonalize.DegenerateQRError
        Under ``degenerate_qr="raise"``, when P is rank-deficient.

    Notes
    -----
    Scale-safe: Δ (per leading index) and Q are divided by powers of two that bring
    their largest entry into [1, 2) before any product is formed, and the outputs are
    multiplied back, as LAPACK scales its inputs. Powers of two are exact, so for
    inputs of moderate size the result is bit-for-bit that of :func:`ssp_step`.
    Gram–Schmidt with ε > 0 (PyTorch's P/(||P|| + ε)) depends on the scale by
    definition and is computed unscaled.
    """
    deltas = _check_deltas(deltas)
    m, n = deltas.shape[-2:]
    q = _check_finite_array("q", q, deltas.dtype)
    if q.ndim < 2 or q.shape[-2] != n or not 1 <= q.shape[-1] <= min(m, n):
        raise ValueError(
            f"q must have shape (..., n, r) with n = {n} and 1 ≤ r ≤ min(m, n) = {min(m, n)}, got {q.shape}"
        )
    unknown = set(options) - {
        "orthogonalization",
        "orthogonalization_epsilon",
        "degenerate_qr",
        "previous_basis",
    }
    if unknown:
        raise ValueError(f"ssp_compress got unknown options {sorted(unknown)}")
    check_choice("orthogonalization", options.get("orthogonalization", "householder"), ORTHOGONALIZATIONS)
    check_real("orthogonalization_epsilon", options.get("orthogonalization_epsilon", 0.0), 0.0)
    check_choice("degenerate_qr", options.get("degenerate_qr", "previous"), DEGENERATE_QR)
    if options.get("previous_basis") is not None:
        previous = _check_finite_array("previous_basis", options["previous_basis"], deltas.dtype)
        if previous.shape[-2:] != (m, q.shape[-1]):
            raise ValueError(
                f"previous_basis must have shape (..., {m}, {q.shape[-1]}), got {previous.shape}"
            )
        options = dict(options, previous_basis=previous)
    if (
        options.get("orthogonalization") == "gram-schmidt"
        and options.get("orthogonalization_epsilon", 0.0) > 0
    ):
        out = ssp_step(q, deltas, **options)  # P/(||P|| + ε) depends on the scale: keep it as given
        return _scaled_back(out, np.ones_like(deltas, shape=deltas.shape[:-3] + (1, 1, 1)))
    scaled, scale = _unit_scale(deltas, 3)
    q_scaled, _ = _unit_scale(q, 2)  # P̃ does not depend on the scale of Q
    return _scaled_back(ssp_step(q_scaled, scaled, **options), scale)


def svd_compress(deltas, rank):
    """SVD-COMP of Algorithm 1: the optimal rank-r compressor of the node average.

    Parameters
    ----------
    deltas : array, shape (..., N, m, n)
        float32 or float64, finite, N ≥ 1.
    rank : int, 1 ≤ rank ≤ min(m, n)

    Returns
    -------
    q, local_hat, global_hat
        As :func:`ssp_compress`, with P̃ = the first ``rank`` left singular vectors of
        (1/N) Σ_i Δ^{(i)}.

    Raises
    ------
    ValueError, FloatingPointError
        As :func:`ssp_compress` (scale-safe in the same way).
    """
    deltas = _check_deltas(deltas)
    rank = check_int("rank", rank, 1, min(deltas.shape[-2:]))
    scaled, scale = _unit_scale(deltas, 3)
    return _scaled_back(svd_step(scaled, rank), scale)


def _check_finite_array(name, value, dtype):
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real array, got {type(value).__name__} ({err})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real array, got dtype {array.dtype}")
    with np.errstate(over="ignore"):
        array = array.astype(dtype, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} must be finite in {dtype.name}: it holds {int((~np.isfinite(array)).sum())} NaN/inf"
        )
    return array


def _check_deltas(deltas):
    array = np.asarray(deltas) if not isinstance(deltas, np.ndarray) else deltas
    if array.ndim < 3:
        raise ValueError(f"deltas must have shape (..., N, m, n), got {array.dtype} {array.shape}")
    if array.dtype.kind == "f":
        check_float_dtype("deltas.dtype", array.dtype)
    else:
        raise ValueError(f"deltas must be a float32 or float64 array, got dtype {array.dtype}")
    if min(array.shape) < 1:
        raise ValueError(f"deltas must have N ≥ 1 nodes, m, n ≥ 1 and no empty axis, got shape {array.shape}")
    return _check_finite_array("deltas", array, array.dtype)


def _unit_scale(array, axes):
    """``array`` divided by a power of two per leading index, so that max|entry| ∈ [1, 2); and that power.

    (Not [½, 1): 2^1024, which that would need for entries above 2^1023, is not a float.)
    """
    amax = np.max(np.abs(array), axis=tuple(range(-axes, 0)), keepdims=True)
    scale = np.ldexp(np.ones_like(amax), np.frexp(amax)[1] - 1)  # amax / 2^(e−1) ∈ [1, 2); 0 -> ½
    return array / scale, scale


def _scaled_back(out: Compressed, scale):
    with np.errstate(over="ignore"):
        q, local_hat, global_hat = (
            out.q * scale[..., 0],
            out.local_hat * scale,
            out.global_hat * scale[..., 0],
        )
    if not (np.isfinite(q).all() and np.isfinite(local_hat).all() and np.isfinite(global_hat).all()):
        raise FloatingPointError(
            "the compressed Δ is beyond the float range of its dtype (inputs within √(mn) of it)"
        )
    return q, local_hat, global_hat
