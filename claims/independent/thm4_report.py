"""Print compact tables from results/thm4_excess*.json and thm4_rows*.json (write-up helper)."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def g(x):
    return x if isinstance(x, str) else ("%.3g" % x if x is not None else "None")


def excess(fn):
    d = json.load(open(fn))
    for name, x in d.items():
        if name == "run_seconds":
            continue
        sc = x["scope"]
        print(
            f"== {name}: N={sc['N']} m={sc['m']} n={sc['n']} k={sc['k']} r={sc['r']} R={sc['R']} ({x['seconds']:.0f}s)"
        )
        for r in x["rows"]:
            print(
                f"  tau={r['tau']:2d} c={r['c']:.3f} sig={r['sigma']:4.1f} mu={r['mu']:.1f} eta={r['eta']:.2e} T={r['T']['T']}"
                f" | ex(T)={g(r['T']['excess_tail'][0])} ex(10T)={g(r['10T']['excess_tail'][0])}"
                f"[{g(r['10T']['excess_tail'][1])},{g(r['10T']['excess_tail'][2])}] 10T/T={g(r['tail_excess_ratio_10T_over_T'])}"
                f" | exfull*T: {g(r['T']['excess_full_avg_times_T'])}->{g(r['10T']['excess_full_avg_times_T'])}"
                f" | msgd10T={g(r['10T']['tail_mean']['msgd'][0])} plus10T={g(r['10T']['tail_mean']['powersgd+'][0])}"
                f" psgd10T={g(r['10T']['tail_mean']['powersgd'][0])} q43+={g(r['10T']['q4_over_q3']['powersgd+'])}"
                f" | third={g(r['third_term'])} ex/third={g(r['excess_over_third_term_10T'])} maxE+={g(r['10T']['max_t_ebar2_plus'])}"
            )
        f = x["fits"]
        print(
            "  eta-slopes per tau:",
            {t: (g(v.get("slope")), [g(c) for c in v.get("ci95", [])]) for t, v in f["eta_at_tau"].items()},
        )
        print(
            "  tau-slopes per c  :",
            {t: (g(v.get("slope")), [g(c) for c in v.get("ci95", [])]) for t, v in f["tau_at_c"].items()},
        )
        print(
            "  joint:",
            {
                k: (g(v) if not isinstance(v, list) else [g(c) for c in v])
                for k, v in f["joint_eta_tau"].items()
            },
        )


def rows(fn):
    d = json.load(open(fn))
    for i, r in enumerate(d["rows"]):
        sp = r["spec"]
        print(
            f"[{i}] {sp['problem']} N={r['N']} sig={r['sigma']} r={r['r']} delta={r['delta']:.2f} tau={r['tau']} mu={r['mu']} "
            f"eta={r['eta']:.3e} T={r['T']} R={r['R']} | t1={g(r['t1'])} t2={g(r['t2'])} t3={g(r['t3'])} bound={g(r['bound'])} "
            f"(omega2={g(r['omega2'])}, {g(r['bound_over_omega2'])}) | LHS+={g(r['lhs']['powersgd+'][0])}"
            f"[{g(r['lhs']['powersgd+'][1])},{g(r['lhs']['powersgd+'][2])}] LHSm={g(r['lhs']['msgd'][0])} "
            f"LHSpsgd={g(r['lhs']['powersgd'][0])} | excess={g(r['excess'][0])}[{g(r['excess'][1])},{g(r['excess'][2])}] "
            f"share={g(r['excess_share_of_lhs_plus'])} ex/t3={g(r['excess_over_t3'])} | floors+={g(r['long_run']['floors_tail_half']['powersgd+'][0])} "
            f"msgd={g(r['long_run']['floors_tail_half']['msgd'][0])} q43+={g(r['long_run']['q4_over_q3']['powersgd+'])} "
            f"| extrap={ {k: (g(v) if not isinstance(v, (list, dict)) else v) for k, v in (r['extrapolation_10pct'] or {}).items() if k != 'bound_terms_at_that_T'} }"
        )
    print("n_qualifying", d["n_qualifying"], d["qualifying_idx"])
    print("max share", d["max_share_qualifying"])
    print(json.dumps(d.get("corollary1_check"), indent=0))


if __name__ == "__main__":
    for fn in sys.argv[1:]:
        if "rows" in fn:
            rows(fn)
        else:
            excess(fn)
