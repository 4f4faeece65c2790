"""The 2×2 counterexample of Theorem 1, eq. (10), in any orthonormal basis."""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_int, check_real
from ..ops import array_ops

__all__ = ["Psi2x2", "psi", "psi_prime", "BASES", "check_noise_scale", "MAX_NOISE_SCALE"]

BASES = ("paper", "aligned", "random")

_D = np.array([1.0, -1.0])
_A = np.outer(_D, _D)  # D Dᵀ = [[1, -1], [-1, 1]]
_B = np.ones((2, 2))  # [[1, 1], [1, 1]]
# Rows c = (1, 1)/√2 and d = (1, -1)/√2: U B Uᵀ = diag(2, 0), U A Uᵀ = diag(0, 2).
_ALIGN = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)


def psi(x):
    """ψ(x) = x² for |x| ≤ 1, 2|x| − 1 otherwise (NumPy array or torch tensor)."""
    xp = array_ops(x)
    ax = xp.abs(x)
    return xp.where(ax <= 1, x * x, 2 * ax - 1)


def psi_prime(x):
    """ψ'(x) = 2x for |x| ≤ 1, 2 sign(x) otherwise (|ψ'| ≤ 2, ψ'' ≤ 2)."""
    return 2 * array_ops(x).clip(x, -1.0, 1.0)


MAX_NOISE_SCALE = 1e150
"""Largest σ accepted: 4σ²k + 16k (Assumption 2's variance) stays finite in float64."""


def check_noise_scale(value) -> tuple[float, np.ndarray | None]:
    """σ as (σ_max, per-node array or None): a scalar (every node) or one σ_i per node.

    Raises
    ------
    ValueError
        A σ_i that is not finite, negative, or above :data:`MAX_NOISE_SCALE` (where the
        variance 4σ² + 16 would overflow), or an empty list.
    """
    if np.ndim(value) == 0:
        return check_real("noise_scale", value, 0.0, MAX_NOISE_SCALE), None
    values = list(np.ravel(np.asarray(value, dtype=object)))
    if not values:
        raise ValueError("noise_scale must be a real number or a non-empty list of σ_i in [0, 1e150]")
    sigmas = np.array(
        [check_real(f"noise_scale[{i}]", v, 0.0, MAX_NOISE_SCALE) for i, v in enumerate(values)]
    )
    return float(sigmas.max()), sigmas


def _per_node_scale(problem, nodes, draws):
    """σ of the nodes ``draws.node_ids``: a scalar, or (N_local, 1, 1) for per-node σ_i."""
    if problem.noise_scales is None:
        return problem.noise_scale
    if nodes != problem.noise_scales.size:
        raise ValueError(
            f"nodes must equal len(noise_scale) = {problem.noise_scales.size} for per-node σ, got {nodes}"
        )
    return problem.noise_scales[draws.node_ids][:, None, None]


def _random_orthogonal(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((2, 2)))
    return q * np.sign(np.diag(r))


class Psi2x2:
    """f_i(X) = ψ(Dᵀ X D + s), ∇F(X; ξ) = ∇f(X) + ξ (σB − ∇f(X)), ξ ∈ {−1, +1} (eq. 10 for s = 0).

    The problem may be written in another orthonormal basis, X' = U X Vᵀ: then
    A' = U A Vᵀ, B' = U B Vᵀ and f'(X') = ψ(⟨A', X'⟩). ``"aligned"`` makes A and B
    diagonal (B' = diag(2, 0), A' = diag(0, 2)), so zeros stay exact in floating point.

    Parameters
    ----------
    noise_scale : float or sequence of N floats, σ_i in [0, 1e150]
        One σ for every node, or σ_i per node (the list fixes N: ``simulate(nodes=...)``
        must match). Unequal σ_i with no vanishing signed sum Σ ±σ_i make P_t ≠ 0 under
        the lock for every ξ, so even N needs no QR(0) convention.
    x0 : array_like (2, 2), optional
        X_0 in this problem's basis. Default: the paper-basis point I₂ rotated into
        this basis, where Dᵀ X_0 D = 2 and ||∇f(X_0)||² = 16.
    basis : {"paper", "aligned", "random"}
    basis_seed : int
        Seed of the random rotation (``basis="random"``).
    lock_start : bool
        Force ξ_0^{(i)} = 1 on every node (the event of Claim 1, probability 2^(−N)).
    shift : float
        s of ψ_s(x) = ψ(x + s): the minimisers move from ⟨A, X⟩ = 0 (eq. 10) to
        ⟨A, X⟩ = −s. L, ω², the variance and Claim 1 are unchanged (∇f(X) = ψ'(⟨A, X⟩ + s) A
        stays in span(A)). With s = 2 and the default X_0 (⟨A, X_0⟩ = 2), X = 0 — the fixed
        point of decoupled weight decay — has ||∇f||² = 16: AdamW's decay cannot release the
        lock there, as it does on eq. (10) (``counterexamples/any_optimizer``).

    Attributes
    ----------
    A, B : (2, 2)
        A = DDᵀ and B in this basis; ∇f(X) = ψ'(⟨A, X⟩) A.
    C : (2,)
        The lock direction of Claim 1 (B = 2 C Cᵀ).
    L : float
        Smoothness constant, 2 ||A||_F² = 8.
    f_star : float
        min f = 0 (at ⟨A, X⟩ = −s).
    omega_sq : float
        sup ||∇f||² = 16 (Assumption 3).
    variance : float
        sup_X E||∇F − ∇f_i||² = 4σ_max² + 16 (Assumption 2; ⟨A, B⟩ = 0).
    shift : float
        s.
    noise_scale : float
        σ_max (σ itself for a scalar).
    noise_scales : (N,) array or None
        The per-node σ_i, None for a scalar σ.
    nodes : int or None
        N fixed by a per-node σ (None: any N).
    """

    shape = (2, 2)

    def __init__(
        self,
        noise_scale: float = 5.0,
        x0=None,
        basis: str = "paper",
        basis_seed: int = 0,
        lock_start: bool = False,
        shift: float = 0.0,
    ):
        self.noise_scale, self.noise_scales = check_noise_scale(noise_scale)
        self.shift = check_real("shift", shift)
        self.nodes = None if self.noise_scales is None else self.noise_scales.size
        self.basis = check_choice("basis", basis, BASES)
        check_int("basis_seed", basis_seed, 0)
        if basis == "paper":
            u = v = np.eye(2)
        elif basis == "aligned":
            u = v = _ALIGN
        else:
            rng = np.random.default_rng(basis_seed)
            u, v = _random_orthogonal(rng), _random_orthogonal(rng)
        self.U, self.V = u, v
        if basis == "aligned":  # exact zeros: rounding U A Uᵀ would leave ~1e-16 off the diagonal
            self.A, self.B, self.C = np.diag([0.0, 2.0]), np.diag([2.0, 0.0]), np.array([1.0, 0.0])
        else:
            self.A, self.B = u @ _A @ v.T, u @ _B @ v.T
            self.C = u @ np.array([1.0, 1.0]) / np.sqrt(2.0)
        if x0 is None:
            x0 = np.eye(2) if basis == "aligned" else u @ np.eye(2) @ v.T
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.shape != (2, 2) or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be a finite 2×2 array, got shape {x0.shape}")
        self.x0 = x0
        self.lock_start = bool(lock_start)
        self.L, self.f_star, self.omega_sq = 8.0, 0.0, 16.0
        self.variance = 4.0 * self.noise_scale**2 + 16.0

    def to_paper_basis(self, x):
        """X in the paper's basis: Uᵀ X V."""
        return self.U.T @ x @ self.V

    def _inner(self, x):
        xp = array_ops(x)
        return xp.einsum("ij,...ij->...", xp.asarray(self.A, like=x), x)

    def _argument(self, x):
        """ψ's argument ⟨A, X⟩ + s (adding s = 0 leaves eq. (10)'s numbers unchanged)."""
        return self._inner(x) + self.shift

    def loss(self, x):
        return psi(self._argument(x))

    def grad(self, x):
        return psi_prime(self._argument(x))[..., None, None] * array_ops(x).asarray(self.A, like=x)

    def epsilon0(self, nodes: int) -> float:
        """ε₀ = 4 ψ'(Dᵀ X_0 D + s)² / 2^N of Theorem 1 (the statement's [ψ']²/2^(N−2))."""
        # 2.0**N overflows at N = 1024
        return float(4.0 * psi_prime(self._argument(self.x0)) ** 2 * 2.0**-nodes)

    def stochastic_grads(self, x, nodes, rng, grad=None):
        """(10b): g^{(i)} = ∇f(X) + ξ^{(i)} (σ B − ∇f(X)); ``grad`` is ∇f(X) if the caller has it."""
        xp = array_ops(x)
        # (R, 1, 2, 2) and (R, N_local, 1, 1) laid out as the engine holds per-node arrays
        # (replicas fastest, NumpyOps.node_layout), so the (R, N_local, 2, 2) result is too:
        # NumPy's broadcasting then runs long loops over R (2× faster) and needs no copy.
        grad = xp.node_layout((self.grad(x) if grad is None else grad)[..., None, :, :])
        xi = rng.rademacher()  # (R, N_local)
        if self.lock_start and rng.step == 0:
            xi = xp.ones_like(xi)
        xi = xp.node_layout(xp.asarray(xi, like=x)[..., None, None])
        sigma = _per_node_scale(self, nodes, rng)
        return grad + xi * (xp.asarray(sigma * self.B, like=x) - grad)
