"""Q4: PowerSGD+ (exact SVD restart every tau = 10 steps) started on a locked run.

Aligned basis, N = 4, sigma = 5, lock forced (xi_0 = +1 on all nodes), MSGD mu = 0.9, R = 100,
T = 1000 for eta in {5e-3, 1.6e-3, 5e-4, 1.6e-4}, and T = 10000 for eta = 1.6e-4.
float64, QR = p/|p|, QR(0) 'previous' + bound test; SVD-COMP uses the closed-form top left
singular vector of the node-averaged Delta (exact for diagonal matrices; ties -> e1).

Diagnostic (not part of the paper): the same runs with psi(x) = x^2 (no linear tails), to see
whether the non-convergence at large eta needs the Huber tails; and the 'dump gain'
20 eta <a, Dhat a> / s at restarts that choose A's direction (the total change of s that one
transmitted update produces through momentum, eta/(1-mu) * <A, Dhat>, relative to s).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import mean_ci, simulate, wilson  # noqa: E402

LOCK_TOL = 1e-12


def analyse(o, eta, T):
    R = len(o["grad2_T"])
    lk = o["lock"]
    left_after_first_restart = lk[10][:, 0] > LOCK_TOL  # X_11 - X_0 not in span(B)
    left_before_restart = np.any(lk[:10, :, 0] > LOCK_TOL, axis=0)
    sd = o["svd_dir"]  # (n_restarts, R) True = A's direction
    g = o["grad2_T"]
    sT = o["s_T"]
    s = o["s"]
    # dump gain at restarts that chose A, with |s| in the quadratic zone
    gains = []
    for k, t in enumerate(o["svd_dir_t"]):
        if t == 0:
            continue
        selA = sd[k] & (np.abs(s[t]) < 1.0) & (np.abs(s[t]) > 1e-12)
        if selA.any():
            gains.append(np.abs(20 * eta * o["dhat_a"][t][selA] / s[t][selA]))
    gains = np.concatenate(gains) if gains else np.array([])
    # consecutive B-choosing restarts before an A choice (from t >= 10)
    runs = []
    for rr in range(R):
        c = 0
        for k in range(1, sd.shape[0]):
            if sd[k, rr]:
                runs.append(c)
                c = 0
            else:
                c += 1
    half = sd.shape[0] // 2
    return dict(
        eta=eta,
        T=T,
        R=R,
        frac_left_span_B_right_after_first_restart=float(left_after_first_restart.mean()),
        frac_left_before_first_restart=float(left_before_restart.mean()),
        svd_at_t0_chose_A=float(sd[0].mean()),
        svd_at_t10_chose_A=float(sd[1].mean()),
        frac_restarts_choosing_A_all=float(sd[1:].mean()),
        frac_restarts_choosing_A_second_half=float(sd[half:].mean()),
        mean_B_restarts_between_A_restarts=float(np.mean(runs)) if runs else None,
        frac_grad2_T_below_1em6=float(np.mean(g < 1e-6)),
        wilson95=wilson(int(np.sum(g < 1e-6)), R),
        E_grad2_T=mean_ci(g),
        s_T_quantiles_10_50_90=np.quantile(sT, [0.1, 0.5, 0.9]).tolist(),
        abs_s_median_at=dict(
            (str(t), float(np.median(np.abs(s[t])))) for t in (10, 11, 20, 50, 100, 300, T) if t <= T
        ),
        max_abs_s=float(np.max(np.abs(s))),
        time_avg_grad2_last_10pct=float(
            np.mean(
                4
                * np.where(
                    np.abs(s[int(0.9 * T) :]) <= 1, 2 * s[int(0.9 * T) :], 2 * np.sign(s[int(0.9 * T) :])
                )
                ** 2
            )
        ),
        dump_gain_at_A_restarts_quadratic_zone=dict(
            n=int(len(gains)),
            quantiles_25_50_75=np.quantile(gains, [0.25, 0.5, 0.75]).tolist() if len(gains) else None,
        ),
        p_zero_replica_steps=dict(
            exact=int(o["counts"]["p_exact_zero"].sum()), bound=int(o["counts"]["p_bound_zero"].sum())
        ),
        svd_ties=int(o["counts"]["svd_tie"].sum()),
    )


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 20 if quick else 100
    Tm = 200 if quick else 1000
    cases = [(5e-3, Tm), (1.6e-3, Tm), (5e-4, Tm), (1.6e-4, Tm)] + ([] if quick else [(1.6e-4, 10000)])
    out = dict(
        scope=dict(
            question="Q4 SVD restart on a locked run",
            basis="aligned",
            N=4,
            sigma=5,
            lock_forced=True,
            method="PowerSGD+ tau=10 (SVD-COMP at t%10==0, t from 0)",
            optimizer="MSGD",
            mu=0.9,
            R=R,
            precision="float64",
            qr="normalize",
            qr0_convention="previous + bound test",
            X0="I",
            Q_init="standard normal",
            lock_tol=LOCK_TOL,
            seed=seed,
            left_span_B_definition="||(X_11-X_0) - proj_B(X_11-X_0)||_F > 1e-12 (X_11 = iterate after step t=10)",
        ),
        results={},
        quadratic_psi_diagnostic={},
    )
    for eta, T in cases:
        o = simulate(
            N=4,
            R=R,
            T=T,
            sigma=5.0,
            basis="aligned",
            method="powersgd+",
            tau=10,
            eta=eta,
            mu=0.9,
            lock_forced=True,
            seed=seed,
            record=("s", "lock", "dhat_a"),
        )
        out["results"][f"eta{eta:g}_T{T}"] = analyse(o, eta, T)
        if T == Tm:
            oq = simulate(
                N=4,
                R=R,
                T=T,
                sigma=5.0,
                basis="aligned",
                method="powersgd+",
                tau=10,
                eta=eta,
                mu=0.9,
                lock_forced=True,
                seed=seed,
                record=("s",),
                psi_kind="quadratic",
            )
            sq = np.abs(oq["s"])
            out["quadratic_psi_diagnostic"][f"eta{eta:g}_T{T}"] = dict(
                median_abs_s_at=dict(
                    (str(t), float(np.median(sq[t]))) for t in sorted({100, 300, T // 2, T}) if t <= T
                ),
                max_abs_s=float(sq.max()),
                frac_abs_s_T_below_1em3=float(np.mean(sq[T] < 1e-3)),
            )
    out["wall_s"] = time.time() - t0
    return out


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(d, exist_ok=True)
    fn = os.path.join(d, "t4_svd_restart" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1, default=_default)
    print(json.dumps(res, indent=1, default=_default)[:3000])
    print("wrote", fn, "in %.1fs" % res["wall_s"])
