"""The bases of PowerSGD+'s restarts in the DDP hook: exact SVD and a randomized range finder.

A restart needs P̃, the first r left singular vectors of the node average Δ̄ of each matrix.

- ``"svd"``: Δ̄ is all-reduced (m n floats), and P̃ comes from its SVD, in at least float32
  (CUDA has no half-precision SVD, and half precision would lose the basis anyway).
- ``"randomized"``: the range finder of Halko, Martinsson and Tropp (2011, Alg. 4.4) on Δ̄,
  with k = r + p columns (oversampling p) and K power steps. Δ̄ is only touched through the
  products Δ̄ Z and Δ̄ᵀ Y, which the nodes all-reduce: m k floats for the sketch, (m + n) k
  per power step and n k for the final projection, (K + 1)(m + n) k in all instead of m n.
  The final projection Z = Δ̄ᵀ Y also gives Q = Δ̄ᵀ P̃ = Z U_r without an all-reduce.

Every function here works on lists of (b, m, n) batches, so a bucket's matrices share
each all-reduce. A factorisation that fails (LAPACK does not converge, or returns a
non-finite basis) raises :class:`FactorizationError`; the hook then falls back (see
``PowerSGDPlusState``).
"""

from __future__ import annotations

import torch

__all__ = ["RESTART_METHODS", "FactorizationError", "svd_basis", "randomized_basis", "restart_floats"]

RESTART_METHODS = ("svd", "randomized")


class FactorizationError(RuntimeError):
    """An SVD failed or gave a non-finite result."""


def _svd(matrices):
    """``torch.linalg.svd`` (reduced); a module function so that tests can make it fail."""
    return torch.linalg.svd(matrices, full_matrices=False)


def _left_singular(matrices):
    try:
        u = _svd(matrices)[0]
    except RuntimeError as exc:  # torch.linalg.LinAlgError is a RuntimeError
        raise FactorizationError(f"SVD failed: {exc}") from exc
    if not torch.isfinite(u).all():
        raise FactorizationError("SVD returned a non-finite basis")
    return u


def svd_basis(mean, rank):
    """P̃ (b, m, r): the first ``rank`` left singular vectors of each matrix of ``mean`` (b, m, n).

    Computed in float32 when ``mean`` is in half precision, returned in ``mean``'s dtype.
    """
    work = mean if mean.dtype in (torch.float32, torch.float64) else mean.float()
    return _left_singular(work)[..., :rank].to(mean.dtype)


def _orthonormal(y):
    return torch.linalg.qr(y)[0]


def randomized_basis(product, product_t, omegas, rank, power_steps):
    """P̃ and Q = Δ̄ᵀ P̃ of each batch by a randomized range finder on Δ̄.

    Parameters
    ----------
    product, product_t : callable
        ``product([Z (b, n, k)]) -> [Δ̄ Z (b, m, k)]`` and ``product_t([Y]) -> [Δ̄ᵀ Y]``:
        node-averaged products (all-reduces in the hook; plain products on a known Δ̄).
    omegas : list of Tensor (b, n, k)
        The test matrices, the same on every node; k = r + p.
    rank : int
        r.
    power_steps : int ≥ 0
        K; each costs one ``product`` and one ``product_t``.

    Returns
    -------
    ps, qs : lists of Tensor (b, m, r) and (b, n, r)
    fallback : bool
        Whether the small SVD of ZᵀY failed, so P̃ is the first r columns of the range
        basis (still orthonormal, and Q = Δ̄ᵀ P̃ still exact).
    """
    ys = [_orthonormal(y) for y in product(omegas)]
    for _ in range(power_steps):
        zs = [_orthonormal(z) for z in product_t(ys)]
        ys = [_orthonormal(y) for y in product(zs)]
    zs = product_t(ys)  # Δ̄ᵀ Y, so Yᵀ Δ̄ = Zᵀ = U Σ Vᵀ and P̃ = Y U_r
    try:
        us = [_left_singular(z.transpose(1, 2))[..., :rank] for z in zs]
    except FactorizationError:
        return [y[..., :rank] for y in ys], [z[..., :rank] for z in zs], True
    return [y @ u for y, u in zip(ys, us)], [z @ u for z, u in zip(zs, us)], False


def restart_floats(method, m, n, rank, oversampling=0, power_steps=1, minimal=True):
    """Floats one node sends for one m×n matrix at a restart.

    m n (+ n r for Q unless ``minimal``) for ``"svd"``; (K + 1)(m + n) k with
    k = min(r + p, m, n) for ``"randomized"``.
    """
    if method == "svd":
        return m * n + (0 if minimal else n * rank)
    k = min(rank + oversampling, m, n)
    return (power_steps + 1) * (m + n) * k
