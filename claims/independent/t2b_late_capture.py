"""Q2 supplement: 'late capture' into the exact B-lock of runs that were NOT locked at t = 0.

Aligned basis, sigma = 5, PowerSGD + MSGD (mu = 0.9, eta = 5e-4), xi_0 not forced, T = 1000,
R = 300, N in {3, 4}, precision in {float64, float32, bfloat16}, QR = p/|p|, 'previous' + bound.
A run is 'permanently B-locked from step k' if P~_t = +-e1 and Q_t in span(e1) bitwise for every
t >= k up to T-1.  'Late capture' = k >= 1.  If the capture step moves earlier when the precision
is coarser, the capture is a rounding effect (in exact arithmetic the off-axis component of P~
would stay nonzero).  Also reported: the last step at which <A,X_t> changed, and the final
||grad f||^2 of captured vs not-captured runs.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import simulate  # noqa: E402


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 40 if quick else 300
    T = 300 if quick else 1000
    out = dict(
        scope=dict(
            question="Q2 supplement: late capture",
            basis="aligned",
            sigma=5,
            eta=5e-4,
            mu=0.9,
            T=T,
            R=R,
            lock_forced=False,
            qr="normalize",
            qr0_convention="previous + bound",
            seed=seed,
        ),
        results={},
    )
    for N in (3, 4):
        for prec in ("float64", "float32", "bfloat16"):
            o = simulate(
                N=N,
                R=R,
                T=T,
                sigma=5.0,
                basis="aligned",
                method="powersgd",
                eta=5e-4,
                mu=0.9,
                seed=seed,
                precision=prec,
                record=("s", "pq"),
            )
            pq = o["pq"]
            b = (pq[..., 1] == 0) & (pq[..., 0] > 0) & (pq[..., 3] == 0)
            perm = np.full(R, -1)
            for i in range(R):
                nb = np.where(~b[:, i])[0]
                if len(nb) == 0:
                    perm[i] = 0
                elif nb[-1] < T - 1:
                    perm[i] = nb[-1] + 1
            late = perm >= 1
            free_nc = perm < 0
            s = o["s"]
            g = o["grad2_T"]
            last_change = np.array([np.max(np.where(np.diff(s[:, i]) != 0)[0], initial=-1) for i in range(R)])
            out["results"][f"N{N}_{prec}"] = dict(
                permanently_B_locked_from_step0=int(np.sum(perm == 0)),
                late_captured=int(late.sum()),
                not_captured=int(free_nc.sum()),
                capture_step_quartiles=np.quantile(perm[late], [0.25, 0.5, 0.75]).tolist()
                if late.any()
                else None,
                grad2_T_median_late_captured=float(np.median(g[late])) if late.any() else None,
                grad2_T_median_not_captured=float(np.median(g[free_nc])) if free_nc.any() else None,
                last_step_s_changed_quartiles_late_captured=np.quantile(
                    last_change[late], [0.25, 0.5, 0.75]
                ).tolist()
                if late.any()
                else None,
                E_grad2_T=float(g.mean()),
            )
    out["wall_s"] = time.time() - t0
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(d, exist_ok=True)
    fn = os.path.join(d, "t2b_late_capture" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
