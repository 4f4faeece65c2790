"""Independent reference implementation of Algorithm 2 (PowerSGD / PowerSGD+) on the
2x2 counterexample of eq. (10) of "From PowerSGD to PowerSGD+".

Written from the paper only.  Plain NumPy (vectorised over R replicas x N nodes) plus an
exact-rational (fractions.Fraction) single-run version for Claim 1.

Conventions (all stated in the returned results):
  * "paper" basis: A = D D^T = [[1,-1],[-1,1]], B = [[1,1],[1,1]], C = (1,1)/sqrt2.
  * "aligned" basis: the same problem conjugated by U = [[1,1],[1,-1]]/sqrt2 (X -> U X U^T):
      A -> diag(0,2), B -> diag(2,0), C -> e1.  X_0 = I in both bases (U I U^T = I).
  * f(X) = psi(<A,X> + shift); grad f = psi'(<A,X>+shift) A;  ||grad f||^2 = 4 psi'^2.
  * stochastic gradient (10b): g = grad f + xi (sigma_i B - grad f), xi uniform on {-1,+1}.
  * QR of a 2x1 column: 'normalize' = p/||p|| with ||p|| = hypot rounded once (what the brief states and what PyTorch's
    PowerSGD hook does for rank 1 via Gram-Schmidt), or 'householder' = an emulation of
    LAPACK dgeqr2(dlarfg)+dorg2r (what numpy.linalg.qr / torch.linalg.qr compute).
  * QR(0) conventions: 'previous' (keep P~_{t-1}; at t = 0, where there is none, QR(P) unless
    P is exactly 0, then e1), 'native' (e1 of the current basis, which
    is what LAPACK Householder QR returns for a zero column), 'zero' (P~ = 0).
    zero_test 'exact': P == 0 bitwise;  'bound': |P_k| <= (N+2) u (1/N) sum_i sum_j
    |Delta^(i)_kj| |Q_j| for k = 1,2 (the standard forward rounding-error bound of the
    computed P, u = unit roundoff) -- includes exact zeros.
  * precision: every arithmetic result is rounded to the working precision (float64,
    float32, or bfloat16 with round-to-nearest-even) right after each scalar operation;
    intermediate computations are done in float64 and then rounded, which is a correctly
    rounded result for + - * / sqrt because 53 >= 2p+2 for p = 24 and p = 8.
  * SVD-COMP ("exact SVD restart"): top left singular vector of the node-averaged Delta,
    computed in float64 in closed form from Delta Delta^T (exact for diagonal matrices,
    ties -> e1) and then rounded to the working precision.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

SQ2 = math.sqrt(2.0)
U_ROT = np.array([[1.0, 1.0], [1.0, -1.0]]) / SQ2

BASES = {
    # A, B, unit C (the B column direction), unit a (the A column direction)
    "paper": dict(
        A=np.array([[1.0, -1.0], [-1.0, 1.0]]),
        B=np.array([[1.0, 1.0], [1.0, 1.0]]),
        c=np.array([1.0, 1.0]) / SQ2,
        a=np.array([1.0, -1.0]) / SQ2,
    ),
    "aligned": dict(
        A=np.array([[0.0, 0.0], [0.0, 2.0]]),
        B=np.array([[2.0, 0.0], [0.0, 0.0]]),
        c=np.array([1.0, 0.0]),
        a=np.array([0.0, 1.0]),
    ),
}

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8}


# ----------------------------------------------------------------------------------------
# rounding
# ----------------------------------------------------------------------------------------
def _rd_f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def _rd_bf16(x):
    """Round float64 values to bfloat16 (8 significant bits), round-to-nearest-even.
    (bf16 has float32's exponent range; subnormals/overflow never occur here.)
    """
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)  # x = m 2^e, 0.5 <= |m| < 1
    return np.ldexp(np.rint(m * 256.0), e - 8)


class Prec:
    def __init__(self, name: str):
        if name not in UNIT_ROUNDOFF:
            raise ValueError(name)
        self.name = name
        self.u = UNIT_ROUNDOFF[name]
        self._rd = None if name == "float64" else (_rd_f32 if name == "float32" else _rd_bf16)

    def __call__(self, x):
        if self._rd is None:
            return x
        return self._rd(x)


# ----------------------------------------------------------------------------------------
# small 2x2 kernels with a rounding after every scalar op
# ----------------------------------------------------------------------------------------
def mv(r, M, v):
    """M (...,2,2) times v (...,2)."""
    a = r(M[..., 0, 0] * v[..., 0])
    b = r(M[..., 0, 1] * v[..., 1])
    c = r(M[..., 1, 0] * v[..., 0])
    d = r(M[..., 1, 1] * v[..., 1])
    return np.stack([r(a + b), r(c + d)], axis=-1)


def mtv(r, M, v):
    """M^T v."""
    a = r(M[..., 0, 0] * v[..., 0])
    b = r(M[..., 1, 0] * v[..., 1])
    c = r(M[..., 0, 1] * v[..., 0])
    d = r(M[..., 1, 1] * v[..., 1])
    return np.stack([r(a + b), r(c + d)], axis=-1)


def outer(r, p, q):
    return r(p[..., :, None] * q[..., None, :])


def node_mean(r, Z, N):
    """(1/N) sum over axis 1, summed sequentially node 1..N (All-Reduce mean)."""
    acc = Z[:, 0]
    for i in range(1, N):
        acc = r(acc + Z[:, i])
    return r(acc / N) if N > 1 else acc


def inner(r, A, X):
    """<A, X> = sum_kl A_kl X_kl, summed in row-major order."""
    s = r(A[..., 0, 0] * X[..., 0, 0])
    s = r(s + r(A[..., 0, 1] * X[..., 0, 1]))
    s = r(s + r(A[..., 1, 0] * X[..., 1, 0]))
    s = r(s + r(A[..., 1, 1] * X[..., 1, 1]))
    return s


def qr_normalize(r, P):
    """P~ = p/||p||.  The norm is computed without under/overflow (hypot, float64) and rounded
    once to the working precision; for p = (x, x) both entries of P~ stay bitwise equal.
    """
    n = r(np.hypot(P[..., 0], P[..., 1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return r(P / n[..., None])


def qr_householder(r, P):
    """Emulates LAPACK dgeqr2 (dlarfg) + dorg2r for a 2x1 matrix; returns Q's column."""
    alpha = P[..., 0]
    xnorm = np.abs(P[..., 1])
    w = np.maximum(np.abs(alpha), xnorm)
    z = np.minimum(np.abs(alpha), xnorm)
    with np.errstate(invalid="ignore", divide="ignore"):
        zw = r(z / w)
        lapy2 = np.where(z == 0, w, r(w * r(np.sqrt(r(1.0 + r(zw * zw))))))
        beta = -np.copysign(lapy2, alpha)
        tau = r(r(beta - alpha) / beta)
        scal = r(1.0 / r(alpha - beta))
        v1 = r(P[..., 1] * scal)
        q0 = r(1.0 - tau)
        q1 = r(-tau * v1)
    zero_x = xnorm == 0
    q0 = np.where(zero_x, 1.0, q0)
    q1 = np.where(zero_x, 0.0, q1)
    return np.stack([q0, q1], axis=-1)


def top_left_singular_vector(M):
    """Float64, closed form, for (...,2,2).  Returns (v, tie, zero)."""
    S00 = M[..., 0, 0] ** 2 + M[..., 0, 1] ** 2
    S11 = M[..., 1, 0] ** 2 + M[..., 1, 1] ** 2
    S01 = M[..., 0, 0] * M[..., 1, 0] + M[..., 0, 1] * M[..., 1, 1]
    th = 0.5 * np.arctan2(2.0 * S01, S00 - S11)
    v = np.stack([np.cos(th), np.sin(th)], axis=-1)
    diag = S01 == 0
    v = np.where(diag[..., None], np.where((S00 >= S11)[..., None], [1.0, 0.0], [0.0, 1.0]), v)
    tie = (S01 == 0) & (S00 == S11)
    zero = (S00 == 0) & (S11 == 0)
    return v, tie, zero


def psi_prime(x):
    return np.where(np.abs(x) <= 1.0, 2.0 * x, 2.0 * np.sign(x))


def psi_prime_exact(x: Fraction) -> Fraction:
    if abs(x) <= 1:
        return 2 * x
    return Fraction(2) if x > 0 else Fraction(-2)


# ----------------------------------------------------------------------------------------
# vectorised simulator
# ----------------------------------------------------------------------------------------
def simulate(
    N=4,
    R=100,
    T=1000,
    sigma=5.0,
    basis="aligned",
    method="powersgd",
    tau=10,
    optimizer="msgd",
    eta=5e-4,
    mu=0.9,
    lam=0.0,
    betas=(0.9, 0.999),
    adam_eps=1e-8,
    precision="float64",
    qr="normalize",
    conv="previous",
    zero_test="bound",
    lock_forced=False,
    shift=0.0,
    seed=0,
    record=("s", "offc", "pzero", "lock"),
    X0=None,
    Qinit=None,
    psi_kind="huber",
):
    """Run Algorithm 2 on eq. (10) for R independent replicas with N nodes.

    sigma: scalar, (N,) per-node, or (R,N) per replica and node.
    basis: 'paper' | 'aligned' | array of R strings.
    method: 'powersgd' (SSP every step) | 'powersgd+' (SVD when t % tau == 0) | 'none'
            (uncompressed averaging, no error feedback).
    optimizer: 'msgd' (7c) | 'adam' | 'adamw' (decoupled decay lam).
    Returns a dict of numpy arrays (histories have shape (T, R) or (T+1, R)).
    """
    rng = np.random.default_rng(seed)
    r = Prec(precision)
    u = r.u
    # --- per-replica basis data
    if isinstance(basis, str):
        bas = np.array([basis] * R)
    else:
        bas = np.asarray(basis)
    A = np.stack([BASES[b]["A"] for b in bas])
    B = np.stack([BASES[b]["B"] for b in bas])
    cdir = np.stack([BASES[b]["c"] for b in bas])
    adir = np.stack([BASES[b]["a"] for b in bas])
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (R, N)).copy()
    sig = r(sig)
    etar, mur, lamr = r(np.float64(eta)), r(np.float64(mu)), r(np.float64(lam))
    b1, b2 = r(np.float64(betas[0])), r(np.float64(betas[1]))
    epsr = r(np.float64(adam_eps))
    shiftr = r(np.float64(shift))
    # --- state
    X = np.broadcast_to(np.eye(2) if X0 is None else np.asarray(X0, float), (R, 2, 2)).copy()
    X = r(X)
    X0s = X.copy()
    m = np.zeros((R, 2, 2))
    v = np.zeros((R, 2, 2))
    e = np.zeros((R, N, 2, 2))
    Q = (
        rng.standard_normal((R, 2))
        if Qinit is None
        else np.broadcast_to(np.asarray(Qinit, float), (R, 2)).copy()
    )
    Q = r(Q)
    Pt_prev = np.tile([1.0, 0.0], (R, 1))
    noprev = np.ones(R, bool)  # 'previous' has nothing to keep at t = 0
    native = np.tile([1.0, 0.0], (R, 1))
    zerov = np.zeros((R, 2))
    qrf = qr_normalize if qr == "normalize" else qr_householder

    rec = {k: [] for k in record}
    steptype = []
    cnt = dict(
        p_exact_zero=np.zeros(R, int),
        p_bound_zero=np.zeros(R, int),
        svd_zero=np.zeros(R, int),
        svd_tie=np.zeros(R, int),
    )
    svd_dir = []  # per restart: |<P~, a>| > |<P~, c>|  (True = A's direction)
    svd_dir_t = []
    ever_nan = np.zeros(R, bool)

    for t in range(T):
        # ------------- (7a) stochastic gradients
        xi = rng.integers(0, 2, size=(R, N)) * 2 - 1
        if t == 0:
            xi0_drawn_all_plus = np.all(xi == 1, axis=1)
        if lock_forced and t == 0:
            xi[:] = 1
        s = inner(r, A, X)
        x = r(s + shiftr) if shift != 0 else s
        pp = psi_prime(x) if psi_kind == "huber" else r(2.0 * x)  # 'quadratic': diagnostic only
        gf = r(pp[:, None, None] * A)  # (R,2,2)
        sB = r(sig[:, :, None, None] * B[:, None])  # (R,N,2,2)
        g = r(gf[:, None] + xi[:, :, None, None] * r(sB - gf[:, None]))
        if "s" in rec:
            rec["s"].append(np.asarray(inner(lambda z: z, A, X), float))  # float64 diagnostic
        # ------------- (7b) compression
        if method == "none":
            Dhat = node_mean(r, g, N)
            Pt = None
            steptype.append(0)
        else:
            Delta = r(g + e)
            use_svd = method == "powersgd+" and (t % tau == 0)
            if use_svd:
                Dbar = node_mean(r, Delta, N)
                vv, tie, zz = top_left_singular_vector(Dbar)
                Pt = r(vv)
                cnt["svd_tie"] += tie
                cnt["svd_zero"] += zz
                svd_dir.append(np.abs(np.sum(Pt * adir, -1)) > np.abs(np.sum(Pt * cdir, -1)))
                svd_dir_t.append(t)
                steptype.append(1)
                if "pzero" in rec:  # restart steps: 4 = Delta_bar exactly 0, 3 = exact singular-value tie
                    rec["pzero"].append(np.where(zz, 4, np.where(tie, 3, 0)).astype(np.int8))
            else:
                Pi = mv(r, Delta, Q[:, None, :])
                P = node_mean(r, Pi, N)
                bnd = (N + 2) * u * np.sum(np.abs(Delta) * np.abs(Q)[:, None, None, :], axis=(1, 3)) / N
                ez = np.all(P == 0, axis=-1)
                bz = np.all(np.abs(P) <= bnd, axis=-1)
                cnt["p_exact_zero"] += ez
                cnt["p_bound_zero"] += bz
                if "pzero" in rec:
                    rec["pzero"].append(ez.astype(np.int8) + bz.astype(np.int8))  # 2 exact, 1 bound-only
                isz = ez if zero_test == "exact" else bz
                if conv == "previous":
                    # no previous P~ exists yet (t = 0): QR(P) unless P is exactly zero, then e1
                    isz = np.where(noprev, ez, isz)
                Psafe = np.where(isz[:, None], 1.0, P)
                Pt = qrf(r, Psafe)
                fill = {
                    "previous": np.where(noprev[:, None], native, Pt_prev),
                    "native": native,
                    "zero": zerov,
                }[conv]
                Pt = np.where(isz[:, None], fill, Pt)
                steptype.append(0)
            ever_nan |= ~np.all(np.isfinite(Pt), -1)
            Qi = mtv(r, Delta, Pt[:, None, :])  # (R,N,2)
            Q = node_mean(r, Qi, N)
            Dhat_i = outer(r, Pt[:, None, :], Qi)  # (R,N,2,2)
            Dhat = outer(r, Pt, Q)
            e = r(Delta - Dhat_i)
            Pt_prev = Pt
            noprev[:] = False
            if "dbar" in rec:
                Dm = node_mean(lambda z: z, Delta, N)
                rec["dbar"].append(
                    np.stack(
                        [
                            np.einsum("ri,rij,rj->r", cdir, Dm, cdir),
                            np.einsum("ri,rij,rj->r", adir, Dm, adir),
                        ],
                        -1,
                    )
                )
        if "pq" in rec:  # (|<P~_t,c>|, |<P~_t,a>|, |<Q_t,c>|, |<Q_t,a>|); NaN for uncompressed runs
            if Pt is None:
                rec["pq"].append(np.full((R, 4), np.nan))
            else:
                rec["pq"].append(
                    np.abs(
                        np.stack(
                            [
                                np.sum(Pt * cdir, -1),
                                np.sum(Pt * adir, -1),
                                np.sum(Q * cdir, -1),
                                np.sum(Q * adir, -1),
                            ],
                            -1,
                        )
                    )
                )
        if "dhat_a" in rec:
            rec["dhat_a"].append(np.einsum("ri,rij,rj->r", adir, Dhat, adir))
        if "offc" in rec:
            if Pt is None:
                rec["offc"].append(np.full(R, np.nan))
            else:
                nrm = np.sqrt(np.sum(Pt * Pt, -1))
                with np.errstate(invalid="ignore", divide="ignore"):
                    rec["offc"].append(np.abs(np.sum(Pt * adir, -1)) / nrm)
        # ------------- (7c) base optimizer
        if optimizer == "msgd":
            m = r(r(mur * m) + Dhat)
            X = r(X - r(etar * m))
        else:
            k = t + 1
            m = r(r(b1 * m) + r(r(1.0 - b1) * Dhat))
            v = r(r(b2 * v) + r(r(1.0 - b2) * r(Dhat * Dhat)))
            bc1 = r(1.0 - r(np.float64(b1) ** k))
            bc2 = r(1.0 - r(np.float64(b2) ** k))
            mh = r(m / bc1)
            vh = r(v / bc2)
            upd = r(mh / r(r(np.sqrt(vh)) + epsr))
            decay = r(1.0 - r(etar * lamr)) if optimizer == "adamw" else 1.0
            X = r(r(decay * X) - r(etar * upd))
        if "lock" in rec:
            # X_{t+1} - X_0 in span(B) and Q_t in span(C), exact test (aligned basis meaning)
            Y = X - X0s
            cB = np.sum(Y * B, (1, 2)) / np.sum(B * B, (1, 2))
            resid = np.sqrt(np.sum((Y - cB[:, None, None] * B) ** 2, (1, 2)))
            if method == "none":
                qoff = np.zeros(R)
            else:
                qoff = np.abs(np.sum(Q * adir, -1))
            rec["lock"].append(np.stack([resid, qoff], -1))
    if "s" in rec:
        rec["s"].append(np.asarray(inner(lambda z: z, A, X), float))
    out = {k: np.array(vv) for k, vv in rec.items()}
    out.update(
        X=X,
        X0=X0s,
        A=A,
        B=B,
        m=m,
        e=e,
        Q=Q,
        steptype=np.array(steptype),
        counts=cnt,
        svd_dir=np.array(svd_dir),
        svd_dir_t=np.array(svd_dir_t),
        ever_nan=ever_nan,
        sigma=sig,
        basis=bas,
        xi0_drawn_all_plus=xi0_drawn_all_plus,
    )
    sT = inner(lambda z: z, A, X)
    out["s_T"] = sT
    out["grad2_T"] = 4.0 * (psi_prime(sT + shift) if psi_kind == "huber" else 2.0 * (sT + shift)) ** 2
    return out


def scope(**kw):
    """Helper: JSON-friendly scope dict."""
    d = {}
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (np.floating, np.integer)):
            v = v.item()
        d[k] = v
    return d


def wilson(k, n, z=1.959963984540054):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, c - h), min(1.0, c + h))


def mean_ci(x, z=1.959963984540054):
    x = np.asarray(x, float)
    n = len(x)
    mu_ = float(np.mean(x))
    sd = float(np.std(x, ddof=1)) if n > 1 else float("nan")
    h = z * sd / math.sqrt(n)
    return dict(mean=mu_, ci95=[mu_ - h, mu_ + h], sd=sd, n=n)


# ----------------------------------------------------------------------------------------
# exact rational single run (paper basis), for Claim 1
# ----------------------------------------------------------------------------------------
F0 = Fraction(0)
A_EX = ((Fraction(1), Fraction(-1)), (Fraction(-1), Fraction(1)))
B_EX = ((Fraction(1), Fraction(1)), (Fraction(1), Fraction(1)))


def _madd(P, Qm, a=1, b=1):
    return tuple(tuple(a * P[i][j] + b * Qm[i][j] for j in range(2)) for i in range(2))


def _mscale(c, P):
    return tuple(tuple(c * P[i][j] for j in range(2)) for i in range(2))


def _mv(M, v):
    return (M[0][0] * v[0] + M[0][1] * v[1], M[1][0] * v[0] + M[1][1] * v[1])


def _mtv(M, v):
    return (M[0][0] * v[0] + M[1][0] * v[1], M[0][1] * v[0] + M[1][1] * v[1])


def _proj(p):
    n2 = p[0] * p[0] + p[1] * p[1]
    if n2 == 0:
        return ((F0, F0), (F0, F0))
    return tuple(tuple(p[i] * p[j] / n2 for j in range(2)) for i in range(2))


def _mm(P, M):
    return tuple(tuple(P[i][0] * M[0][j] + P[i][1] * M[1][j] for j in range(2)) for i in range(2))


def _rescale(v):
    mx = max(abs(v[0]), abs(v[1]))
    if mx == 0:
        return v
    return (v[0] / mx, v[1] / mx)


def in_span_B(M):
    return M[0][0] == M[0][1] == M[1][0] == M[1][1]


def in_span_A(M):
    return M[0][0] == M[1][1] == -M[0][1] == -M[1][0]


def simulate_exact(N, sigmas, eta, mu, T, X0, Qinit, xis, conv="previous"):
    """Exact rational PowerSGD-MSGD run (SSP every step) in the paper basis.

    P~ is carried as an unnormalised rational direction p (P~ = p/||p||, R>0 convention);
    P~ P~^T = p p^T / ||p||^2 is rational.  Q_t is carried up to a positive factor
    (q_hat = Delta_bar^T p), which changes neither P~_{t+1} nor whether P_{t+1} = 0.
    xis: list over t of tuples of +-1 (length N).
    """
    sig = [Fraction(s) for s in sigmas]
    X = X0
    m = ((F0, F0), (F0, F0))
    e = [((F0, F0), (F0, F0)) for _ in range(N)]
    q = Qinit
    p_prev = (Fraction(1), F0)
    log = dict(pzero_steps=[], breaks=[], first_break=None, ptilde_sign=[], inv=[])
    for t in range(T):
        s = sum(A_EX[i][j] * X[i][j] for i in range(2) for j in range(2))
        gf = _mscale(psi_prime_exact(s), A_EX)
        Delta = []
        for i in range(N):
            xi = xis[t][i]
            g = _madd(gf, _madd(_mscale(sig[i], B_EX), gf, 1, -1), 1, xi)
            Delta.append(_madd(g, e[i]))
        Dbar = _mscale(
            Fraction(1, N), tuple(tuple(sum(D[a][b] for D in Delta) for b in range(2)) for a in range(2))
        )
        P = _mv(Dbar, q)  # = (1/N) sum_i Delta_i Q (exact linearity)
        if P[0] == 0 and P[1] == 0:
            log["pzero_steps"].append(t)
            p = {"previous": p_prev, "native": (Fraction(1), F0), "zero": (F0, F0)}[conv]
        else:
            p = _rescale(P)
        Pi = _proj(p)
        qhat = _mtv(Dbar, p)
        q = _rescale(qhat)
        Dhat_i = [_mm(Pi, D) for D in Delta]
        Dhat = _mm(Pi, Dbar)
        e = [_madd(Delta[i], Dhat_i[i], 1, -1) for i in range(N)]
        m = _madd(_mscale(mu, m), Dhat)
        X = _madd(X, m, 1, -eta)
        p_prev = p
        inv = dict(
            m_in_B=in_span_B(m),
            e_in_A=all(in_span_A(ei) for ei in e),
            P_prop_C=(p[0] == p[1] and p[0] != 0),
            Q_in_C=(q[0] == q[1]),
        )
        log["inv"].append(inv)
        log["ptilde_sign"].append(0 if p[0] == 0 and p[1] == 0 else (1 if (p[0] + p[1]) > 0 else -1))
        ok = all(inv.values())
        if not ok:
            log["breaks"].append(t)
            if log["first_break"] is None:
                log["first_break"] = t
    s = sum(A_EX[i][j] * X[i][j] for i in range(2) for j in range(2))
    log["s_T"] = s
    log["grad2_T"] = 4 * psi_prime_exact(s) ** 2
    log["X_T"] = X
    return log
