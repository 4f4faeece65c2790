"""Q6: per-node sigma and degenerate (P = 0) steps in float64.

Aligned basis, N = 2, sigma = (5, 10) and (5, 5), T = 1000, R = 1000, MSGD mu = 0.9, eta = 5e-4,
xi_0 not forced, Q_{-1} ~ N(0, I), PowerSGD and PowerSGD+ (tau = 10), QR = p/|p|, each of the
three QR(0) conventions (applied when the rounding-bound test fires).

Counts are replica-steps.  SSP steps: 'exact' = P_t == 0 bitwise; 'bound' = |P_k| <= (N+2) u
(1/N) sum_i sum_j |Delta^(i)_kj| |Q_j| for both k (includes exact zeros).  Restart (SVD) steps:
Delta_bar == 0 exactly, or an exact tie of the two singular values (top singular vector not
unique).  Lock = the compressor's B-lock at the start of step t (t >= 1): P~_{t-1} = +-C and
Q_{t-1} in span(C), both bitwise (aligned basis: exact zeros).  Split (a) by lock history:
'in_B_lock', 'after_leaving_B_lock' (B-locked at some earlier step, not now), 'never_B_locked';
(b) by the current compressor state: 'B_lock', 'A_lock' (P~ = +-a, Q in span(a): the good
direction), 'generic'.  Step t = 0 is reported separately.  Also counted: runs that enter the
B-lock later than step 0 ('late capture'), and runs whose X_T - X_0 is in span(B).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import simulate  # noqa: E402

LOCK_TOL = 1e-12


def split_counts(o):
    pz = o["pzero"]  # (T, R): SSP 2 exact, 1 bound-only; SVD 4 zero, 3 tie
    st = o["steptype"]  # (T,) 0 SSP, 1 SVD
    pq = o["pq"]  # (T, R, 4) after step t: |P~.c|, |P~.a|, |Q.c|, |Q.a|
    lk = o["lock"]  # (T, R, 2) after step t: X-residual off span(B), |Q.a|
    T, R = pz.shape
    # compressor state after step t (exact zeros; aligned basis)
    b_after = (pq[..., 1] == 0) & (pq[..., 0] > 0) & (pq[..., 3] == 0)  # P~ = +-C, Q in span(C)
    a_after = (pq[..., 0] == 0) & (pq[..., 1] > 0) & (pq[..., 2] == 0)  # P~ = +-a, Q in span(a)
    xlock_after = (lk[..., 0] <= LOCK_TOL) & (lk[..., 1] <= LOCK_TOL)  # X_{t+1}-X_0 in span(B), Q in span(C)
    b_start = np.zeros((T, R), bool)
    b_start[1:] = b_after[:-1]
    a_start = np.zeros((T, R), bool)
    a_start[1:] = a_after[:-1]
    ever_b_before = np.zeros((T, R), bool)
    ever_b_before[1:] = np.maximum.accumulate(b_after[:-1], axis=0)
    hist = np.full((T, R), "never_B_locked", dtype=object)
    hist[ever_b_before & ~b_start] = "after_leaving_B_lock"
    hist[b_start] = "in_B_lock"
    hist[0] = "step0"
    state = np.full((T, R), "generic", dtype=object)
    state[a_start] = "A_lock"
    state[b_start] = "B_lock"
    state[0] = "step0"
    res = {}
    for split_name, cat, labels in (
        ("by_lock_history", hist, ("step0", "in_B_lock", "after_leaving_B_lock", "never_B_locked")),
        ("by_current_compressor_state", state, ("step0", "B_lock", "A_lock", "generic")),
    ):
        res[split_name] = {}
        for kind, code in (("SSP", 0), ("restart", 1)):
            sel_t = st == code
            d = {}
            for c in labels:
                m = sel_t[:, None] & (cat == c)
                if kind == "SSP":
                    d[c] = dict(
                        replica_steps=int(m.sum()),
                        P_exact_zero=int(np.sum(m & (pz == 2))),
                        P_bound_zero=int(np.sum(m & ((pz == 2) | (pz == 1)))),
                    )
                else:
                    d[c] = dict(
                        replica_steps=int(m.sum()),
                        Dbar_exact_zero=int(np.sum(m & (pz == 4))),
                        singular_value_tie=int(np.sum(m & (pz == 3))),
                    )
            res[split_name][kind] = d
    first_b = np.where(b_after.any(0), np.argmax(b_after, 0), -1)
    res["runs_xi0_all_plus"] = int(o["xi0_drawn_all_plus"].sum())
    res["runs_B_locked_after_step0"] = int(b_after[0].sum())
    res["runs_entering_B_lock_later_(first_B_lock_at_t>=1)"] = int(np.sum(first_b >= 1))
    res["runs_B_locked_at_T"] = int(b_after[-1].sum())
    res["runs_A_locked_at_T"] = int(a_after[-1].sum())
    res["runs_X_locked_at_T_(X_T-X_0 in span B)"] = int(xlock_after[-1].sum())
    res["E_grad2_T"] = float(o["grad2_T"].mean())
    res["runs_grad2_T_equal_16"] = int(np.sum(o["grad2_T"] == 16.0))
    res["runs_grad2_T_below_1e-6"] = int(np.sum(o["grad2_T"] < 1e-6))
    return res


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 100 if quick else 1000
    T = 200 if quick else 1000
    out = dict(
        scope=dict(
            question="Q6 per-node sigma, degenerate steps",
            basis="aligned",
            N=2,
            T=T,
            R=R,
            mu=0.9,
            eta=5e-4,
            precision="float64",
            qr="normalize",
            lock_forced=False,
            tau=10,
            seed=seed,
            X0="I",
            Q_init="standard normal",
            lock_tol=LOCK_TOL,
            zero_test_for_applying_convention="bound",
        ),
        results={},
    )
    for sig in ((5.0, 10.0), (5.0, 5.0)):
        for method in ("powersgd", "powersgd+"):
            for conv in ("previous", "native", "zero"):
                o = simulate(
                    N=2,
                    R=R,
                    T=T,
                    sigma=np.array(sig),
                    basis="aligned",
                    method=method,
                    tau=10,
                    eta=5e-4,
                    mu=0.9,
                    conv=conv,
                    zero_test="bound",
                    lock_forced=False,
                    seed=seed,
                    record=("pzero", "lock", "pq"),
                )
                out["results"][f"sigma{int(sig[0])}_{int(sig[1])}_{method}_{conv}"] = split_counts(o)
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
    fn = os.path.join(d, "t6_pernode_sigma" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1, default=_default)
    print(json.dumps(res, indent=1, default=_default)[:4000])
    print("wrote", fn, "in %.1fs" % res["wall_s"])
