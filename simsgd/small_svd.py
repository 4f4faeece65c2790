"""The left singular vectors of 2×n matrices in closed form, written once for every array library.

PowerSGD+'s restart (SVD-COMP) needs the top-r left singular vectors of the node-averaged Δ̄.
For m = 2 they follow from the 2×2 matrix S = Δ̄ Δ̄ᵀ without an iterative SVD: LAPACK's batched
SVD of 10⁵ tiny matrices costs more than a whole τ = 10 cycle of the rest of Algorithm 2. The
formula is written against :class:`simsgd.ops.ArrayOps` (``maxabs``, ``where``, ``zeros_like``,
arithmetic, ``** 0.5`` — a square root in NumPy, torch and :mod:`simsgd.lanes` alike), so the NumPy,
torch and replicas-innermost engines compute the same numbers from the same operations.
"""

from __future__ import annotations

__all__ = ["top_left_singular_vectors_2xn"]


def top_left_singular_vectors_2xn(d, rank, ops):
    """The first ``rank`` left singular vectors of 2×n matrices: (..., 2, n) -> (..., 2, rank).

    u₁ is the top eigenvector of S = D Dᵀ = [[a, b], [b, c]], taken as the longer of the two
    eigenvector candidates (b, λ₁ − a) and (λ₁ − c, b), which keeps it exact when S is
    diagonal; u₂ = (−u₁₂, u₁₁). When S ∝ I (both candidates zero) u₁ = e₁. Computed on
    D / max|D_ij| so that neither S nor λ₁ overflows or underflows; the sums over the n
    columns run in column order.

    Singular vectors are determined up to sign only: LAPACK may return −u where this returns u
    (P̃Qᵀ, and so X_t, do not depend on the sign).
    """
    if d.shape[-2] != 2 or not 1 <= rank <= min(2, d.shape[-1]):
        raise ValueError(f"need (..., 2, n) and 1 ≤ rank ≤ min(2, n); got shape {d.shape}, rank {rank}")
    scale = ops.maxabs(d)[..., None, None]
    d = d / ops.where(scale == 0, 1, scale)
    top, bottom = d[..., 0, :], d[..., 1, :]
    a = top[..., 0] * top[..., 0]
    c = bottom[..., 0] * bottom[..., 0]
    b = top[..., 0] * bottom[..., 0]
    for j in range(1, d.shape[-1]):
        a = a + top[..., j] * top[..., j]
        c = c + bottom[..., j] * bottom[..., j]
        b = b + top[..., j] * bottom[..., j]
    half = (a - c) / 2
    lam = (a + c) / 2 + (half * half + b * b) ** 0.5
    v1x, v1y, v2x, v2y = b, lam - a, lam - c, b
    n1, n2 = v1x * v1x + v1y * v1y, v2x * v2x + v2y * v2y
    first = n1 > n2
    x = ops.where(first, v1x, v2x)
    y = ops.where(first, v1y, v2y)
    norm = ops.where(first, n1, n2) ** 0.5
    zero = norm == 0
    safe = ops.where(zero, 1, norm)
    ux = ops.where(zero, 1, x / safe)
    uy = ops.where(zero, 0, y / safe)
    u = ops.zeros_like(d[..., :, :rank])
    u[..., 0, 0], u[..., 1, 0] = ux, uy
    if rank == 2:
        u[..., 0, 1], u[..., 1, 1] = -uy, ux
    return u
