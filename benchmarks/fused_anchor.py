"""The compute-limit anchor of ``bench_engine``: PowerSGD+ on ψ as one fused loop per replica (numba).

From ``../shared/reviews/fused_limit.py`` (the review that set the engine's goals): PowerSGD+
(r = 1, τ) with MSGD on ψ in the aligned basis, N nodes, one replica per iteration of the outer
loop and all its state in registers. Per replica-step: N Rademacher draws (one SplitMix64
finaliser each), N 2×2 stochastic gradients, error feedback, P = ΔQ, the node mean, its
normalisation, Q^{(i)} = Δ^{(i)ᵀ}P̃, the node mean, the error update and the MSGD step; at a restart
the top singular vectors of the mean Δ in closed form. No degeneracy test, no trace, no
finiteness check, and not the engines' random streams: a speed anchor, not bit-compatible.

Needs numba (``pip install '.[bench]'``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["run", "bytes_per_replica_step"]


@nb.njit(cache=False, fastmath=False, parallel=False)
def run(R, T, N, sigma, lr, mu, tau, seed):  # noqa: C901 (one fused loop, by design)
    """E||∇f(X_T)||² per replica, (R,)."""
    out = np.empty(R)
    for k in range(R):
        s = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(k)
        x00 = 1.0
        x01 = 0.0
        x10 = 0.0
        x11 = 1.0
        m00 = 0.0
        m01 = 0.0
        m10 = 0.0
        m11 = 0.0
        e = np.zeros((N, 4))
        D = np.empty((N, 4))
        q0 = 1.0
        q1 = 0.0
        for t in range(T):
            u = 2.0 * x11  # ∇f: A = diag(0, 2), <A, X> = 2 x11, ψ'(u) = 2 clip(u)
            d = 2.0 * min(max(u, -1.0), 1.0)
            g11 = 2.0 * d
            p0 = 0.0
            p1 = 0.0
            for i in range(N):
                s += np.uint64(0x9E3779B97F4A7C15)
                z = s
                z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                z = z ^ (z >> np.uint64(31))
                xi = 1.0 if (z >> np.uint64(63)) == np.uint64(1) else -1.0
                D[i, 0] = xi * sigma * 2.0 + e[i, 0]  # g = ∇f + ξ (σB − ∇f), B = diag(2, 0)
                D[i, 1] = e[i, 1]
                D[i, 2] = e[i, 2]
                D[i, 3] = g11 - xi * g11 + e[i, 3]
            if t % tau == 0:  # restart: the top right singular vector of mean Δ
                b00 = 0.0
                b01 = 0.0
                b10 = 0.0
                b11 = 0.0
                for i in range(N):
                    b00 += D[i, 0]
                    b01 += D[i, 1]
                    b10 += D[i, 2]
                    b11 += D[i, 3]
                b00 /= N
                b01 /= N
                b10 /= N
                b11 /= N
                c00 = b00 * b00 + b10 * b10
                c01 = b00 * b01 + b10 * b11
                c11 = b01 * b01 + b11 * b11
                tr = c00 + c11
                det = c00 * c11 - c01 * c01
                lam = 0.5 * tr + np.sqrt(max(0.25 * tr * tr - det, 0.0))
                if abs(c01) > 1e-300:
                    v0 = lam - c11
                    v1 = c01
                else:
                    v0 = 1.0 if c00 >= c11 else 0.0
                    v1 = 1.0 - v0
                nv = np.sqrt(v0 * v0 + v1 * v1)
                q0 = v0 / nv
                q1 = v1 / nv
            for i in range(N):
                p0 += D[i, 0] * q0 + D[i, 1] * q1
                p1 += D[i, 2] * q0 + D[i, 3] * q1
            p0 /= N
            p1 /= N
            nrm = np.sqrt(p0 * p0 + p1 * p1)
            if nrm > 0.0:
                p0 /= nrm
                p1 /= nrm
            nq0 = 0.0
            nq1 = 0.0
            for i in range(N):
                qi0 = D[i, 0] * p0 + D[i, 2] * p1
                qi1 = D[i, 1] * p0 + D[i, 3] * p1
                nq0 += qi0
                nq1 += qi1
                e[i, 0] = D[i, 0] - p0 * qi0
                e[i, 1] = D[i, 1] - p0 * qi1
                e[i, 2] = D[i, 2] - p1 * qi0
                e[i, 3] = D[i, 3] - p1 * qi1
            q0 = nq0 / N
            q1 = nq1 / N
            m00 = mu * m00 + p0 * q0
            m01 = mu * m01 + p0 * q1
            m10 = mu * m10 + p1 * q0
            m11 = mu * m11 + p1 * q1
            x00 -= lr * m00
            x01 -= lr * m01
            x10 -= lr * m10
            x11 -= lr * m11
        u = 2.0 * x11
        d = 2.0 * min(max(u, -1.0), 1.0)
        out[k] = 4.0 * d * d
    return out


def bytes_per_replica_step(steps: int) -> float:
    """Bytes the anchor moves to and from memory per replica-step: its state stays in registers
    (and the N×4 error and Δ arrays in L1), and it writes one float per replica per run.
    """
    return 8.0 / steps
