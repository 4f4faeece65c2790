"""Q1: stationary floors of PowerSGD, PowerSGD+ and uncompressed MSGD versus eta.

floor(method, eta) = mean over replicas and over the last half of a run of
||grad f(X_t)||^2, with T * rho = S fixed (S = 80, raised to 20 rho_0/(1-mu) when larger), rho = L eta / (1 - mu) (so T ~ 1/eta;
T * eta = S (1 - mu) / L is reported).  Stationarity check: last-quarter mean /
third-quarter mean.  eta_k = c0 (1 - mu) / (2 L) 10^-k, k = 0, 1, 2.

(a) psi in a random basis: N = 4, sigma = 5, r = 1, mu = 0.9, c0 = 0.2, tau = 10,
    4 basis seeds x R = 32.  Supplementary: the same with N = 3 and N = 5
    (odd N: mean_i xi_i is never exactly 0).
(b) >= 24 random family-G instances, R = 16, tau = 10.

A value below RFLOOR * omega^2 (RFLOOR = 1e-20) is labelled 'rounding level':
it is set by float64 rounding, not by the algorithm.

CLI: python floors_eta.py [--quick] [--part psi|G0|G1|G2|G3|merge]
  parts write results/floors_eta.<part>.json; 'merge' (or no --part) writes
  results/floors_eta.json.
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
RFLOOR = 1e-20
METHODS = ["powersgd", "powersgd+", "msgd"]


def draw_instance(i, seed):
    rng = np.random.default_rng([31337, seed, i])
    m, n = sorted(rng.integers(2, 9, size=2).tolist(), reverse=True)
    k = int(rng.integers(1, n // 2 + 1))
    N = int(rng.integers(1, 9))
    sig0 = float(np.exp(rng.uniform(np.log(0.1), np.log(100.0))))
    spread = float(rng.uniform(0, 0.9))
    sig = np.clip(sig0 * (1 + spread * rng.uniform(-1, 1, N)), 0.1, 100.0)
    kappa = float(rng.uniform(0.25, 4.0))
    noise = ["rademacher", "normal", "uniform"][int(rng.integers(0, 3))]
    h = float(rng.uniform(0, 2))
    r = int(rng.integers(1, k + 1))
    mu = float(rng.uniform(0, 0.95))
    c0 = float(rng.uniform(0.05, 0.5))
    s = kappa * float(rng.uniform(0.375, 1.5))  # <A_j, X0> = 2 s in [0.75, 3] kappa
    return dict(
        idx=i,
        m=m,
        n=n,
        k=k,
        N=N,
        sigmas=sig.tolist(),
        sigma_base=sig0,
        spread=spread,
        kappa=kappa,
        noise=noise,
        h=h,
        r=r,
        mu=mu,
        c0=c0,
        tau=10,
        s=s,
        pert=0.25 * kappa,
        basis_seed=1000 * seed + i,
    )


def T_for(rho, S, quick):
    T = int(np.ceil(S / rho / 64.0)) * 64
    return max(T, 256 if not quick else 64)


def summarize_runs(runs, etas, Ts, omega2, strata, seed, rhos):
    """runs[k][method] -> stats dicts.  Returns per-eta and slope summaries."""
    out = {"per_eta": [], "slopes": {}}
    floors_rep = {
        mm: np.stack([window_mean(runs[k][mm]["blocks"], 0.5, 1.0) for k in range(len(etas))])
        for mm in METHODS
    }
    for k, eta in enumerate(etas):
        row = dict(k=k, eta=eta, T=Ts[k])
        for mm in METHODS:
            st = runs[k][mm]
            b = st["blocks"]
            fl = floors_rep[mm][k]
            q3 = window_mean(b, 0.5, 0.75).mean()
            q4 = window_mean(b, 0.75, 1.0).mean()
            lo, hi = boot_mean(fl, strata, seed)
            st_ok = bool(q3 > 0 and 0.5 < q4 / q3 < 2.0)
            rl = bool(fl.mean() < RFLOOR * omega2)
            status = (
                "rounding level (converged to float64 precision)"
                if rl and st_ok
                else "decaying (no stationary floor reached; q4/q3<0.5)"
                if (q3 > 0 and q4 / q3 <= 0.5)
                else "positive stationary floor"
                if st_ok
                else "non-stationary (q4/q3>=2)"
                if q3 > 0
                else "undefined"
            )
            row[mm] = dict(
                floor=float(fl.mean()),
                floor_ci95=[lo, hi],
                q4_over_q3=float(q4 / q3) if q3 > 0 else None,
                stationary_q4_q3_within_2x=bool(q3 > 0 and 0.5 < q4 / q3 < 2.0),
                rounding_level=rl,
                status=status,
                decay_rate_per_rho_t=decay_rate(b, Ts[k], rhos[k], omega2),
                frac_replicas_hit_1em12=float(np.mean(st["hit"][:, 1] < Ts[k])),
                median_hit_1em4_in_rho_t=float(np.median(st["hit"][:, 0]) * rhos[k]),
                median_hit_1em12_in_rho_t=float(np.median(st["hit"][:, 1]) * rhos[k]),
                max_t_ebar2_max_over_replicas=float(st["emax"].max()),
                max_t_ebar2_median_over_replicas=float(np.median(st["emax"])),
                max_t_mean_ebar2=st["e2_max_of_mean"],
                max_t_mean_m2=st["m2_max_of_mean"],
                zeroP_steps=int(st["zeroP"].sum()),
                nonfinite=st["nonfinite"],
            )
        est, lo, hi = fr.boot_ratio(
            floors_rep["powersgd"][k], floors_rep["powersgd+"][k], strata, seed=seed + k
        )
        row["ratio_powersgd_over_powersgdplus"] = dict(
            est=est,
            ci95=[lo, hi],
            both_rounding=row["powersgd"]["rounding_level"] and row["powersgd+"]["rounding_level"],
        )
        out["per_eta"].append(row)
    # log-log slopes of floor vs eta with a paired bootstrap over replicas
    rng = np.random.default_rng(seed + 99)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for mm in METHODS:
        F = floors_rep[mm]  # (K, R)
        sl = fr.loglog_slope(etas, F.mean(1))
        bs = []
        for _ in range(1000):
            idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
            bs.append(fr.loglog_slope(etas, F[:, idx].mean(1)))
        bs = np.array(bs)
        fm = F.mean(1)
        shrinks = bool(fm[-1] < 0.5 * fm[0])
        statuses = [out["per_eta"][k][mm]["status"] for k in range(len(etas))]
        pair_slopes = [fr.loglog_slope(etas[j : j + 2], fm[j : j + 2]) for j in range(len(etas) - 1)]
        out["slopes"][mm] = dict(
            slope=sl,
            ci95=[float(np.nanpercentile(bs, 2.5)), float(np.nanpercentile(bs, 97.5))],
            floor_at_etas=fm.tolist(),
            pairwise_slopes=pair_slopes,
            any_rounding_level=bool(np.any(fm < RFLOOR * omega2)),
            statuses=statuses,
            all_positive_stationary=all(x == "positive stationary floor" for x in statuses),
            shrinks_by_2x_over_100x_eta=shrinks,
        )
    return out


def decay_rate(blocks, T, rho, omega2):
    """Slope of log(replica-mean ||grad f||^2) versus rho*t, fitted on the blocks whose
    value lies in (1e-24, 1e-4) * omega^2 (None if fewer than 3 such blocks).
    """
    M = blocks.mean(0)
    nb = len(M)
    tt = (np.arange(nb) + 0.5) * (T / nb) * rho
    sel = (M > 1e-24 * omega2) & (M < 1e-4 * omega2)
    # use only the first contiguous decreasing stretch after the first selected block
    if sel.sum() < 3:
        return None
    return float(np.polyfit(tt[sel], np.log(M[sel]), 1)[0])


def window_mean(blocks, lo, hi):
    return fr.window_mean(blocks, lo, hi)


def boot_mean(x, strata, seed, B=1000):
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    ms = [x[np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])].mean() for _ in range(B)]
    return float(np.percentile(ms, 2.5)), float(np.percentile(ms, 97.5))


def run_psi(quick, seed, N=4, R_per=32, nbases=4, S=80.0):
    sigma, r, mu, c0, tau = 5.0, 1, 0.9, 0.2, 10
    if quick:
        R_per, nbases, S = 4, 2, 8.0
    bases = list(range(nbases))
    prob = fr.make_psi(bases, R_per, sigma, N)
    R = R_per * nbases
    X0 = fr.default_X0(prob, R, 1.0, 0.25, np.random.default_rng([seed, 11]), min_grad2=prob.omega2 / 4)
    strata = np.repeat(np.arange(nbases), R_per)
    etas, Ts, runs, secs = [], [], [], []
    for k in range(3 if not quick else 2):
        eta = c0 * (1 - mu) / (2 * prob.L) * 10.0 ** (-k)
        rho = prob.L * eta / (1 - mu)
        T = T_for(rho, S, quick)
        t0 = time.time()
        runs.append(fr.simulate(prob, METHODS, eta, mu, tau, r, T, X0, seed + 17 * k, mode="mean"))
        secs.append(time.time() - t0)
        etas.append(eta)
        Ts.append(T)
    summ = summarize_runs(runs, etas, Ts, prob.omega2, strata, seed, [prob.L * e / (1 - mu) for e in etas])
    dF = float(prob.f(X0).mean())
    return dict(
        problem=prob.name,
        scope=dict(
            N=N,
            sigma=sigma,
            r=r,
            mu=mu,
            tau=tau,
            c0=c0,
            basis_seeds=bases,
            R_per_basis=R_per,
            R=R,
            seed=seed,
            S_rho_T=S,
            T_times_eta=[T * e for T, e in zip(Ts, etas)],
            X0="s=1 (a0=2) + 0.25 Z/sqrt(mn), ||grad f(X0)||^2>=omega^2/4",
            mode="mean",
        ),
        constants=prob.constants(),
        DeltaF_mean=dF,
        seconds=secs,
        **summ,
    )


def run_G(quick, seed, idxs, S=80.0, R=16):
    out = []
    for i in idxs:
        ins = draw_instance(i, seed)
        if quick:
            ins["m"], ins["n"], ins["k"], ins["r"] = min(ins["m"], 4), min(ins["n"], 4), 1, 1
            ins["c0"] = max(ins["c0"], 0.3)
        prob = fr.make_family(
            ins["m"],
            ins["n"],
            ins["k"],
            ins["N"],
            ins["sigmas"],
            ins["kappa"],
            ins["noise"],
            ins["h"],
            ins["basis_seed"],
        )
        Rr = R if not quick else 4
        X0 = fr.default_X0(
            prob, Rr, ins["s"], ins["pert"], np.random.default_rng([seed, 13, i]), min_grad2=prob.omega2 / 4
        )
        mu, c0, tau, r = ins["mu"], ins["c0"], ins["tau"], ins["r"]
        rho0 = c0 / 2
        S_i = max(S, 20 * rho0 / (1 - mu)) if not quick else 6.0
        etas, Ts, runs, secs = [], [], [], []
        for k in range(3 if not quick else 2):
            eta = c0 * (1 - mu) / (2 * prob.L) * 10.0 ** (-k)
            rho = prob.L * eta / (1 - mu)
            T = T_for(rho, S_i, quick)
            t0 = time.time()
            runs.append(
                fr.simulate(prob, METHODS, eta, mu, tau, r, T, X0, seed + 1000 * i + 17 * k, mode="mean")
            )
            secs.append(time.time() - t0)
            etas.append(eta)
            Ts.append(T)
        summ = summarize_runs(
            runs,
            etas,
            Ts,
            prob.omega2,
            np.zeros(Rr, dtype=int),
            seed + i,
            [prob.L * e / (1 - mu) for e in etas],
        )
        ins.update(
            dict(
                R=Rr,
                seed=seed,
                S_rho_T=S_i,
                T_times_eta=[T * e for T, e in zip(Ts, etas)],
                delta=r / prob.n,
                mode="mean",
            )
        )
        out.append(
            dict(
                problem="family_G",
                scope=ins,
                constants=prob.constants(),
                DeltaF_mean=float(prob.f(X0).mean()),
                grad2_X0_min=float(fr._gn2_rep(prob, X0).min()),
                seconds=secs,
                **summ,
            )
        )
        print(
            f"  instance {i}: m{prob.m} n{prob.n} k{prob.k} N{prob.N} r{r} mu{mu:.2f} c0{c0:.2f} {ins['noise']} "
            f"T={Ts} {sum(secs):.0f}s ratio={[round(x['ratio_powersgd_over_powersgdplus']['est'], 3) for x in summ['per_eta']]}",
            flush=True,
        )
    return out


def aggregate_G(instances, seed):
    """Distribution over instances of floor(PowerSGD)/floor(PowerSGD+) at each k."""
    agg = {}
    K = len(instances[0]["per_eta"])
    rng = np.random.default_rng(seed + 5)
    for k in range(K):
        ratios = np.array([ins["per_eta"][k]["ratio_powersgd_over_powersgdplus"]["est"] for ins in instances])
        valid = np.array(
            [not ins["per_eta"][k]["ratio_powersgd_over_powersgdplus"]["both_rounding"] for ins in instances]
        )
        rv = ratios[valid & np.isfinite(ratios)]
        med_bs = (
            [np.median(rv[rng.integers(0, len(rv), len(rv))]) for _ in range(2000)] if len(rv) else [np.nan]
        )
        ci_excl1 = [ins["per_eta"][k]["ratio_powersgd_over_powersgdplus"]["ci95"] for ins in instances]
        agg[f"k{k}"] = dict(
            n_instances=int(len(rv)),
            n_excluded_both_rounding=int((~valid).sum()),
            median=float(np.median(rv)) if len(rv) else None,
            median_ci95=[float(np.percentile(med_bs, 2.5)), float(np.percentile(med_bs, 97.5))],
            p10=float(np.percentile(rv, 10)) if len(rv) else None,
            p90=float(np.percentile(rv, 90)) if len(rv) else None,
            min=float(rv.min()) if len(rv) else None,
            max=float(rv.max()) if len(rv) else None,
            n_ci_above_1=int(sum(c[0] > 1 for c in ci_excl1)),
            n_ci_below_1=int(sum(c[1] < 1 for c in ci_excl1)),
        )
    # slope distribution and non-convergence flags
    for mm in METHODS:
        sl = np.array([ins["slopes"][mm]["slope"] for ins in instances])
        rl = np.array([ins["slopes"][mm]["any_rounding_level"] for ins in instances])
        agg[f"slope_{mm}"] = dict(
            median_non_rounding=float(np.nanmedian(sl[~rl])) if (~rl).any() else None,
            p10=float(np.nanpercentile(sl[~rl], 10)) if (~rl).any() else None,
            p90=float(np.nanpercentile(sl[~rl], 90)) if (~rl).any() else None,
            n_with_rounding_level_floor=int(rl.sum()),
            n_all_positive_stationary=int(
                sum(ins["slopes"][mm]["all_positive_stationary"] for ins in instances)
            ),
            slopes_all_positive_stationary=[
                ins["slopes"][mm]["slope"]
                for ins in instances
                if ins["slopes"][mm]["all_positive_stationary"]
            ],
            status_counts={
                st: int(sum(x == st for ins in instances for x in ins["slopes"][mm]["statuses"]))
                for st in sorted({x for ins in instances for x in ins["slopes"][mm]["statuses"]})
            },
            not_shrinking=[
                ins["scope"]["idx"]
                for ins in instances
                if not ins["slopes"][mm]["shrinks_by_2x_over_100x_eta"]
                and ins["slopes"][mm]["all_positive_stationary"]
            ],
        )
    return agg


def run(quick: bool = False, seed: int = 0, part: str | None = None) -> dict:
    t0 = time.time()
    res = {}
    n_inst = 24 if not quick else 2
    parts = {"psi": None, "G0": range(0, 6), "G1": range(6, 12), "G2": range(12, 18), "G3": range(18, 24)}
    todo = [part] if part else (["psi", "G0", "G1", "G2", "G3"])
    if quick:
        todo = ["psi", "Gq"]
        parts["Gq"] = range(0, n_inst)
    for p in todo:
        if p == "psi":
            res["psi_random_basis_N4"] = run_psi(quick, seed, N=4)
            if not quick:
                res["psi_random_basis_N3_supplementary"] = run_psi(quick, seed, N=3)
                res["psi_random_basis_N5_supplementary"] = run_psi(quick, seed, N=5)
        else:
            res.setdefault("family_G_instances", []).extend(run_G(quick, seed, parts[p]))
    if "family_G_instances" in res and (quick or part is None):
        res["family_G_aggregate"] = aggregate_G(res["family_G_instances"], seed)
    res["run_seconds"] = time.time() - t0
    return fr.to_jsonable(res)


def merge(seed=0):
    out = {}
    for p in ["psi", "G0", "G1", "G2", "G3"]:
        fn = os.path.join(RES, f"floors_eta.{p}.json")
        with open(fn) as f:
            d = json.load(f)
        for key, v in d.items():
            if key == "family_G_instances":
                out.setdefault(key, []).extend(v)
            elif key == "run_seconds":
                out[f"run_seconds_{p}"] = v
            else:
                out[key] = v
    out["family_G_aggregate"] = fr.to_jsonable(aggregate_G(out["family_G_instances"], seed))
    return out


if __name__ == "__main__":
    os.makedirs(RES, exist_ok=True)
    quick = "--quick" in sys.argv
    part = None
    if "--part" in sys.argv:
        part = sys.argv[sys.argv.index("--part") + 1]
    if part == "merge":
        out = merge()
        fn = os.path.join(RES, "floors_eta.json")
    else:
        out = run(quick=quick, part=part)
        fn = os.path.join(
            RES, "floors_eta" + (".quick" if quick else "") + (f".{part}" if part else "") + ".json"
        )
    with open(fn, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", fn)
