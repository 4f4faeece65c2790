"""Q3 (ablation): escape from the lock under the other QR(0) conventions / zero tests.

Same setting as t3_escape.py (lock forced, PowerSGD, MSGD mu = 0.9, eta = 5e-4, R = 32,
T = 2000, bases paper/aligned, N = 1..5, sigma in {1,5,25,125}, QR normalize/householder),
for float64 with (conv, zero_test) in {previous/exact, native/bound, native/exact, zero/bound,
zero/exact} and for bfloat16 with native/bound and zero/bound.  (previous/bound is the primary
run in t3_escape.py.)  Same per-group seeds as t3_escape.py, so runs differ only by convention.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t3_escape import PRECS, QRS, _default, run_group  # noqa: E402

COMBOS = {
    "float64": [
        ("previous", "exact"),
        ("native", "bound"),
        ("native", "exact"),
        ("zero", "bound"),
        ("zero", "exact"),
    ],
    "bfloat16": [("native", "bound"), ("zero", "bound")],
}


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 4 if quick else 32
    T = 300 if quick else 2000
    Ns = (1, 2) if quick else (1, 2, 3, 4, 5)
    out = dict(
        scope=dict(
            question="Q3 ablation: QR(0) conventions",
            lock_forced=True,
            method="PowerSGD",
            optimizer="MSGD",
            eta=5e-4,
            mu=0.9,
            R=R,
            T=T,
            N=list(Ns),
            combos=COMBOS,
            criteria="as in t3_escape.py",
            seed=seed,
        ),
        cells={},
    )
    for N in Ns:
        for prec, combos in COMBOS.items():
            pi = PRECS.index(prec)
            for qi, qr in enumerate(QRS):
                for conv, zt in combos:
                    cells, o, bas, sig = run_group(
                        N, prec, qr, R, T, [seed, N, pi, qi], conv=conv, zero_test=zt
                    )
                    for k, v in cells.items():
                        out["cells"][f"N{N}_{prec}_{qr}_{conv}_{zt}_{k}"] = v
    out["wall_s"] = time.time() - t0
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(d, exist_ok=True)
    fn = os.path.join(d, "t3_escape_conventions" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1, default=_default)
    print("wrote", fn, "in %.1fs" % res["wall_s"])
