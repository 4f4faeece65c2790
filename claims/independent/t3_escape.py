"""Q3: escape from the lock in floating point.

Lock forced (xi_0 = +1 on all nodes), PowerSGD (SSP every step), MSGD mu = 0.9, eta = 5e-4,
R = 32 replicas per cell, T = 2000, X_0 = I, Q_{-1} ~ N(0, I).
Grid: basis {paper, aligned} x N {1..5} x sigma {1, 5, 25, 125} x precision {float64, float32,
bfloat16 (every op rounded, RNE)} x QR {normalize = p/|p|, householder = LAPACK dgeqr2+dorg2r}.
QR(0) convention 'previous' with the rounding-bound zero test (see theorem1_ref docstring);
the other conventions are in t3_escape_conventions.py.

Escape criteria (first step t at which, with s_t = <A, X_t> computed in float64 from the stored X_t):
  X1e-3 : |s_t - s_0| > 1e-3        (the brief's criterion; s_0 = 2)
  X1e-1 : |s_t - s_0| > 1e-1        (macroscopic move)
  Pangle: |sin angle(P~_t, C)| > 0.5  (the compressor itself left span(C))
Runs that never meet a criterion by T are counted and enter quantiles as +inf.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import simulate  # noqa: E402

SIGMAS = (1, 5, 25, 125)
PRECS = ("float64", "float32", "bfloat16")
QRS = ("normalize", "householder")
BASES = ("paper", "aligned")


def first_true(mask):
    ok = np.any(mask, axis=0)
    f = np.argmax(mask, axis=0).astype(float)
    f[~ok] = np.inf
    return f


def qstats(x):
    x = np.asarray(x, float)
    q = np.quantile(x, [0.25, 0.5, 0.75], method="lower") if len(x) else [np.nan] * 3
    return dict(
        q25=float(q[0]), median=float(q[1]), q75=float(q[2]), never=int(np.sum(np.isinf(x))), n=len(x)
    )


def run_group(N, prec, qr, R, T, seed, conv="previous", zero_test="bound", record_extra=False):
    bas = np.repeat(np.array(BASES), len(SIGMAS) * R)
    sig = np.tile(np.repeat(np.array(SIGMAS, float), R), len(BASES))
    rec = ("s", "offc") + (("dbar", "pzero") if record_extra else ())
    o = simulate(
        N=N,
        R=len(bas),
        T=T,
        sigma=sig[:, None] * np.ones((1, N)),
        basis=bas,
        method="powersgd",
        optimizer="msgd",
        eta=5e-4,
        mu=0.9,
        precision=prec,
        qr=qr,
        conv=conv,
        zero_test=zero_test,
        lock_forced=True,
        seed=seed,
        record=rec,
    )
    ds = np.abs(o["s"] - o["s"][0])
    crit = {
        "X1e-3": first_true(ds > 1e-3),
        "X1e-1": first_true(ds > 1e-1),
        "Pangle": first_true(np.nan_to_num(o["offc"], nan=0.0) > 0.5),
    }
    cells = {}
    for b in BASES:
        for sg in SIGMAS:
            sel = (bas == b) & (sig == sg)
            c = {k: qstats(v[sel]) for k, v in crit.items()}
            c["max_offC_of_Ptilde"] = float(np.nanmax(o["offc"][:, sel]))
            c["grad2_T_median"] = float(np.median(o["grad2_T"][sel]))
            c["grad2_T_frac_below_1e-6"] = float(np.mean(o["grad2_T"][sel] < 1e-6))
            c["P_zero_replica_steps_exact"] = int(o["counts"]["p_exact_zero"][sel].sum())
            c["P_zero_replica_steps_bound"] = int(o["counts"]["p_bound_zero"][sel].sum())
            c["nan_runs"] = int(o["ever_nan"][sel].sum())
            cells[f"{b}_sigma{sg}"] = c
    return cells, o, bas, sig


def mechanism_trace(o, bas, sig, N, sg, tmax_after=4):
    """One run (paper basis, given sigma): |sin angle(P~_t, C)|, a_t = c^T Dbar c, b_t = a^T Dbar a."""
    i = int(np.where((bas == "paper") & (sig == sg))[0][0])
    off = o["offc"][:, i]
    esc = np.argmax(off > 0.5) if np.any(off > 0.5) else len(off) - 1
    rows = []
    for t in range(0, min(len(off), esc + tmax_after)):
        a_, b_ = o["dbar"][t, i]
        rows.append(
            dict(
                t=t,
                offC=float(off[t]),
                cDc=float(a_),
                aDa=float(b_),
                ratio_sq=float((b_ / a_) ** 2) if a_ != 0 else None,
                pzero=int(o["pzero"][t, i]),
                s=float(o["s"][t, i]),
            )
        )
    return dict(N=N, sigma=sg, replica=i, escape_step_Pangle=int(esc), rows=rows)


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 4 if quick else 32
    T = 300 if quick else 2000
    Ns = (1, 2) if quick else (1, 2, 3, 4, 5)
    out = dict(
        scope=dict(
            question="Q3 escape from the lock",
            lock_forced=True,
            method="PowerSGD",
            optimizer="MSGD",
            eta=5e-4,
            mu=0.9,
            R=R,
            T=T,
            N=list(Ns),
            sigma=list(SIGMAS),
            bases=list(BASES),
            precisions=list(PRECS),
            qr=list(QRS),
            qr0_convention="previous",
            zero_test="bound: |P_k| <= (N+2) u (1/N) sum_i sum_j |Delta_kj||Q_j|",
            X0="I",
            Q_init="standard normal per replica",
            criteria={
                "X1e-3": "|<A,X_t-X_0>| > 1e-3",
                "X1e-1": "|<A,X_t-X_0>| > 1e-1",
                "Pangle": "|sin angle(P~_t, C)| > 0.5",
            },
            quantiles="numpy 'lower' quantiles over the R runs, never-escaped = +inf",
            seed=seed,
            group_seed="[seed, N, precision index, qr index]",
        ),
        cells={},
        traces=[],
    )
    for N in Ns:
        for pi, prec in enumerate(PRECS):
            for qi, qr in enumerate(QRS):
                extra = prec == "float64" and qr == "householder" and N in (3, 4)
                cells, o, bas, sig = run_group(N, prec, qr, R, T, [seed, N, pi, qi], record_extra=extra)
                for k, v in cells.items():
                    out["cells"][f"N{N}_{prec}_{qr}_{k}"] = v
                if extra:
                    out["traces"].append(mechanism_trace(o, bas, sig, N, 25))
    out["wall_s"] = time.time() - t0
    return out


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(d, exist_ok=True)
    fn = os.path.join(d, "t3_escape" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1, default=_default)
    print("wrote", fn, "in %.1fs" % res["wall_s"])
