"""Q3 check of the T-extrapolation used in thm4_rows: rerun the row with the largest
measured share (psi N = 1, sigma = 2, mu = 0, tau = 1, eta from thm4_rows) at a horizon
~256x longer and compare the measured excess share with the prediction
share(T') = (dS + (T' - T) F) / (S_plus + (T' - T) F_plus), where dS, S_plus are the
paired excess sum and PowerSGD+ sum over the first T steps (thm4_rows) and F, F_plus the
stationary floors from thm4_rows' long run (MSGD's floor is at rounding level).
"""

from __future__ import annotations

import json
import os
import sys
import time

import floors_ref as fr
from thm4_rows import build_problem

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
METHODS = ["powersgd", "powersgd+", "msgd"]


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    rows = json.load(open(os.path.join(RES, "thm4_rows.json")))["rows"]
    row = max(rows, key=lambda r: r["excess_share_of_lhs_plus"])
    sp = row["spec"]
    R = 64 if not quick else 8
    Tn = 409600 if not quick else 6400
    prob, X0, r = build_problem(sp["problem"], sp["sigma"], R)
    res = fr.simulate(prob, METHODS, row["eta"], sp["mu"], sp["tau"], r, Tn, X0, seed + 5, mode="mean")
    lhs = {m: res[m]["blocks"].mean(1) for m in METHODS}
    ex = fr.paired_diff(lhs["powersgd+"], lhs["msgd"])
    lp = float(lhs["powersgd+"].mean())
    T0 = row["T"]
    dS = row["excess"][0] * T0
    Sp = row["lhs"]["powersgd+"][0] * T0
    F = row["long_run"]["floors_tail_half"]["powersgd+"][0] - row["long_run"]["floors_tail_half"]["msgd"][0]
    Fp = row["long_run"]["floors_tail_half"]["powersgd+"][0]
    pred = (dS + (Tn - T0) * F) / (Sp + (Tn - T0) * Fp)
    dF = row["DeltaF"]
    t1, t2, t3 = fr.thm4_terms(prob, row["eta"], sp["mu"], sp["tau"], r, Tn, dF)
    out = dict(
        scope=dict(spec=sp, eta=row["eta"], T=Tn, R=R, seed=seed + 5, N=prob.N, r=r, mode="mean"),
        measured=dict(
            lhs={m: fr.mean_ci(lhs[m]) for m in METHODS},
            excess=ex,
            share=ex[0] / lp,
            share_ci95=[ex[1] / lp, ex[2] / lp],
            tail_half_floor_plus=fr.mean_ci(fr.window_mean(res["powersgd+"]["blocks"], 0.5, 1.0)),
        ),
        predicted_share=pred,
        inputs=dict(T0=T0, dS=dS, S_plus=Sp, F=F, F_plus=Fp),
        bound_terms=[t1, t2, t3],
        bound=t1 + t2 + t3,
        omega2=prob.omega2,
        run_seconds=time.time() - t0,
    )
    print(out, flush=True)
    return fr.to_jsonable(out)


if __name__ == "__main__":
    os.makedirs(RES, exist_ok=True)
    quick = "--quick" in sys.argv
    out = run(quick=quick)
    fn = os.path.join(RES, "thm4_verify" + (".quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", fn)
