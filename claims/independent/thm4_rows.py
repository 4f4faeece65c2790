"""Q3: Theorem 4 rows where the bound is non-vacuous, and the measured PowerSGD+
excess over uncompressed MSGD there.

Theorem 4 (paper, Appendix B), for eta <= (1 - mu)/(2L):
  (1/T) sum_{t<T} E||grad f(X_t)||^2 <= t1 + t2 + t3,
  t1 = 4 (1-mu) DeltaF / (eta T),  t2 = 2 L eta sigma^2 / ((1-mu) N),
  t3 = 548 L^2 eta^2 tau^2 G^2 / ((1-mu)^4 delta^2),   delta = r/n, G^2 = sigma^2 + omega^2,
with L = 8, omega^2 = 16 k kappa^2, sigma^2 = 4 k max_i sigma_i^2 + omega^2 (floors_ref).
Vacuity threshold: the trivial bound sup ||grad f||^2 = omega^2.  X0 is taken with every
a_j = <A_j, X0> = 2 s >= kappa (saturated, no perturbation), so ||grad f(X0)||^2 = omega^2 too:
the two thresholds of the brief coincide and 'bound < omega^2' is the criterion.

Row construction: eta from t3 = f3 * omega^2, then T from t1 + t2 + t3 = fB * omega^2 (fB < 1).
Measured (paired: same X0, Q_{-1}, noise per replica): LHS = (1/T) sum_{t<T} ||grad f(X_t)||^2
for PowerSGD+, MSGD, PowerSGD; excess = LHS(PowerSGD+) - LHS(MSGD) with a t-interval.
For each row a long run (T_long = 80 / rho, rho = L eta/(1-mu)) estimates the stationary
floors (tail-half means), used for the extrapolation 'what T gives excess >= 10% of LHS'.
"""

from __future__ import annotations

import json
import os
import sys
import time

import floors_ref as fr
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
METHODS = ["powersgd", "powersgd+", "msgd"]


def build_problem(pname, sigma, R):
    if pname.startswith("psi"):
        N = int(pname[4:])
        nb = 4
        prob = fr.make_psi(list(range(nb)), R // nb, sigma, N)
        r, s = 1, 1.0
    elif pname == "G_4x2_k1_N3":
        prob = fr.make_family(4, 2, 1, 3, [sigma] * 3, 1.0, "normal", 0.5, basis_seed=515)
        r, s = 1, 1.0
    elif pname == "G_6x4_k2_N2":
        sig = [sigma * 0.6, sigma * 1.4]
        prob = fr.make_family(6, 4, 2, 2, sig, 0.5, "uniform", 1.0, basis_seed=616)
        r, s = 2, 0.5
    else:
        raise ValueError(pname)
    X0 = fr.default_X0(prob, R, s, 0.0, np.random.default_rng(0))
    return prob, X0, r


def bound_terms(prob, eta, mu, tau, r, T, dF):
    return fr.thm4_terms(prob, eta, mu, tau, r, T, dF)


def design(prob, mu, tau, r, dF, f3, fB):
    """Eta with t3 = f3 omega^2; T with total bound = fB omega^2."""
    delta = r / prob.n
    w2 = prob.omega2
    eta = np.sqrt(f3 * w2 * (1 - mu) ** 4 * delta**2 / (548 * prob.L**2 * tau**2 * prob.G2))
    eta = min(eta, (1 - mu) / (2 * prob.L))
    t2 = 2 * prob.L * eta * prob.sigma2_A / ((1 - mu) * prob.N)
    t3 = 548 * prob.L**2 * eta**2 * tau**2 * prob.G2 / ((1 - mu) ** 4 * delta**2)
    room = fB * w2 - t2 - t3
    if room <= 0:
        return None
    T = 4 * (1 - mu) * dF / (eta * room)
    T = int(np.ceil(T / 64)) * 64
    return float(eta), T


def measure_row(spec, R, seed, quick):
    prob, X0, r = build_problem(spec["problem"], spec["sigma"], R)
    dF = float(prob.f(X0).mean())
    g0 = float(fr._gn2_rep(prob, X0).mean())
    des = design(prob, spec["mu"], spec["tau"], r, dF, spec["f3"], spec["fB"])
    if des is None:
        return None
    eta, T = des
    if quick:
        T = min(T, 2048)
    t1, t2, t3 = bound_terms(prob, eta, spec["mu"], spec["tau"], r, T, dF)
    t0 = time.time()
    res = fr.simulate(prob, METHODS, eta, spec["mu"], spec["tau"], r, T, X0, seed, mode="mean")
    lhs = {m: res[m]["blocks"].mean(1) for m in METHODS}  # per replica (1/T) sum_{t<T}
    ex = fr.paired_diff(lhs["powersgd+"], lhs["msgd"])
    ex_psgd = fr.paired_diff(lhs["powersgd"], lhs["msgd"])
    lhs_plus = lhs["powersgd+"].mean()
    # long run for stationary floors
    rho = prob.L * eta / (1 - spec["mu"])
    Tl = int(np.ceil((80.0 if not quick else 10.0) / rho / 64)) * 64
    resl = fr.simulate(prob, METHODS, eta, spec["mu"], spec["tau"], r, Tl, X0, seed + 1, mode="mean")
    floors = {m: fr.mean_ci(fr.window_mean(resl[m]["blocks"], 0.5, 1.0)) for m in METHODS}
    q43 = {
        m: float(
            fr.window_mean(resl[m]["blocks"], 0.75, 1.0).mean()
            / max(fr.window_mean(resl[m]["blocks"], 0.5, 0.75).mean(), 1e-300)
        )
        for m in METHODS
    }
    # sums over the first T steps (for the extrapolation)
    S_plus, S_msgd = lhs_plus * T, lhs["msgd"].mean() * T
    F = floors["powersgd+"][0] - floors["msgd"][0]
    extrap = None
    if F > 0:
        # (dS + (T' - T) F) / (S_plus + (T' - T) F_plus) = 0.1 with MSGD's tail negligible
        Fp = floors["powersgd+"][0]
        dS = S_plus - S_msgd
        # solve dS + x F = 0.1 (S_plus + x Fp)  ->  x = (0.1 S_plus - dS) / (F - 0.1 Fp)
        denom = F - 0.1 * Fp
        x = (0.1 * S_plus - dS) / denom if denom > 0 else None
        if x is not None:
            Tn = T + max(x, 0.0)
            tb = bound_terms(prob, eta, spec["mu"], spec["tau"], r, Tn, dF)
            extrap = dict(
                T_needed_for_10pct=float(Tn),
                bound_at_that_T=float(sum(tb)),
                bound_terms_at_that_T=list(tb),
                non_vacuous=bool(sum(tb) < prob.omega2),
                stationary_floor_excess=F,
                floor_plus=Fp,
            )
    row = dict(
        spec=spec,
        problem=prob.name if not spec["problem"].startswith("psi") else spec["problem"],
        m=prob.m,
        n=prob.n,
        k=prob.k,
        N=prob.N,
        sigma=spec["sigma"],
        sigmas=prob.sigmas.tolist(),
        r=r,
        delta=r / prob.n,
        tau=spec["tau"],
        mu=spec["mu"],
        eta=eta,
        eta_max=(1 - spec["mu"]) / (2 * prob.L),
        T=T,
        R=R,
        seed=seed,
        X0="saturated, a_j=2s>=kappa, no perturbation",
        L=prob.L,
        omega2=prob.omega2,
        grad2_X0=g0,
        sigma2_assump2=prob.sigma2_A,
        G2=prob.G2,
        DeltaF=dF,
        t1=t1,
        t2=t2,
        t3=t3,
        bound=t1 + t2 + t3,
        bound_over_omega2=(t1 + t2 + t3) / prob.omega2,
        non_vacuous=bool(t1 + t2 + t3 < prob.omega2),
        lhs={m: fr.mean_ci(lhs[m]) for m in METHODS},
        excess=ex,
        excess_significant_positive=bool(ex[1] > 0),
        excess_share_of_lhs_plus=float(ex[0] / lhs_plus),
        excess_share_ci95=[float(ex[1] / lhs_plus), float(ex[2] / lhs_plus)],
        excess_over_t3=float(ex[0] / t3),
        excess_powersgd_minus_msgd=ex_psgd,
        long_run=dict(T=Tl, floors_tail_half=floors, q4_over_q3=q43),
        extrapolation_10pct=extrap,
        seconds=time.time() - t0,
    )
    return row


def corollary(row_prob, row):
    """Corollary 1's step size and rate vs Theorem 4's bound at that step size."""
    prob, X0, r = build_problem(row["spec"]["problem"], row["sigma"], 8)
    L, mu, tau, N, dF = prob.L, row["mu"], row["tau"], prob.N, row["DeltaF"]
    s2, G2, delta = prob.sigma2_A, prob.G2, r / prob.n
    out = []
    for T in [row["T"], 10 * row["T"], 10**6, 10**9]:
        inv = (
            2 * L / (1 - mu)
            + np.sqrt(L * s2 * T / (2 * (1 - mu) ** 2 * N * dF))
            + (274 * L**2 * tau**2 * G2 * T / ((1 - mu) ** 5 * delta**2 * dF)) ** (1 / 3)
        )
        eta = 1 / inv
        t1, t2, t3 = fr.thm4_terms(prob, eta, mu, tau, r, T, dF)
        rate = (
            np.sqrt(32 * L * s2 * dF / (N * T))
            + 8 * L * dF / T
            + 6
            * 274 ** (1 / 3)
            * (L * tau * np.sqrt(G2) * dF) ** (2 / 3)
            / (T ** (2 / 3) * delta ** (2 / 3) * (1 - mu) ** (2 / 3))
        )
        out.append(
            dict(
                T=T,
                eta_star=eta,
                eta_max=(1 - mu) / (2 * L),
                eta_ok=bool(eta <= (1 - mu) / (2 * L)),
                thm4_terms=[t1, t2, t3],
                thm4_bound=t1 + t2 + t3,
                corollary_rate=rate,
                bound_le_rate=bool(t1 + t2 + t3 <= rate * (1 + 1e-12)),
                rate_over_bound=rate / (t1 + t2 + t3),
                rate_over_omega2=rate / prob.omega2,
            )
        )
    return out


def specs(quick):
    S = []
    if quick:
        return [
            dict(problem="psiN4", sigma=1.0, mu=0.0, tau=1, f3=0.2, fB=0.9),
            dict(problem="psiN3", sigma=1.0, mu=0.0, tau=1, f3=0.2, fB=0.9),
        ]
    for prob in ["psiN4", "psiN3", "psiN1"]:
        for sigma in [0.5, 2.0]:
            for tau in [1, 4]:
                S.append(dict(problem=prob, sigma=sigma, mu=0.0, tau=tau, f3=0.3, fB=0.9))
    for prob in ["psiN4", "psiN3"]:
        S.append(dict(problem=prob, sigma=2.0, mu=0.5, tau=1, f3=0.3, fB=0.9))
        S.append(dict(problem=prob, sigma=8.0, mu=0.0, tau=1, f3=0.3, fB=0.9))
        S.append(dict(problem=prob, sigma=2.0, mu=0.0, tau=1, f3=0.6, fB=0.95))
    for prob in ["G_4x2_k1_N3", "G_6x4_k2_N2"]:
        for sigma in [0.5, 2.0]:
            for tau in [1, 4]:
                S.append(dict(problem=prob, sigma=sigma, mu=0.0, tau=tau, f3=0.3, fB=0.9))
    return S


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    rows = []
    for sp in specs(quick):
        R = (256 if sp["problem"].startswith("psi") else 128) if not quick else 16
        row = measure_row(sp, R, seed, quick)
        if row is None:
            continue
        rows.append(row)
        print(
            f"{sp} eta={row['eta']:.3g} T={row['T']} bound/omega2={row['bound_over_omega2']:.3f} "
            f"LHS+={row['lhs']['powersgd+'][0]:.4g} LHSm={row['lhs']['msgd'][0]:.4g} excess={row['excess'][0]:.3g} "
            f"[{row['excess'][1]:.2g},{row['excess'][2]:.2g}] share={row['excess_share_of_lhs_plus']:.4f} "
            f"floor+={row['long_run']['floors_tail_half']['powersgd+'][0]:.3g} ({row['seconds']:.0f}s)",
            flush=True,
        )
    qual = [r_ for r_ in rows if r_["non_vacuous"] and r_["excess_significant_positive"]]
    best = max(qual, key=lambda r_: r_["excess_share_of_lhs_plus"]) if qual else None
    out = dict(
        rows=rows,
        n_rows=len(rows),
        n_qualifying=len(qual),
        qualifying_idx=[i for i, r_ in enumerate(rows) if r_ in qual],
        max_share_qualifying=dict(
            share=best["excess_share_of_lhs_plus"],
            ci95=best["excess_share_ci95"],
            spec=best["spec"],
            eta=best["eta"],
            T=best["T"],
        )
        if best
        else None,
    )
    if rows:
        pick = best if best else rows[0]
        out["corollary1_check"] = dict(row_spec=pick["spec"], values=corollary(None, pick))
    out["run_seconds"] = time.time() - t0
    return fr.to_jsonable(out)


if __name__ == "__main__":
    os.makedirs(RES, exist_ok=True)
    quick = "--quick" in sys.argv
    out = run(quick=quick)
    fn = os.path.join(RES, "thm4_rows" + (".quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", fn)
