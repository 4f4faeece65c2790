"""A heterogeneous least-squares family with low-rank-plus-isotropic gradient noise."""

from __future__ import annotations

import numpy as np

from .._checks import check_int, check_memory, check_real, check_seed
from ..ops import array_ops

__all__ = ["HeterogeneousQuadratic"]

_SQRT_MAX = float(np.sqrt(np.finfo(np.float64).max))


class HeterogeneousQuadratic:
    """f_i(X) = ½ ||A_i X − B_i||_F², f = (1/N) Σ_i f_i, X ∈ R^{m×n}.

    A_i = I_m + h·G_i/√m and B_i = W_i with Gaussian G_i (m×m), W_i (m×n), drawn once
    from ``seed``; h (``heterogeneity``) controls how different the nodes are. The
    stochastic gradient of node i is

        ∇F(X; ξ) = ∇f_i(X) + a·(U Vᵀ)/√k + b·Z,

    with fresh Gaussian U (m×k), V (n×k), Z (m×n) at each step: a rank-k noise of
    scale a (``lowrank_noise``) plus an isotropic one of scale b (``noise``).

    Attributes
    ----------
    L : float
        λ_max(H), H = (1/N) Σ_i A_iᵀ A_i (∇f(X) = H X − (1/N) Σ_i A_iᵀ B_i).
    mu_strong : float
        λ_min(H).
    x_star : (m, n)
        The minimiser H⁻¹ (1/N) Σ_i A_iᵀ B_i.
    f_star : float
        f(x_star).
    variance : float
        E||∇F − ∇f_i||² = (a² + b²)·m·n exactly (Assumption 2 with equality).
    omega_sq : None
        sup ||∇f||² is unbounded on R^{m×n} (Assumption 3 holds only on a bounded region).
    """

    def __init__(
        self,
        m: int = 8,
        n: int = 6,
        nodes: int = 4,
        heterogeneity: float = 1.0,
        noise: float = 0.1,
        lowrank_noise: float = 1.0,
        noise_rank: int = 1,
        seed: int = 0,
        x0=None,
    ):
        m, n = check_int("m", m, 1), check_int("n", n, 1)
        self.nodes = check_int("nodes", nodes, 1)
        self.heterogeneity = check_real("heterogeneity", heterogeneity, 0.0)
        self.noise = check_real("noise", noise, 0.0)
        self.lowrank_noise = check_real("lowrank_noise", lowrank_noise, 0.0)
        self.noise_rank = check_int("noise_rank", noise_rank, 1, min(m, n))
        check_seed("seed", seed)
        # Up front, before drawing: the squares behind H, L and the variance must stay finite.
        if self.heterogeneity > _SQRT_MAX / (4.0 * m):
            raise ValueError(
                f"heterogeneity must be at most √(float max)/(4m) = {_SQRT_MAX / (4.0 * m):.3g} "
                f"(H = mean AᵢᵀAᵢ ∝ h² overflows beyond), got {self.heterogeneity!r}"
            )
        if max(self.noise, self.lowrank_noise) > _SQRT_MAX / (2.0 * np.sqrt(m * n)):
            raise ValueError(
                f"noise and lowrank_noise must be at most √(float max)/(2√(mn)) = "
                f"{_SQRT_MAX / (2.0 * np.sqrt(m * n)):.3g} (the variance (a² + b²)mn overflows beyond), "
                f"got noise={self.noise!r}, lowrank_noise={self.lowrank_noise!r}"
            )
        check_memory(
            f"HeterogeneousQuadratic({m}, {n}, nodes={self.nodes})",
            8.0 * self.nodes * (3.0 * m * m + 2.0 * m * n),
            "smaller m, n or nodes",
        )
        self.shape = (m, n)
        x0 = np.zeros((m, n)) if x0 is None else np.asarray(x0, dtype=np.float64)
        if x0.shape != self.shape:
            raise ValueError(f"x0 must have shape {self.shape}, got {x0.shape}")
        if not np.isfinite(x0).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(x0))[0])
            raise ValueError(f"x0 must be finite: x0{list(index)} = {float(x0[index])!r}")
        self.x0 = x0
        rng = np.random.default_rng(seed)
        self.A = np.eye(m) + self.heterogeneity * rng.standard_normal((self.nodes, m, m)) / np.sqrt(m)
        self.Bmat = rng.standard_normal((self.nodes, m, n))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            self.H = np.mean(self.A.mT @ self.A, axis=0)
            self.b = np.mean(self.A.mT @ self.Bmat, axis=0)
            finite = np.isfinite(self.H).all() and np.isfinite(self.b).all()
            eig = np.linalg.eigvalsh(self.H) if finite else np.full(m, np.inf)
            self.L, self.mu_strong = float(eig[-1]), float(eig[0])
            finite = finite and np.isfinite(eig).all() and self.mu_strong > 0
            self.x_star = np.linalg.solve(self.H, self.b) if finite else None
            self.f_star = float(self.loss(self.x_star)) if finite else np.inf
        if not (finite and np.isfinite(self.x_star).all() and np.isfinite(self.f_star)):
            raise ValueError(
                f"heterogeneity = {self.heterogeneity!r} is too large for this draw: H, X* or f* is not "
                "finite (or H is singular) in float64"
            )
        self.omega_sq = None  # sup ||∇f||² is unbounded on R^{m×n}: give a visited bound
        self.variance = (self.lowrank_noise**2 + self.noise**2) * m * n

    def local_loss(self, x, node_ids=None):
        """f_i(X) for the nodes ``node_ids``: (..., N_sel)."""
        a, b = self._nodes(node_ids, x)
        r = a @ x[..., None, :, :] - b
        return 0.5 * array_ops(x).einsum("...kij,...kij->...k", r, r)

    def loss(self, x):
        return self.local_loss(x).mean(-1)

    def local_grad(self, x, node_ids=None):
        """∇f_i(X) for the nodes ``node_ids``: (..., N_sel, m, n)."""
        a, b = self._nodes(node_ids, x)
        return a.mT @ (a @ x[..., None, :, :] - b)

    def grad(self, x):
        xp = array_ops(x)
        return xp.asarray(self.H, like=x) @ x - xp.asarray(self.b, like=x)

    def _nodes(self, node_ids, like):
        idx = slice(None) if node_ids is None else np.asarray(node_ids)
        xp = array_ops(like)
        return xp.asarray(self.A[idx], like=like), xp.asarray(self.Bmat[idx], like=like)

    def stochastic_grads(self, x, nodes, rng):
        if nodes != self.nodes:
            raise ValueError(f"nodes must equal the problem's nodes = {self.nodes}, got {nodes}")
        m, n = self.shape
        k = self.noise_rank
        g = self.local_grad(x, rng.node_ids)
        xp = array_ops(x)
        if self.lowrank_noise:
            u, v = rng.normal((m, k)), rng.normal((n, k))
            g = g + float(self.lowrank_noise / np.sqrt(k)) * xp.asarray(u @ v.mT, like=x)
        if self.noise:
            g = g + self.noise * xp.asarray(rng.normal((m, n)), like=x)
        return g
