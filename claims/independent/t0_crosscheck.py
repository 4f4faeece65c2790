"""Cross-check of the two code paths in theorem1_ref.py: the vectorised float64 simulator vs the
exact rational simulator on the same draws (paper basis, PowerSGD + MSGD, xi_0 not forced so the
runs are generic, T = 8 (exact rationals grow doubly exponentially with T), R = 6, N = 3, sigma = 5, eta = 5e-4 and mu = 0.9 taken as the exact binary
values of the float64 constants, Q_{-1} = the float64 normal draws as exact rationals).
Reports the largest |s_T(float64) - s_T(exact)| and the largest entrywise |X_T difference|.
"""

from __future__ import annotations

import json
import os
import sys
import time
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import simulate, simulate_exact  # noqa: E402


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 2 if quick else 6
    T = 6 if quick else 8
    N, sigma = 3, 5.0
    o = simulate(
        N=N,
        R=R,
        T=T,
        sigma=sigma,
        basis="paper",
        method="powersgd",
        eta=5e-4,
        mu=0.9,
        seed=seed,
        conv="previous",
        zero_test="exact",
        qr="normalize",
        record=(),
    )
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((R, 2))
    xis = [rng.integers(0, 2, size=(R, N)) * 2 - 1 for _ in range(T)]
    one, zero = Fraction(1), Fraction(0)
    ds, dX = [], []
    for i in range(R):
        log = simulate_exact(
            N,
            [sigma] * N,
            Fraction(5e-4),
            Fraction(0.9),
            T,
            ((one, zero), (zero, one)),
            (Fraction(Q[i, 0]), Fraction(Q[i, 1])),
            [tuple(int(v) for v in xi[i]) for xi in xis],
            conv="previous",
        )
        ds.append(abs(float(log["s_T"]) - float(o["s_T"][i])))
        dX.append(max(abs(float(log["X_T"][a][b]) - o["X"][i, a, b]) for a in range(2) for b in range(2)))
    return dict(
        scope=dict(
            question="cross-check float64 vs exact",
            basis="paper",
            N=N,
            sigma=sigma,
            T=T,
            R=R,
            eta="5e-4 (binary)",
            mu="0.9 (binary)",
            lock_forced=False,
            seed=seed,
        ),
        max_abs_diff_s_T=max(ds),
        max_abs_diff_X_T=max(dX),
        s_T_float=o["s_T"].tolist(),
        wall_s=time.time() - t0,
    )


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(d, exist_ok=True)
    fn = os.path.join(d, "t0_crosscheck" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
