"""The family of problems the search runs over: the general counterexample in general position.

f_i(X) = Σ_j φ_κ(⟨A_j, X⟩) + ⟨H_i, X⟩ with Σ_i H_i = 0 (so f = Σ_j φ_κ(⟨A_j, X⟩)), and
∇F_i(X; ξ) = ∇f_i(X) + ξ (σ_i B − ∇f(X)), E ξ = 0, Var ξ = 1. Here

* A_j = 2 u_{k+j} v_{k+j}ᵀ and B = 2 Σ_{j<k} u_j v_jᵀ with Haar-random orthogonal U, V
  (``basis_seed``): signal and noise in orthogonal subspaces, written in a random basis;
* φ_κ(x) = x² for |x| ≤ κ, 2κ|x| − κ² beyond (ψ is κ = 1): 2-smooth, |φ_κ'| ≤ 2κ;
* ξ Rademacher (the paper's), standard normal, or uniform on [−√3, √3];
* σ_i per node and a heterogeneous linear term H_i of size ``heterogeneity``.

Assumptions 1–3 hold: f is L-smooth with L = 2·||A_j||² = 8, the oracle is unbiased with
variance ≤ 4σ_max²k + 16k·κ² + ||H_i||², and ||∇f||² ≤ 16κ²k.
"""

from __future__ import annotations

import copy

import numpy as np

from simsgd.ops import array_ops

NOISES = ("rademacher", "normal", "uniform")


def _haar(size, rng):
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


class SearchProblem:
    """One instance of the family (see the module docstring); the oracle protocol of
    :mod:`simsgd.problems`.

    Parameters
    ----------
    m, n, k : int, 1 ≤ k, 2k ≤ min(m, n)
    sigmas : sequence of N floats ≥ 0
    kink : float > 0, κ
    noise : {"rademacher", "normal", "uniform"}
    heterogeneity : float ≥ 0
    basis_seed : int ≥ 0
    x0_scale : float
        ⟨A_j, X_0⟩ = 2·x0_scale before the perturbation.
    x0_noise : float ≥ 0
        X_0 += x0_noise·G with a Gaussian G drawn from ``x0_seed``.
    x0_seed : int ≥ 0
    """

    L = 8.0
    f_star = 0.0

    def __init__(
        self,
        m,
        n,
        k,
        sigmas,
        kink=1.0,
        noise="rademacher",
        heterogeneity=0.0,
        basis_seed=0,
        x0_scale=1.0,
        x0_noise=0.0,
        x0_seed=0,
    ):
        if not (k >= 1 and 2 * k <= min(m, n)):
            raise ValueError(f"need 1 ≤ k and 2k ≤ min(m, n), got m={m}, n={n}, k={k}")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        self.shape, self.k, self.kink, self.noise = (m, n), k, float(kink), noise
        self.sigmas = np.asarray(sigmas, dtype=np.float64)
        self.nodes = self.sigmas.size
        rng = np.random.default_rng(basis_seed)
        u, v = _haar(m, rng), _haar(n, rng)
        self.A = np.stack([2 * np.outer(u[:, k + j], v[:, k + j]) for j in range(k)])
        self.B = 2 * sum(np.outer(u[:, j], v[:, j]) for j in range(k))
        h = rng.standard_normal((self.nodes, m, n))
        self.H = heterogeneity * (h - h.mean(0)) / np.sqrt(m * n)
        x0 = x0_scale * sum(np.outer(u[:, k + j], v[:, k + j]) for j in range(k))  # ⟨A_j, X_0⟩ = 2·scale
        x0 = x0 + x0_noise * np.random.default_rng([x0_seed, 1]).standard_normal((m, n))
        self.x0 = x0
        self.omega_sq = 16.0 * self.kink**2 * k
        self.variance = float(4 * self.sigmas.max() ** 2 * k + self.omega_sq + (self.H**2).sum((1, 2)).max())

    def rotated(self, seed):
        """The instance under X ↦ R_m X R_nᵀ (Haar-random R_m, R_n from ``seed``): A_j, B, H_i
        and X_0 rotated together, so that f, the oracle's law and ||∇f(X_0)|| are unchanged.

        Parameters
        ----------
        seed : int ≥ 0

        Returns
        -------
        SearchProblem
        """
        rng = np.random.default_rng([seed, 2])
        rm, rn = _haar(self.shape[0], rng), _haar(self.shape[1], rng)
        out = copy.copy(self)
        out.A, out.B = rm @ self.A @ rn.T, rm @ self.B @ rn.T
        out.H, out.x0 = rm @ self.H @ rn.T, rm @ self.x0 @ rn.T
        return out

    # The oracles are written against simsgd.ops.array_ops, so NumPy and torch run them alike.
    def _inner(self, x):
        xp = array_ops(x)
        return xp.einsum("kij,...ij->...k", xp.asarray(self.A, like=x), x)

    def loss(self, x):
        xp = array_ops(x)
        s = xp.abs(self._inner(x))
        return xp.where(s <= self.kink, s * s, 2 * self.kink * s - self.kink**2).sum(-1)

    def grad(self, x):
        xp = array_ops(x)
        slope = 2 * xp.clip(self._inner(x), -self.kink, self.kink)
        return xp.einsum("...k,kij->...ij", slope, xp.asarray(self.A, like=x))

    def stochastic_grads(self, x, nodes, rng):
        if nodes != self.nodes:
            raise ValueError(f"nodes must equal {self.nodes} (one σ_i per node), got {nodes}")
        xp = array_ops(x)
        if self.noise == "rademacher":
            xi = rng.rademacher()
        elif self.noise == "normal":
            xi = rng.normal()
        else:
            xi = (2 * rng.uniform() - 1) * np.sqrt(3.0)
        grad = self.grad(x)[..., None, :, :]
        sigma = xp.asarray(self.sigmas[rng.node_ids][:, None, None] * self.B, like=x)
        xi = xp.asarray(xi, like=x)[..., None, None]
        return grad + xp.asarray(self.H[rng.node_ids], like=x) + xi * (sigma - grad)
