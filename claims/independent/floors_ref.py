"""Independent NumPy reference implementation of Algorithm 2 (PowerSGD / PowerSGD+)
and of uncompressed MSGD, written from the paper text only
(/work/shared/paper/powersgd-plus.md: Algorithms 1-2, eq. (7)-(10)).

Algorithm (per replica, N nodes, t = 0..T-1):
    g_t^(i)   = grad F_i(X_t; xi_t^(i))                         (7a)
    D_t^(i)   = g_t^(i) + e_t^(i)                               (7a)
    SSP-COMP (Alg. 1):  P = mean_i D^(i) Q_{t-1};  P~ = QR(P);
                        Q^(i) = D^(i)T P~;  Q_t = mean_i Q^(i)
    SVD-COMP (Alg. 1):  D = mean_i D^(i);  P~ = U[:, :r] of SVD(D);
                        Q^(i) = D^(i)T P~;  Q_t = mean_i Q^(i)
    local compressed    Dhat^(i) = P~ Q^(i)T,  global Dhat = P~ Q_t^T
    e_{t+1}^(i) = D^(i) - Dhat^(i)
    m_t = mu m_{t-1} + Dhat ;  X_{t+1} = X_t - eta m_t                 (7c)
  PowerSGD : SSP-COMP at every t.
  PowerSGD+: SVD-COMP when t mod tau == 0 (t counted from 0), SSP-COMP otherwise.
  MSGD ("full"): Dhat = mean_i g^(i), e == 0.
  Q_{-1}: standard normal n x r per replica (same for all methods of a replica).
  If P_t is exactly 0 (QR undefined) the previous P~ is kept and the event counted
  (the "previous" P~ before t=0 is QR of a standard-normal m x r matrix).
  For r = 1, QR(P) = P/||P|| (up to sign; the sign never matters because only
  P~P~^T and P~Q^T enter).  For r > 1 numpy.linalg.qr (Householder) is used.

Common random numbers: every method sees, for the same replica, the same X_0,
the same Q_{-1} and the same noise draws xi_t^(i): the methods are stacked as
blocks of the batch axis and share one draw per step.

Problems and derived constants
------------------------------
Family G (m x n, signal rank k, 2k <= min(m, n)).  U (m x m), V (n x n) Haar.
    A_j = 2 u_{k+j} v_{k+j}^T (j < k),   B = 2 sum_{j<k} u_j v_j^T,
    f(X) = sum_j phi(<A_j, X>),  phi(x) = x^2 (|x|<=kappa), 2 kappa |x| - kappa^2 else,
    f_i(X) = f(X) + <H_i, X>,  sum_i H_i = 0,
    grad F_i(X; xi) = grad f_i(X) + xi (sigma_i B - grad f(X)),  E xi = 0, E xi^2 = 1.
  * The A_j are mutually Frobenius-orthogonal, ||A_j||_F^2 = 4, and <A_j, B> = 0.
  * grad f(X) = sum_j phi'(a_j) A_j, a_j = <A_j, X>, phi'(x) = 2 clip(x, -kappa, kappa);
    ||grad f||^2 = 4 sum_j phi'(a_j)^2.
  * L: Hess f = sum_j phi''(a_j) vec(A_j)vec(A_j)^T with phi'' in {0, 2} and
    orthogonal A_j, so ||Hess|| <= 2 * ||A_j||^2 = 8 (attained in the quadratic zone);
    grad f is globally 8-Lipschitz (phi' is 2-Lipschitz).  L = 8.
  * omega^2 = sup ||grad f||^2 = 4 k (2 kappa)^2 = 16 k kappa^2 (all a_j saturated).
  * f* = inf f = 0 (at a_j = 0); f_i are not bounded below individually, but
    Assumption 1 is about f only.  Delta F = f(X_0).
  * Assumption 2: grad F_i - grad f_i = xi (sigma_i B - grad f), so
      E||.||^2 = ||sigma_i B - grad f||^2 = 4 k sigma_i^2 + ||grad f(X)||^2   (<B, grad f> = 0)
    and  sigma^2 (Assumption 2) = 4 k max_i sigma_i^2 + omega^2.
    (The proof only uses E||mean_i noise||^2 <= sigma^2/N, for which
     4 k mean_i sigma_i^2 + omega^2 would suffice; we report the per-node max.)
  * Assumption 3: G^2 = sigma^2 + omega^2 (paper's definition).
  * delta = r / n (paper, m >= n); we always draw / build m >= n.

psi in a random basis = family G with m = n = 2, k = 1, kappa = 1, H = 0, common
sigma, Rademacher xi: indeed D D^T = [[1,-1],[-1,1]] = 2 d d^T with d = (1,-1)/sqrt2,
B = [[1,1],[1,1]] = 2 c c^T with c = (1,1)/sqrt2, and psi = phi_1.  In the canonical
basis u_0 = v_0 = c, u_1 = v_1 = d; the random basis replaces them by U c, V c, U d, V d
(X -> U X V^T).  Hence L = 8, omega^2 = 16, sigma^2 = 4 sigma_psi^2 + 16,
G^2 = 4 sigma_psi^2 + 32, f* = 0.

Structural fact used only as a diagnostic (never in the simulation): the compressor
acts on the left (P~P~^T .), the right factors v_b of A_j and B are orthogonal, and
sum_i H_i = 0 with a global P~, so the trajectory of X depends on the node data only
through means; heterogeneity h cannot change X_t (checked numerically in tests).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ortho_group

METHODS = ("powersgd", "powersgd+", "msgd")
L_CONST = 8.0


# ----------------------------------------------------------------------------- problems
class Problem:
    """Arrays have a leading 'problem batch' axis of size Rb (1 = shared, or R)."""

    def __init__(self, U, V, k, kappa, sigmas, H, noise, name, m, n):
        self.U, self.V = U, V  # (Rb, m, m), (Rb, n, n)
        self.k, self.kappa = int(k), float(kappa)
        self.m, self.n = int(m), int(n)
        self.sigmas = np.asarray(sigmas, float)  # (N,)
        self.N = len(self.sigmas)
        self.noise = noise
        self.name = name
        Rb = U.shape[0]
        self.Rb = Rb
        A = np.empty((Rb, k, m, n))
        for j in range(k):
            A[:, j] = 2.0 * U[:, :, k + j, None] * V[:, None, :, k + j]
        B = 2.0 * np.einsum("bmj,bnj->bmn", U[:, :, :k], V[:, :, :k])
        self.A, self.B = A, B
        self.H = H if H is not None else np.zeros((Rb, self.N, m, n))
        self.has_H = H is not None and np.any(H != 0)
        # constants
        self.L = L_CONST
        self.omega2 = 16.0 * k * self.kappa**2
        self.sigma2_A = 4.0 * k * float(np.max(self.sigmas**2)) + self.omega2
        self.sigma2_A_mean = 4.0 * k * float(np.mean(self.sigmas**2)) + self.omega2
        self.G2 = self.sigma2_A + self.omega2

    def a(self, X):  # X (Bt, m, n) -> (Bt, k)
        return np.einsum("bkmn,bmn->bk", self._bc(self.A, X.shape[0]), X)

    def _bc(self, arr, Bt):
        if arr.shape[0] == Bt:
            return arr
        if arr.shape[0] == 1:
            return arr
        # arr is per-replica (R) and X is stacked methods (M*R)
        reps = Bt // arr.shape[0]
        return np.concatenate([arr] * reps, axis=0)

    def phi_prime(self, a):
        return 2.0 * np.clip(a, -self.kappa, self.kappa)

    def f(self, X):
        a = self.a(X)
        kap = self.kappa
        v = np.where(np.abs(a) <= kap, a * a, 2 * kap * np.abs(a) - kap * kap)
        return v.sum(-1)

    def grad_and_norm2(self, X, A_b=None):
        """Grad f(X) and ||grad f(X)||^2 = 4 sum_j phi'(a_j)^2 (A_j orthogonal, norm^2 4)."""
        Bt = X.shape[0]
        mn = self.m * self.n
        Xf = X.reshape(Bt, mn)
        if A_b.shape[0] == 1:
            Af = A_b.reshape(self.k, mn)
            a = Xf @ Af.T
            pp = self.phi_prime(a)
            g = (pp @ Af).reshape(X.shape)
        else:
            Af = A_b.reshape(Bt, self.k, mn)
            a = (Af @ Xf[:, :, None])[..., 0]
            pp = self.phi_prime(a)
            g = (pp[:, None, :] @ Af)[:, 0].reshape(X.shape)
        return g, 4.0 * np.sum(pp * pp, axis=-1)

    def grad_norm2(self, X):
        pp = self.phi_prime(self.a(X))
        return 4.0 * np.sum(pp * pp, axis=-1)

    def draw_xi(self, rng, shape):
        if self.noise == "rademacher":
            return rng.integers(0, 2, size=shape).astype(float) * 2.0 - 1.0
        if self.noise == "normal":
            return rng.standard_normal(shape)
        if self.noise == "uniform":
            return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=shape)
        raise ValueError(self.noise)

    def constants(self):
        return dict(
            L=self.L,
            omega2=self.omega2,
            sigma2_assump2=self.sigma2_A,
            sigma2_assump2_nodemean=self.sigma2_A_mean,
            G2=self.G2,
            fstar=0.0,
            m=self.m,
            n=self.n,
            k=self.k,
            kappa=self.kappa,
            N=self.N,
            sigmas=[float(s) for s in self.sigmas],
            noise=self.noise,
        )


def haar(dim, rng):
    if dim == 1:
        return np.ones((1, 1))
    return ortho_group.rvs(dim, random_state=rng)


def make_psi(basis_seeds, R_per, sigma, N, canonical=False):
    """Psi problem of eq. (10) in a Haar-random basis; one basis per seed, each
    repeated R_per times along the replica axis (R = len(basis_seeds) * R_per).
    """
    c = np.array([1.0, 1.0]) / np.sqrt(2)
    d = np.array([1.0, -1.0]) / np.sqrt(2)
    E = np.stack([c, d], axis=1)  # columns: u_0 = c (B), u_1 = d (A)
    Us, Vs = [], []
    for s in basis_seeds:
        if canonical:
            U0 = V0 = np.eye(2)
        else:
            rng = np.random.default_rng([9001, int(s)])
            U0, V0 = haar(2, rng), haar(2, rng)
        Us += [U0 @ E] * R_per
        Vs += [V0 @ E] * R_per
    U, V = np.stack(Us), np.stack(Vs)
    return Problem(
        U,
        V,
        1,
        1.0,
        np.full(N, float(sigma)),
        None,
        "rademacher",
        "psi_random_basis" if not canonical else "psi_canonical",
        2,
        2,
    )


def make_family(m, n, k, N, sigmas, kappa, noise, h, basis_seed):
    rng = np.random.default_rng([7007, int(basis_seed)])
    U = haar(m, rng)[None]
    V = haar(n, rng)[None]
    H = None
    if h > 0 and N > 1:
        Gm = rng.standard_normal((N, m, n))
        H = (h * (Gm - Gm.mean(0, keepdims=True)) / np.sqrt(m * n))[None]
    return Problem(U, V, k, kappa, sigmas, H, noise, "family_G", m, n)


def default_X0(prob, R, s, pert, rng, min_grad2=None, max_tries=1000):
    """X0 = s * sum_j u_{k+j} v_{k+j}^T + pert * Z / sqrt(mn) (Z std normal per replica),
    redrawn per replica until ||grad f(X0)||^2 >= min_grad2 (if given).
    """
    k = prob.k
    base = s * np.einsum("bmj,bnj->bmn", prob.U[:, :, k : 2 * k], prob.V[:, :, k : 2 * k])
    base = np.broadcast_to(base, (R, prob.m, prob.n)).copy()
    X0 = base + pert * rng.standard_normal((R, prob.m, prob.n)) / np.sqrt(prob.m * prob.n)
    if min_grad2 is not None:
        for _ in range(max_tries):
            bad = _gn2_rep(prob, X0) < min_grad2
            if not bad.any():
                break
            X0[bad] = base[bad] + pert * rng.standard_normal((bad.sum(), prob.m, prob.n)) / np.sqrt(
                prob.m * prob.n
            )
        else:
            raise RuntimeError("X0 rejection failed")
    return X0


def _gn2_rep(prob, X):
    a = np.einsum(
        "bkmn,bmn->bk",
        prob.A if prob.Rb == X.shape[0] else np.broadcast_to(prob.A, (X.shape[0],) + prob.A.shape[1:]),
        X,
    )
    pp = prob.phi_prime(a)
    return 4.0 * np.sum(pp * pp, -1)


# ----------------------------------------------------------------------------- linear algebra
def _orth(P):
    """QR(P) -> orthonormal basis (Bt, m, r) of range(P) (economic QR, Q factor).

    r = 1: normalisation, after scaling by max|P| (so that tiny but nonzero P, whose
    squares would underflow, are still normalised correctly).  r > 1: classical
    Gram-Schmidt with one full re-orthogonalisation pass (CGS2) on the scaled
    matrix, which yields the same Q as Householder QR up to column signs when P has
    full column rank (tested against numpy.linalg.qr); rows whose P is
    (numerically) rank deficient fall back to numpy.linalg.qr.  Rows with P == 0
    give NaN here and are replaced by the previous P~ by the caller.
    """
    r = P.shape[-1]
    sc = np.max(np.abs(P), axis=(-2, -1), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        Ps = P / sc
        if r == 1:
            nrm = np.sqrt(np.sum(Ps * Ps, axis=-2, keepdims=True))
            return Ps / nrm
        Qo = np.empty_like(P)
        bad = np.zeros(P.shape[0], dtype=bool)
        for j in range(r):
            v = Ps[:, :, j].copy()
            n0 = np.sqrt(np.sum(v * v, -1))
            for _ in range(2):
                if j > 0:
                    Qj = Qo[:, :, :j]
                    v -= (Qj @ (np.swapaxes(Qj, -1, -2) @ v[:, :, None]))[:, :, 0]
            nv = np.sqrt(np.sum(v * v, -1))
            bad |= ~(nv > 1e-10 * n0)
            Qo[:, :, j] = v / nv[:, None]
    bad &= sc[:, 0, 0] > 0
    if bad.any():
        Qo[bad] = np.linalg.qr(Ps[bad])[0]
    return Qo


def _top_left_sv(D, r):
    """First r left singular vectors of D (Bt, m, n).  m = 2, r = 1: closed form
    (leading eigenvector of D D^T); otherwise numpy.linalg.svd.
    """
    if D.shape[-2] == 2 and r == 1:
        sc = np.max(np.abs(D), axis=(-2, -1), keepdims=True)
        Ds = D / np.where(sc > 0, sc, 1.0)
        S = Ds @ np.swapaxes(Ds, -1, -2)
        a, b, c = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
        th = 0.5 * np.arctan2(2.0 * b, a - c)
        return np.stack([np.cos(th), np.sin(th)], axis=-1)[:, :, None]
    return np.linalg.svd(D)[0][..., :r]


# ----------------------------------------------------------------------------- simulator
def simulate(
    prob, methods, eta, mu, tau, r, T, X0, seed, nblk=64, mode="nodes", hit_thresholds=(1e-4, 1e-12)
):
    """Run the given methods on the same replicas with common random numbers.

    mode = "nodes": faithful per-node Algorithm 1/2 (arrays (batch, N, m, n)).
    mode = "mean" : the same algorithm with the node dimension aggregated first.
        Exact-arithmetic identity: P = mean_i D^(i) Q = Dbar Q, SVD on Dbar,
        Dhat = P~ P~^T Dbar, mean_i e^(i)_{t+1} = (I - P~P~^T) Dbar, and
        mean_i g^(i) = grad f (1 - xibar) + (mean_i sigma_i xi_i) B  (sum_i H_i = 0).
        X, m, Q, P~ depend on the nodes only through these means, so both modes
        define the same process; they differ only in rounding (checked in tests).
    X0: (R, m, n).  Returns dict method -> stats (numpy arrays over replicas):
      blocks   (R, nblk): block means of ||grad f(X_t)||^2, t = 0..T-1 (T % nblk == 0)
      emax     (R,): max_t ||mean_i e_t^(i)||_F^2
      e2_max_of_mean / m2_max_of_mean: max_t of the replica-mean of ||ebar_t||^2, ||m_t||^2
      zeroP    (R,): number of steps with P_t exactly 0
      hit      (R, len(hit_thresholds)): first t with ||grad f(X_t)||^2 < thr*omega^2 (T if never)
    """
    assert T % nblk == 0
    R, m, n = X0.shape
    N = prob.N
    M = len(methods)
    Bt = M * R
    blk = T // nblk
    ss = np.random.SeedSequence([int(seed), 4242])
    rng_xi, rng_q = [np.random.default_rng(s) for s in ss.spawn(2)]
    Q = np.tile(rng_q.standard_normal((R, n, r)), (M, 1, 1))
    Pprev = np.tile(_orth(rng_q.standard_normal((R, m, r))), (M, 1, 1))
    X = np.tile(X0, (M, 1, 1)).astype(float)
    mom = np.zeros((Bt, m, n))
    nodes = mode == "nodes"
    e = np.zeros((Bt, N, m, n)) if nodes else np.zeros((Bt, m, n))
    A_b = prob.A if prob.Rb == 1 else np.tile(prob.A, (M, 1, 1, 1))
    B_b = prob.B if prob.Rb == 1 else np.tile(prob.B, (M, 1, 1))
    H_b = prob.H if prob.H.shape[0] == 1 else np.tile(prob.H, (M, 1, 1, 1))
    sig = prob.sigmas[None, :, None, None]
    sl = {meth: slice(i * R, (i + 1) * R) for i, meth in enumerate(methods)}
    comp = [meth for meth in methods if meth != "msgd"]
    if comp:
        ci = sorted(methods.index(mm) for mm in comp)
        assert ci == list(range(ci[0], ci[-1] + 1)), "compressed methods must be contiguous"
        csl = slice(ci[0] * R, (ci[-1] + 1) * R)
    thr = np.asarray(hit_thresholds) * prob.omega2
    hit = np.full((Bt, len(thr)), T, dtype=np.int64)
    blocks = np.zeros((Bt, nblk))
    acc = np.zeros(Bt)
    emax = np.zeros(Bt)
    e2mm = np.zeros(M)
    m2mm = np.zeros(M)
    zeroP = np.zeros(Bt, dtype=np.int64)
    chunk = 256
    xi_buf = None
    for t in range(T):
        if t % chunk == 0:
            xi_buf = prob.draw_xi(rng_xi, (min(chunk, T - t), R, N))
            if not nodes:
                xbar_buf = np.tile(1.0 - xi_buf.mean(-1), (1, M))[:, :, None, None]
                zeta_buf = np.tile((xi_buf * prob.sigmas).mean(-1), (1, M))[:, :, None, None]
        gf, gn2 = prob.grad_and_norm2(X, A_b)
        acc += gn2
        below = gn2[:, None] < thr[None, :]
        if below.any():
            hit = np.where(below & (hit == T), t, hit)
        if (t + 1) % blk == 0:
            blocks[:, (t + 1) // blk - 1] = acc / blk
            acc[:] = 0.0
        if nodes:
            xi = np.tile(xi_buf[t % chunk], (M, 1))[:, :, None, None]  # (Bt, N, 1, 1)
            D = (gf[:, None] + H_b) + xi * (sig * B_b[:, None] - gf[:, None]) + e
        else:
            D = gf * xbar_buf[t % chunk] + zeta_buf[t % chunk] * B_b + e
        Dhat = np.empty((Bt, m, n))
        if "msgd" in methods:
            s_ = sl["msgd"]
            Dhat[s_] = D[s_].mean(1) if nodes else D[s_]
        groups = []
        if comp:
            if t % tau == 0 and "powersgd+" in comp:
                groups.append(("svd", sl["powersgd+"]))
                if "powersgd" in comp:
                    groups.append(("ssp", sl["powersgd"]))
            else:
                groups.append(("ssp", csl))
        for kind, s_ in groups:
            Dg = D[s_]
            Dm = Dg.mean(1) if nodes else Dg
            if kind == "ssp":
                if nodes:
                    P = (Dg @ Q[s_][:, None]).mean(1)  # mean_i D^(i) Q
                else:
                    P = Dm @ Q[s_]
                zero = ~np.any(P != 0, axis=(-2, -1))
                Pt = _orth(P)
                if zero.any():
                    Pt[zero] = Pprev[s_][zero]
                    zp = zeroP[s_]
                    zp[zero] += 1
                    zeroP[s_] = zp
            else:
                Pt = _top_left_sv(Dm, r)
            if nodes:
                Qi = np.swapaxes(Dg, -1, -2) @ Pt[:, None]  # (b, N, n, r)
                Qn = Qi.mean(1)
                e[s_] = Dg - Pt[:, None] @ np.swapaxes(Qi, -1, -2)
            else:
                Qn = np.swapaxes(Dg, -1, -2) @ Pt
                e[s_] = Dg - Pt @ np.swapaxes(Qn, -1, -2)
            Dhat[s_] = Pt @ np.swapaxes(Qn, -1, -2)
            Q[s_] = Qn
            Pprev[s_] = Pt
        mom *= mu
        mom += Dhat
        X -= eta * mom
        if comp:
            ebar = e.mean(1) if nodes else e
            en = np.einsum("bmn,bmn->b", ebar, ebar)
            np.maximum(emax, en, out=emax)
            np.maximum(e2mm, en.reshape(M, R).mean(1), out=e2mm)
        mn2 = np.einsum("bmn,bmn->b", mom, mom)
        np.maximum(m2mm, mn2.reshape(M, R).mean(1), out=m2mm)
    out = {}
    for i, meth in enumerate(methods):
        s_ = sl[meth]
        b = blocks[s_]
        out[meth] = dict(
            blocks=b,
            emax=emax[s_],
            zeroP=zeroP[s_],
            hit=hit[s_],
            e2_max_of_mean=float(e2mm[i]),
            m2_max_of_mean=float(m2mm[i]),
            nonfinite=bool(not np.all(np.isfinite(b))),
            Xfinal=X[s_].copy(),
        )
    return out


# ----------------------------------------------------------------------------- statistics
def window_mean(blocks, lo, hi):
    """Per-replica mean of ||grad f||^2 over fraction [lo, hi) of the run."""
    nb = blocks.shape[1]
    return blocks[:, int(round(lo * nb)) : int(round(hi * nb))].mean(1)


def boot_ratio(x, y, strata=None, B=2000, seed=0):
    """Ratio of means mean(x)/mean(y) with a paired percentile bootstrap (95%)."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x), np.asarray(y)
    R = len(x)
    if strata is None:
        strata = np.zeros(R, dtype=int)
    idx_groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    rs = np.empty(B)
    for b in range(B):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in idx_groups])
        with np.errstate(divide="ignore", invalid="ignore"):
            rs[b] = x[idx].mean() / y[idx].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        est = x.mean() / y.mean()
    lo, hi = np.nanpercentile(rs, [2.5, 97.5])
    return float(est), float(lo), float(hi)


def paired_diff(x, y):
    """mean(x - y) with a t 95% interval (paired over replicas)."""
    from scipy.stats import t as tdist

    d = np.asarray(x) - np.asarray(y)
    R = len(d)
    mu = d.mean()
    se = d.std(ddof=1) / np.sqrt(R)
    q = tdist.ppf(0.975, R - 1)
    return float(mu), float(mu - q * se), float(mu + q * se)


def mean_ci(x):
    from scipy.stats import t as tdist

    x = np.asarray(x)
    R = len(x)
    se = x.std(ddof=1) / np.sqrt(R)
    q = tdist.ppf(0.975, R - 1)
    return float(x.mean()), float(x.mean() - q * se), float(x.mean() + q * se)


def loglog_slope(xs, ys):
    xs, ys = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    if not np.all(np.isfinite(ys)):
        return float("nan")
    return float(np.polyfit(xs, ys, 1)[0])


def thm4_terms(prob, eta, mu, tau, r, T, dF):
    L, G2 = prob.L, prob.G2
    delta = r / prob.n
    t1 = 4 * (1 - mu) * dF / (eta * T)
    t2 = 2 * L * eta * prob.sigma2_A / ((1 - mu) * prob.N)
    t3 = 548 * L**2 * eta**2 * tau**2 * G2 / ((1 - mu) ** 4 * delta**2)
    return float(t1), float(t2), float(t3)


def to_jsonable(o):
    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return to_jsonable(o.tolist())
    if isinstance(o, (np.floating,)):
        o = float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, float) and not np.isfinite(o):
        return str(o)
    return o
