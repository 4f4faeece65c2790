"""Q1: Claim 1 (proof of Theorem 3) checked in exact rational arithmetic.

Paper basis, PowerSGD (SSP every step) + MSGD, eta = 1/2000, mu = 9/10, X_0 = I,
Q_{-1} rational (entries k/l, k in [-9,9], l in [1,9], q1+q2 != 0, i.e. not orthogonal to C),
lock forced (xi_0 = +1 on every node), xi_t (t >= 1) uniform, T = 12, 60 runs per config.
The same xi and Q_{-1} draws are used for the three QR(0) conventions.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import simulate_exact  # noqa: E402

CONFIGS = [
    ("N1_sigma5", (5,)),
    ("N2_sigma5", (5, 5)),
    ("N3_sigma5", (5, 5, 5)),
    ("N4_sigma5", (5, 5, 5, 5)),
    ("N5_sigma5", (5, 5, 5, 5, 5)),
    ("N2_sigma5_10", (5, 10)),
    ("N4_sigma5_10_5_10", (5, 10, 5, 10)),
    ("N3_sigma5_10_15", (5, 10, 15)),
]
CONVS = ("previous", "native", "zero")


def zero_sum_probability(sig):
    """P(sum_i xi_i sigma_i = 0) for iid uniform signs, and the sign patterns that achieve it."""
    pats = [p for p in itertools.product((-1, 1), repeat=len(sig)) if sum(a * b for a, b in zip(p, sig)) == 0]
    return Fraction(len(pats), 2 ** len(sig)), pats


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    runs = 4 if quick else 60
    T = 8 if quick else 12
    eta, mu = Fraction(1, 2000), Fraction(9, 10)
    one, zero = Fraction(1), Fraction(0)
    X0 = ((one, zero), (zero, one))
    out = dict(
        scope=dict(
            question="Q1 Claim 1 exact",
            basis="paper",
            method="PowerSGD (SSP every step)",
            optimizer="MSGD",
            eta="1/2000",
            mu="9/10",
            T=T,
            runs_per_config=runs,
            X0="I",
            Q_init="rational k/l, k in [-9,9], l in [1,9], q1+q2 != 0 (per run)",
            lock_forced=True,
            xi="t>=1 uniform {-1,+1}, shared across conventions",
            arithmetic="exact (fractions.Fraction); P~ carried as rational direction, "
            "P~P~^T = pp^T/|p|^2, QR sign convention R>0 (P~=p/|p|)",
            qr0_conventions={
                "previous": "P~_t = P~_{t-1}",
                "native": "P~_t = e1 = (1,0) (paper basis)",
                "zero": "P~_t = 0",
            },
            invariants="m_t in span(B); e_{t+1}^(i) in span(A) for all i; P~_t nonzero multiple of C; "
            "Q_t in span(C) (0 allowed)",
            seed=seed,
        ),
        configs={},
    )
    for ci, (name, sig) in enumerate(CONFIGS):
        N = len(sig)
        rng = np.random.default_rng([seed, ci])
        draws = []
        for _ in range(runs):
            while True:
                q = tuple(Fraction(int(rng.integers(-9, 10)), int(rng.integers(1, 10))) for _ in range(2))
                if q[0] + q[1] != 0:
                    break
            xis = [tuple([1] * N)] + [
                tuple(int(v) for v in rng.integers(0, 2, N) * 2 - 1) for _ in range(T - 1)
            ]
            draws.append((q, xis))
        pz, pats = zero_sum_probability(sig)
        cres = dict(
            N=N,
            sigma=list(sig),
            prob_signed_sum_zero_per_step=str(pz),
            zero_sum_patterns=[list(p) for p in pats],
            prob_at_least_one_zero_sum_in_t1_to_11=float(1 - (1 - pz) ** (T - 1)),
        )
        for conv in CONVS:
            n_pzero = n_break = 0
            n_break_inv = dict(m_in_B=0, e_in_A=0, P_prop_C=0, Q_in_C=0)
            n_pzero_steps = 0
            n_neg = 0
            grads = []
            first_breaks = []
            pzero_without_zero_sum = 0
            n_pzero_locked = 0
            sT = []
            sT_neq = 0
            for q, xis in draws:
                log = simulate_exact(N, sig, eta, mu, T, X0, q, xis, conv=conv)
                if log["pzero_steps"]:
                    n_pzero += 1
                n_pzero_steps += len(log["pzero_steps"])
                # does every P=0 step follow a zero signed sum at t or t-1 ?
                fb = log["first_break"] if log["first_break"] is not None else T
                for t in log["pzero_steps"]:
                    if t > fb:
                        continue  # only P = 0 steps while Claim 1's invariants still held (t <= first break)
                    zs = lambda k: k >= 1 and sum(a * b for a, b in zip(xis[k], sig)) == 0
                    n_pzero_locked += 1
                    if not (zs(t) or zs(t - 1)):
                        pzero_without_zero_sum += 1
                sT.append(float(log["s_T"]))
                sT_neq += int(log["s_T"] != 2)
                if log["breaks"]:
                    n_break += 1
                    first_breaks.append(log["first_break"])
                    for k in n_break_inv:
                        if any(not inv[k] for inv in log["inv"]):
                            n_break_inv[k] += 1
                n_neg += sum(1 for sgn in log["ptilde_sign"] if sgn < 0)
                grads.append(log["grad2_T"])
            gfl = [float(g) for g in grads]
            cres[conv] = dict(
                runs=runs,
                runs_with_P_zero=n_pzero,
                P_zero_steps_total=n_pzero_steps,
                P_zero_steps_up_to_first_break=n_pzero_locked,
                of_which_not_explained_by_zero_signed_sum_at_t_or_t_minus_1=pzero_without_zero_sum,
                s_T=dict(min=min(sT), max=max(sT), n_not_equal_2_exact=sT_neq),
                runs_with_any_invariant_break=n_break,
                runs_breaking_each_invariant=n_break_inv,
                first_break_steps=sorted(first_breaks),
                steps_with_Ptilde_equal_minus_C=n_neg,
                grad2_T=dict(
                    n_equal_16=sum(1 for g in grads if g == 16),
                    mean=float(np.mean(gfl)),
                    min=float(min(gfl)),
                    max=float(max(gfl)),
                    n_below_16=sum(1 for g in grads if g < 16),
                    values_below_16=sorted(float(g) for g in grads if g < 16),
                ),
            )
        out["configs"][name] = cres
    out["wall_s"] = time.time() - t0
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(d, exist_ok=True)
    fn = os.path.join(d, "t1_claim1_exact" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1)[:6000])
    print("wrote", fn, "in %.1fs" % res["wall_s"])
