"""Print compact tables from results/floors_eta*.json (helper for the write-up)."""

import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
M = ["powersgd", "powersgd+", "msgd"]
ABBR = {
    "positive stationary floor": "pos",
    "rounding level (converged to float64 precision)": "RND",
    "decaying (no stationary floor reached; q4/q3<0.5)": "DEC",
    "non-stationary (q4/q3>=2)": "NS",
    "undefined": "?",
}


def g(x):
    return x if isinstance(x, str) else ("%.3g" % x if x is not None else "None")


def show_block(name, x):
    sc = x["scope"]
    keys = ["m", "n", "k", "N", "r", "mu", "c0", "kappa", "noise", "h", "sigma_base", "spread", "S_rho_T"]
    print(
        f"== {name}: "
        + " ".join(f"{k}={g(sc[k])}" for k in keys if k in sc)
        + f" T*eta={[round(v, 4) for v in sc['T_times_eta']]}"
    )
    for row in x["per_eta"]:
        parts = []
        for m in M:
            v = row[m]
            parts.append(
                f"{m}:{g(v['floor'])}[{g(v['floor_ci95'][0])},{g(v['floor_ci95'][1])}] {ABBR[v['status']]} q43={g(v['q4_over_q3'])}"
            )
        rr = row["ratio_powersgd_over_powersgdplus"]
        print(
            f"  k={row['k']} eta={g(row['eta'])} T={row['T']} | "
            + " | ".join(parts)
            + f" | ratio={g(rr['est'])}[{g(rr['ci95'][0])},{g(rr['ci95'][1])}]"
            f" | PSGD max|ebar|^2={g(row['powersgd']['max_t_ebar2_max_over_replicas'])}"
        )
    print(
        "  slopes: "
        + " ".join(
            f"{m}={g(v['slope'])}[{g(v['ci95'][0])},{g(v['ci95'][1])}] pair={[g(p) for p in v['pairwise_slopes']]}"
            for m, v in x["slopes"].items()
        )
    )


if __name__ == "__main__":
    fns = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "results", "floors_eta.*.json")))
    for fn in fns:
        d = json.load(open(fn))
        for key, x in d.items():
            if key.startswith("psi"):
                show_block(key, x)
            elif key == "family_G_instances":
                for ins in x:
                    show_block(f"G{ins['scope']['idx']}", ins)
            elif key == "family_G_aggregate":
                print(json.dumps(x, indent=1))
