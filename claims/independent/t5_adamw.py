"""Q5: "any base optimizer" (Theorem 1 / Remark 3) with Adam and AdamW.

Aligned basis, N = 4, sigma = 5, lock forced (xi_0 = +1 on every node), R = 16, T = 3000,
lr = 1e-2, betas = (0.9, 0.999), eps = 1e-8, bias-corrected Adam; AdamW = decoupled decay
X <- (1 - lr*lam) X - lr * mhat/(sqrt(vhat)+eps), lam = 0.2.  The base optimizer receives the
compressed averaged update Dhat_t (PowerSGD, error feedback) or the plain node average of the
stochastic gradients (uncompressed control).  Problems: eq. (10) (psi), and the shifted
construction psi_s(x) = psi(x + 2) (minimum at <A,X> = -2).  float64, QR = p/|p|.

Closed form on the lock (aligned basis): Dhat_t in span(B) = span(diag(1,0)), so Adam's first
and second moments of the (2,2) entry stay exactly 0 and its Adam step is 0/(sqrt(0)+eps) = 0;
only the decay acts: X22_t = (1 - lr*lam)^t X22_0, i.e. <A, X_t> = 2 (1 - lr*lam)^t.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from theorem1_ref import psi_prime, simulate  # noqa: E402


def run(quick: bool = False, seed: int = 0) -> dict:
    t0 = time.time()
    R = 4 if quick else 16
    T = 500 if quick else 3000
    lr, lam = 1e-2, 0.2
    out = dict(
        scope=dict(
            question="Q5 Adam/AdamW",
            basis="aligned",
            N=4,
            sigma=5,
            lock_forced=True,
            R=R,
            T=T,
            lr=lr,
            lam=lam,
            betas=[0.9, 0.999],
            eps=1e-8,
            precision="float64",
            qr="normalize",
            qr0_convention="previous + bound test",
            X0="I",
            seed=seed,
            stay_definition="||grad f(X_t)||^2 == ||grad f(X_0)||^2 (=16) bitwise for every t <= T",
        ),
        results={},
    )
    for shift, pname in ((0.0, "eq10"), (2.0, "shifted_psi(x+2)")):
        for method in ("powersgd", "none"):
            for opt in ("adam", "adamw"):
                o = simulate(
                    N=4,
                    R=R,
                    T=T,
                    sigma=5.0,
                    basis="aligned",
                    method=method,
                    optimizer=opt,
                    eta=lr,
                    lam=(lam if opt == "adamw" else 0.0),
                    lock_forced=True,
                    shift=shift,
                    seed=seed,
                    record=("s", "offc"),
                )
                s = o["s"]  # (T+1, R)
                g2 = 4.0 * psi_prime(s + shift) ** 2
                res = dict(
                    grad2_T=dict(
                        mean=float(g2[-1].mean()),
                        median=float(np.median(g2[-1])),
                        min=float(g2[-1].min()),
                        max=float(g2[-1].max()),
                    ),
                    grad2_0=float(g2[0, 0]),
                    runs_final_equal_initial=int(np.sum(g2[-1] == g2[0])),
                    runs_equal_initial_all_t=int(np.sum(np.all(g2 == g2[0], axis=0))),
                    s_T=dict(min=float(s[-1].min()), median=float(np.median(s[-1])), max=float(s[-1].max())),
                )
                if method == "powersgd":
                    res["max_offC_of_Ptilde"] = float(np.nanmax(o["offc"]))
                if method == "powersgd" and opt == "adamw":
                    t = np.arange(T + 1)
                    pred = 2.0 * (1.0 - lr * lam) ** t
                    res["closed_form"] = dict(
                        formula="<A,X_t> = 2 (1 - lr*lam)^t",
                        predicted_s_T=float(pred[-1]),
                        predicted_grad2_T=float(4.0 * psi_prime(pred[-1] + shift) ** 2),
                        max_rel_err_s_vs_closed_form=float(np.max(np.abs(s - pred[:, None]) / pred[:, None])),
                        first_t_s_below_1=int(np.argmax(pred < 1.0)) if np.any(pred < 1.0) else None,
                    )
                if method == "powersgd" and opt == "adam":
                    res["s_exactly_constant"] = bool(np.all(s == s[0]))
                out["results"][f"{pname}_{method}_{opt}"] = res
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
    fn = os.path.join(d, "t5_adamw" + ("_quick" if quick else "") + ".json")
    with open(fn, "w") as f:
        json.dump(res, f, indent=1, default=_default)
    print(json.dumps(res, indent=1, default=_default)[:8000])
    print("wrote", fn, "in %.1fs" % res["wall_s"])
