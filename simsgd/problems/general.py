"""The general m×n counterexample: a rank-k signal and a stronger rank-k noise in
orthogonal subspaces, with the 2×2 ψ example of eq. (10) as its smallest case.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_int, check_memory
from ..ops import array_ops
from .psi import Psi2x2, check_noise_scale, psi, psi_prime

__all__ = ["GeneralCounterexample", "GENERAL_BASES"]

GENERAL_BASES = ("aligned", "random")


def _random_orthogonal(size: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


class GeneralCounterexample:
    """f_i(X) = Σ_j ψ(⟨A_j, X⟩), ∇F(X; ξ) = ∇f(X) + ξ (σB − ∇f(X)), ξ ∈ {−1, +1}.

    In the aligned basis (k = ``signal_rank``) the noise sits on the first k diagonal
    entries, B = 2 Σ_{j<k} e_j e_jᵀ, and the signal on the next k, A_j = 2 e_{k+j} e_{k+j}ᵀ,
    so the column and row spaces of signal and noise are orthogonal and zeros stay exact
    in floating point. With m = n = 2 and k = 1 this is
    ``Psi2x2(basis="aligned")`` draw for draw. ``basis="random"`` writes the same problem
    as X' = U X Vᵀ with seeded Haar-random orthogonal U (m×m), V (n×n). One sign ξ^{(i)}
    per node and step multiplies all k noise directions, as in (10b).

    Parameters
    ----------
    m, n : int, ≥ 2k
    signal_rank : int, k ≥ 1
    noise_scale : float or sequence of N floats, σ_i in [0, 1e150]
        One σ for every node or σ_i per node, as :class:`Psi2x2`.
        ||σB||_F = 2σ√k against ||∇f||_F ≤ 4√k: the noise is stronger for σ > 2.
    basis : {"aligned", "random"}
    basis_seed : int ≥ 0
        Seed of U and V (``basis="random"``).
    x0 : array_like (m, n), optional
        X_0 in this problem's basis. Default: the rotated m×n identity, where every
        ⟨A_j, X_0⟩ = 2 and ||∇f(X_0)||² = 16k.
    lock_start : bool
        Force ξ_0^{(i)} = 1 on every node (Theorem 1's lock event, probability 2^(−N)).

    Attributes
    ----------
    U, V : (m, m), (n, n)
        The rotation from the aligned basis (identities for ``"aligned"``).
    A : (k, m, n)
        Signal directions; ∇f(X) = Σ_j ψ'(⟨A_j, X⟩) A_j.
    B : (m, n)
        Noise direction, rank k, ⟨A_j, B⟩ = 0.
    L : float
        Smoothness constant 2 ||A_j||_F² = 8 (the A_j are orthogonal).
    f_star : float
        min f = 0.
    omega_sq : float
        sup ||∇f||² = 16k (Assumption 3).
    variance : float
        sup_X E||∇F − ∇f_i||² = 4σ_max²k + 16k (Assumption 2).
    noise_scale, noise_scales, nodes
        σ_max, the per-node σ_i (or None) and the N they fix (or None), as :class:`Psi2x2`.
    """

    def __init__(
        self,
        m: int = 2,
        n: int = 2,
        signal_rank: int = 1,
        noise_scale: float = 5.0,
        basis: str = "aligned",
        basis_seed: int = 0,
        x0=None,
        lock_start: bool = False,
    ):
        k = check_int("signal_rank", signal_rank, 1)
        m, n = check_int("m", m, 2 * k), check_int("n", n, 2 * k)
        self.shape, self.signal_rank = (m, n), k
        self.noise_scale, self.noise_scales = check_noise_scale(noise_scale)
        self.nodes = None if self.noise_scales is None else self.noise_scales.size
        self.basis = check_choice("basis", basis, GENERAL_BASES)
        check_int("basis_seed", basis_seed, 0)
        # A (k, m, n), B, X_0, U (m, m), V (n, n) and the rotation's temporaries, before allocating them.
        check_memory(
            f"GeneralCounterexample({m}, {n}, {k})", 8.0 * (k + 4) * (m * n + m * m + n * n), "smaller m, n"
        )
        a = np.zeros((k, m, n))
        a[np.arange(k), k + np.arange(k), k + np.arange(k)] = 2.0
        b = np.zeros((m, n))
        b[np.arange(k), np.arange(k)] = 2.0
        x0_default = np.eye(m, n)
        u, v = np.eye(m), np.eye(n)
        if basis == "random":
            rng = np.random.default_rng(basis_seed)
            u, v = _random_orthogonal(m, rng), _random_orthogonal(n, rng)
            a, b, x0_default = u @ a @ v.T, u @ b @ v.T, u @ x0_default @ v.T
        self.U, self.V, self.A, self.B = u, v, a, b
        x0 = x0_default if x0 is None else np.asarray(x0, dtype=np.float64)
        if x0.shape != self.shape or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be a finite array of shape {self.shape}, got {x0.shape}")
        self.x0 = x0
        self.lock_start = bool(lock_start)
        self.L, self.f_star, self.omega_sq = 8.0, 0.0, 16.0 * k
        self.variance = 4.0 * self.noise_scale**2 * k + 16.0 * k

    def _inner(self, x):
        xp = array_ops(x)
        return xp.einsum("kij,...ij->...k", xp.asarray(self.A, like=x), x)

    def loss(self, x):
        """f(X): (...) for X of shape (..., m, n)."""
        return psi(self._inner(x)).sum(-1)

    def grad(self, x):
        """∇f(X): (..., m, n)."""
        xp = array_ops(x)
        return xp.einsum("...k,kij->...ij", psi_prime(self._inner(x)), xp.asarray(self.A, like=x))

    # (10b) with ξ^{(i)} shared by all k noise directions: the same oracle as Psi2x2.
    stochastic_grads = Psi2x2.stochastic_grads
