"""Cross-check: per-node ('nodes', faithful Algorithm 1/2 with local error feedback)
versus node-aggregated ('mean') simulation.  The two define the same process in exact
arithmetic (see floors_ref.simulate); in floating point single trajectories can
separate (rounding decides P~ at exact ties / mean_i xi = 0 steps), so the comparison
is statistical: floors (tail-half means of ||grad f||^2) with 95% bootstrap intervals,
same seeds.  Settings: psi random basis N = 3 and N = 4 (sigma = 5, mu = 0.9, r = 1,
tau = 10, eta = c0 (1-mu)/(2L) 10^-k, c0 = 0.2, k = 0, 1, R = 64) and a heterogeneous
family-G instance (m = 6, n = 4, k = 1, N = 5, h = 2, normal noise, kappa = 1, r = 1,
mu = 0.5, c0 = 0.2, k = 0, 1, R = 32).
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


def boot_ci(x, seed=0, B=1000):
    rng = np.random.default_rng(seed)
    ms = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(B)]
    return [float(np.percentile(ms, 2.5)), float(np.percentile(ms, 97.5))]


def one(prob, X0, mu, tau, r, c0, ks, seed, quick):
    rows = []
    for k in ks:
        eta = c0 * (1 - mu) / (2 * prob.L) * 10.0 ** (-k)
        rho = prob.L * eta / (1 - mu)
        T = int(np.ceil((80.0 if not quick else 10.0) / rho / 64)) * 64
        row = dict(k=k, eta=eta, T=T)
        for mode in ("nodes", "mean"):
            t0 = time.time()
            res = fr.simulate(prob, METHODS, eta, mu, tau, r, T, X0, seed + k, mode=mode)
            row[mode] = {
                m: dict(
                    floor=float(fr.window_mean(res[m]["blocks"], 0.5, 1).mean()),
                    ci95=boot_ci(fr.window_mean(res[m]["blocks"], 0.5, 1)),
                    nonfinite=res[m]["nonfinite"],
                )
                for m in METHODS
            }
            row[mode]["seconds"] = time.time() - t0
        row["overlap"] = {
            m: bool(
                row["nodes"][m]["ci95"][0] <= row["mean"][m]["ci95"][1]
                and row["mean"][m]["ci95"][0] <= row["nodes"][m]["ci95"][1]
            )
            for m in METHODS
        }
        rows.append(row)
        print(row, flush=True)
    return rows


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    out = {}
    R = 64 if not quick else 8
    ks = [0, 1] if not quick else [0]
    for N in (3, 4):
        prob = fr.make_psi([0, 1, 2, 3], R // 4, 5.0, N)
        X0 = fr.default_X0(prob, R, 1.0, 0.25, np.random.default_rng([seed, 11]), min_grad2=prob.omega2 / 4)
        out[f"psi_N{N}"] = dict(
            scope=dict(
                problem="psi_random_basis", N=N, sigma=5.0, mu=0.9, tau=10, r=1, c0=0.2, R=R, seed=seed
            ),
            rows=one(prob, X0, 0.9, 10, 1, 0.2, ks, seed, quick),
        )
    prob = fr.make_family(6, 4, 1, 5, [5.0] * 5, 1.0, "normal", 2.0, basis_seed=99)
    Rg = 32 if not quick else 8
    X0 = fr.default_X0(prob, Rg, 1.0, 0.25, np.random.default_rng([seed, 12]), min_grad2=prob.omega2 / 4)
    out["family_G_h2"] = dict(
        scope=dict(
            problem="family_G",
            m=6,
            n=4,
            k=1,
            N=5,
            h=2.0,
            sigma=5.0,
            noise="normal",
            kappa=1.0,
            mu=0.5,
            tau=10,
            r=1,
            c0=0.2,
            R=Rg,
            seed=seed,
        ),
        rows=one(prob, X0, 0.5, 10, 1, 0.2, ks, seed, quick),
    )
    out["run_seconds"] = time.time() - t0
    return fr.to_jsonable(out)


if __name__ == "__main__":
    os.makedirs(RES, exist_ok=True)
    quick = "--quick" in sys.argv
    out = run(quick=quick)
    fn = os.path.join(RES, "floors_modecheck" + (".quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", fn)
