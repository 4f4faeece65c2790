"""Q3 follow-up: how the PowerSGD+ excess share of the measured LHS grows with eta
(the 'eta route' to a 10% share), and what Theorem 4's bound is there.

psi in a random basis (N = 3 and N = 4, r = 1, mu = 0, tau = 1, sigma in {2, 8}),
X0 saturated (a0 = 2, DeltaF = 3, ||grad f(X0)||^2 = omega^2 = 16).
eta = f * eta_nv where eta_nv makes t3 = 0.3 omega^2 (as in thm4_rows), f in
{1, 3, 10, 30, 100} capped at (1-mu)/(2L); T = 4 DeltaF / (eta * 0.5 omega^2) (t1 = omega^2/2),
so T * eta is the same at every f (transient-dominated LHS).  Paired runs, R = 256.
Reported: LHS of PowerSGD+ / MSGD / PowerSGD, excess and share with 95% intervals,
t1, t2, t3, bound / omega^2.
"""

from __future__ import annotations

import json
import os
import sys
import time

import floors_ref as fr
import numpy as np
from thm4_rows import build_problem

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
METHODS = ["powersgd", "powersgd+", "msgd"]


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    out = dict(
        scope=dict(
            problem="psi_random_basis",
            r=1,
            mu=0.0,
            tau=1,
            R=256 if not quick else 16,
            seed=seed,
            eta_rule="eta = f * eta_nv, t3(eta_nv) = 0.3 omega^2",
            T_rule="t1 = omega^2/2",
        ),
        rows=[],
    )
    fs = [1, 3, 10, 30, 100] if not quick else [1, 10]
    R = 256 if not quick else 16
    mu, tau = 0.0, 1
    for pname in ["psiN3", "psiN4"] if not quick else ["psiN3"]:
        for sigma in [2.0, 8.0] if not quick else [2.0]:
            prob, X0, r = build_problem(pname, sigma, R)
            dF = float(prob.f(X0).mean())
            delta = r / prob.n
            eta_nv = np.sqrt(
                0.3 * prob.omega2 * (1 - mu) ** 4 * delta**2 / (548 * prob.L**2 * tau**2 * prob.G2)
            )
            for f in fs:
                eta = min(f * eta_nv, (1 - mu) / (2 * prob.L))
                T = int(np.ceil(4 * (1 - mu) * dF / (eta * 0.5 * prob.omega2) / 64)) * 64
                if quick:
                    T = min(T, 1024)
                res = fr.simulate(prob, METHODS, eta, mu, tau, r, T, X0, seed, mode="mean")
                lhs = {m: res[m]["blocks"].mean(1) for m in METHODS}
                ex = fr.paired_diff(lhs["powersgd+"], lhs["msgd"])
                lp = float(lhs["powersgd+"].mean())
                t1, t2, t3 = fr.thm4_terms(prob, eta, mu, tau, r, T, dF)
                row = dict(
                    problem=pname,
                    N=prob.N,
                    sigma=sigma,
                    f=f,
                    eta=float(eta),
                    eta_nv=float(eta_nv),
                    eta_max=(1 - mu) / (2 * prob.L),
                    T=T,
                    T_times_eta=T * eta,
                    lhs={m: fr.mean_ci(lhs[m]) for m in METHODS},
                    excess=ex,
                    share=ex[0] / lp,
                    share_ci95=[ex[1] / lp, ex[2] / lp],
                    excess_psgd=fr.paired_diff(lhs["powersgd"], lhs["msgd"]),
                    t1=t1,
                    t2=t2,
                    t3=t3,
                    bound=t1 + t2 + t3,
                    bound_over_omega2=(t1 + t2 + t3) / prob.omega2,
                    t2_plus_t3_over_omega2=(t2 + t3) / prob.omega2,
                    omega2=prob.omega2,
                    G2=prob.G2,
                    sigma2_assump2=prob.sigma2_A,
                    DeltaF=dF,
                )
                out["rows"].append(row)
                print(
                    f"{pname} sigma={sigma} f={f} eta={eta:.3g} T={T} LHS+={lp:.4g} share={row['share']:.4f} "
                    f"[{row['share_ci95'][0]:.4f},{row['share_ci95'][1]:.4f}] (t2+t3)/omega2={row['t2_plus_t3_over_omega2']:.3g}",
                    flush=True,
                )
    out["run_seconds"] = time.time() - t0
    return fr.to_jsonable(out)


if __name__ == "__main__":
    os.makedirs(RES, exist_ok=True)
    quick = "--quick" in sys.argv
    out = run(quick=quick)
    fn = os.path.join(RES, "thm4_share" + (".quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", fn)
