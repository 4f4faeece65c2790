"""Algorithm 1: the rank-r SSP and SVD compressors, for N nodes at once.

Arrays carry the node axis explicitly: ``deltas`` is (..., N, m, n), with any leading
replica axes. A node average is ``ops.node_mean`` (a mean over axis -3 here, an
``all_reduce`` in the torch backend).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ._checks import check_choice, check_float_dtype, check_int, check_real
from .ops import NUMPY
from .options import DEGENERATE_QR, ORTHOGONALIZATIONS
from .orthogonalize import orthogonalize_checked

__all__ = [
    "Compressed",
    "ssp_compress",
    "svd_compress",
    "ssp_step",
    "svd_step",
    "project",
    "power_iteration_step",
    "restart_step",
    "restart_sketch_shape",
    "restart_floats",
    "RestartKind",
    "RESTART_KINDS",
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
        Where QR(P) met a P that is rank-deficient relative to its inputs (SSP only; see
        :mod:`simsgd.orthogonalize`).
    degenerate_own_scale : bool array (...) or None
        The second reading: rank-deficient relative to P's own size.
    q_negligible : bool array (...) or None
        Where Q_t is rounding noise (max|Q_t| ≤ max(m, n, r)·eps·m·mean_i max|Δ^{(i)}|, a
        bound on what its sums can round to; exactly 0 in exact arithmetic). The next SSP
        step's P = Δ Q_t is then numerically 0 too, however it compares with Q_t (SSP only).
    """

    q: object
    local_hat: object
    global_hat: object
    basis: object
    degenerate: object
    degenerate_own_scale: object = None
    q_negligible: object = None


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
    q_negligible=None,
    ops=NUMPY,
):
    """SSP-COMP(Q, Δ^{(1..N)}) with its diagnostics; see :func:`ssp_compress`.

    P's degeneracy is decided against its inputs, S = n²·√(mr)·mean_i max|Δ^{(i)}|·max|Q|
    (see :mod:`simsgd.orthogonalize`), and P counts as degenerate wherever
    ``q_negligible`` (...) says Q is rounding noise (``Compressed.q_negligible`` of the
    step that made it).
    """
    p = ops.node_mean(ops.matmul(deltas, q[..., None, :, :]))  # P = mean_i Δ^{(i)} Q, all-reduce mean
    m, n, r = deltas.shape[-2], deltas.shape[-1], q.shape[-1]
    delta_scale = ops.node_mean(ops.maxabs(deltas)[..., None, None])[..., 0, 0]  # all-reduce of one float
    input_scale = n * n * (m * r) ** 0.5 * delta_scale * ops.maxabs(q)  # ≥ n·||P||_F
    if q_negligible is not None:
        input_scale = ops.where(q_negligible, float("inf"), input_scale)
    out = orthogonalize_checked(
        p,
        method=orthogonalization,
        epsilon=orthogonalization_epsilon,
        previous=previous_basis,
        degenerate_qr=degenerate_qr,
        input_scale=input_scale,
        ops=ops,
    )
    q_new, local_hat, global_hat = project(out.basis, deltas, want_local=want_local, ops=ops)
    negligible = ops.maxabs(q_new) <= max(m, n, r) * ops.eps(p) * m * delta_scale
    return Compressed(
        q_new, local_hat, global_hat, out.basis, out.degenerate, out.degenerate_own_scale, negligible
    )


def svd_step(deltas, rank, *, want_local=True, ops=NUMPY):
    """SVD-COMP(Δ^{(1..N)}) with its diagnostics; see :func:`svd_compress`."""
    basis = ops.top_left_singular_vectors(ops.node_mean(deltas), rank)  # all-reduce of full Δ
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, None)


def _sketch_width(options, m, n):
    return min(options.rank + options.restart_oversampling, m, n)


def _svd_restart(deltas, options, sketch, want_local, ops):
    return svd_step(deltas, options.rank, want_local=want_local, ops=ops)


def _random_restart(deltas, options, sketch, want_local, ops):
    basis = ops.qr(sketch)[0]
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, None)


def _power_restart(deltas, options, sketch, want_local, ops):
    return power_iteration_step(
        sketch,
        deltas,
        options.restart_power_steps,
        orthogonalization=options.orthogonalization,
        degenerate_qr="native",
        want_local=want_local,
        ops=ops,
    )._replace(degenerate=None, degenerate_own_scale=None, q_negligible=None)


def _randomized_restart(deltas, options, sketch, want_local, ops):
    # Halko, Martinsson & Tropp (2011), Alg. 4.4 then 5.1, on the node average Δ̄
    y = ops.qr(ops.node_mean(ops.matmul(deltas, sketch[..., None, :, :])))[0]  # (..., m, ℓ)
    for _ in range(options.restart_power_steps):
        z = ops.qr(ops.node_mean(ops.matmul(deltas.mT, y[..., None, :, :])))[0]  # (..., n, ℓ)
        y = ops.qr(ops.node_mean(ops.matmul(deltas, z[..., None, :, :])))[0]
    small = ops.node_mean(ops.matmul(y[..., None, :, :].mT, deltas))  # (..., ℓ, n) = Q_yᵀ Δ̄
    basis = ops.matmul(y, ops.top_left_singular_vectors(small, options.rank))
    return Compressed(*project(basis, deltas, want_local=want_local, ops=ops), basis, None)


class RestartKind(NamedTuple):
    """One of PowerSGD+'s restart compressors (Remark 2), as three functions of the options
    (an object with ``rank``, ``restart_oversampling``, ``restart_power_steps`` and
    ``orthogonalization``, e.g. :class:`simsgd.algorithm.Config`) and the shape (m, n).

    Attributes
    ----------
    sketch_shape : callable (options, m, n) -> tuple or None
        Per-replica shape of the random matrix it needs (the same on every node), or None.
    floats : callable (options, m, n) -> int
        Floats one node sends at a restart (the literal all-reduces, as Table 2 counts).
    step : callable (deltas, options, sketch, want_local, ops) -> Compressed
        The restart on Δ^{(1..N)} (..., N, m, n). Each result is P̃P̃ᵀ of an orthonormal P̃,
        so Lemma 1 holds for all; how close P̃ gets to the top-r singular subspace (Lemma 2's
        δ') is what differs, and what ``Trace.restart_residual`` measures.
    """

    sketch_shape: Callable
    floats: Callable
    step: Callable


RESTART_KINDS: dict[str, RestartKind] = {
    # the paper's: the exact top-r SVD of the node average; mn (Δ^{(i)}) + nr (Q)
    "svd": RestartKind(lambda o, m, n: None, lambda o, m, n: m * n + n * o.rank, _svd_restart),
    # a Halko–Martinsson–Tropp range finder: mℓ (ΔΩ) + K(n + m)ℓ (power steps) + nℓ (Q_yᵀΔ) + nr (Q)
    "randomized": RestartKind(
        lambda o, m, n: (n, _sketch_width(o, m, n)),
        lambda o, m, n: (
            m * _sketch_width(o, m, n)
            + o.restart_power_steps * (m + n) * _sketch_width(o, m, n)
            + n * _sketch_width(o, m, n)
            + n * o.rank
        ),
        _randomized_restart,
    ),
    # a fresh Gaussian basis P̃ (m, r): only Q is sent, nr
    "random": RestartKind(lambda o, m, n: (m, o.rank), lambda o, m, n: n * o.rank, _random_restart),
    # K power steps from a Gaussian Q (n, r): K(m + n)r
    "power": RestartKind(
        lambda o, m, n: (n, o.rank), lambda o, m, n: o.restart_power_steps * (m + n) * o.rank, _power_restart
    ),
}
"""The restart compressors by name (the ``restart`` option); add an entry to add one."""


def restart_sketch_shape(options, m, n):
    """Per-replica shape of the random matrix :func:`restart_step` needs: Ω (n, ℓ) with
    ℓ = min(r + p, m, n) for "randomized", P̃'s Gaussian start (m, r) for "random", Q's
    (n, r) for "power", None for "svd".
    """
    return RESTART_KINDS[options.restart].sketch_shape(options, m, n)


def restart_floats(options, m, n):
    """Floats one node sends at a restart step (the literal all-reduces, as Table 2 counts).

    "svd": mn (Δ^{(i)}) + nr (Q); "randomized": mℓ (ΔΩ) + K(n + m)ℓ (power steps) + nℓ
    (Q_yᵀΔ) + nr (Q); "random": nr (Q only); "power": K(m + n)r.
    """
    return RESTART_KINDS[options.restart].floats(options, m, n)


def restart_step(deltas, options, sketch, *, want_local=True, ops=NUMPY):
    """PowerSGD+'s restart compressor ``options.restart`` on Δ^{(1..N)} (..., N, m, n).

    ``sketch`` is the per-replica random matrix of :func:`restart_sketch_shape`, the same
    on every node (None for "svd"); see :class:`RestartKind`.
    """
    kind = RESTART_KINDS[options.restart]
    if sketch is None and kind.sketch_shape(options, *deltas.shape[-2:]) is not None:
        raise ValueError(f"restart={options.restart!r} needs a random sketch of restart_sketch_shape")
    return kind.step(deltas, options, sketch, want_local, ops)


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
    q_negligible=None,
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
    previous_basis, orthogonalization, orthogonalization_epsilon, degenerate_qr, want_local, q_negligible
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
            q_negligible=q_negligible,
            ops=ops,
        )
        q, previous_basis, q_negligible = out.q, out.basis, out.q_negligible
        if degenerate is None:
            degenerate, own = out.degenerate, out.degenerate_own_scale
        else:
            degenerate, own = degenerate | out.degenerate, own | out.degenerate_own_scale
    return out._replace(degenerate=degenerate, degenerate_own_scale=own)


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
