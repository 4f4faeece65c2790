"""Claim "R2": Remark 2's lighter restarts, and what the SVD restart does to a locked run.

The checked proposition, per setting: every restart kind frees the locked runs at the first
restart and the freed runs converge — each kind's Wilson 95% lower bound of both shares ≥ 0.8
("holds in scope"); "fails" when some kind's upper bound of either share is below 0.5;
"inconclusive" otherwise.
"""

from __future__ import annotations

from simsgd.stats import wilson_interval

from .._claim_fields import claim, independent, sensitivity
from .sweep import CONVERGED, MU, NODES, TAU, edge_lr

__all__ = ["proposition", "r2_claim", "INDEPENDENT"]

HOLDS, FAILS = "holds in scope", "fails"

INDEPENDENT = {
    # claims/independent/results/t4_svd_restart.json, results.<cell>: the SVD restart on the
    # locked ψ (aligned, N = 4, σ = 5, τ = 10, μ = 0.9, R = 100, their seed 0 and Q_{-1} draws)
    "file": "t4_svd_restart.json",
    "freed_by_first_restart": {"5e-3": 1.0, "1.6e-3": 1.0, "5e-4": 1.0, "1.6e-4": 1.0},
    "first_restart_picked_signal": {"5e-3": 1.0, "1.6e-3": 1.0, "5e-4": 1.0, "1.6e-4": 1.0},
    "below_1e-6": {"5e-3": 0.0, "1.6e-3": 0.23, "5e-4": 1.0, "1.6e-4": 1.0},
    "mean_grad_norm_sq_T": {"5e-3": 7.19, "1.6e-3": 0.023, "5e-4": 7.3e-13, "1.6e-4": 1.8e-12},
    "inner_T_quantiles_10_50_90_at_5e-3": [-1.14, 0.129, 1.16],
    "R": 100,
}


def proposition(rows) -> str:
    """The verdict of the proposition on the rows of one setting (one per restart kind)."""
    lows = [min(r["freed_wilson95"][0], r["converged_wilson95"][0]) for r in rows]
    highs = [min(r["freed_wilson95"][1], r["converged_wilson95"][1]) for r in rows]
    if min(lows) >= 0.8:
        return HOLDS
    if min(highs) < 0.5:
        return FAILS
    return "inconclusive"


def _summary(rows):
    return {
        r["kind"]: {
            "freed_by_first_restart": r["freed_by_first_restart"],
            "converged": f"{r['converged']}/{r['replicas']}",
            "final_grad_norm_sq": r["final_grad_norm_sq"],
        }
        for r in rows
    }


def _independent(sweep):
    """Compare the SVD rows with t4: freed and picked-A shares within 0.05, and each η's share of
    runs below 1e-6 inside the other's Wilson 95% interval (both R = 100).
    """
    ours, agree = {}, True
    keys = {5e-3: "5e-3", 1.6e-3: "1.6e-3", 5e-4: "5e-4", 1.6e-4: "1.6e-4"}
    for r in sweep:
        if r["kind"] != "svd" or r["steps"] != sweep[0]["steps"] or r["lr"] not in keys:
            continue
        key = keys[r["lr"]]
        theirs = INDEPENDENT["below_1e-6"][key]
        lo, hi = wilson_interval(round(theirs * INDEPENDENT["R"]), INDEPENDENT["R"])
        mine_lo, mine_hi = wilson_interval(round(r["below_1e-6"] * r["replicas"]), r["replicas"])
        agree &= abs(r["freed_by_first_restart"] - INDEPENDENT["freed_by_first_restart"][key]) <= 0.05
        picked = INDEPENDENT["first_restart_picked_signal"][key]
        agree &= abs(r["first_restart_picked_signal"] - picked) <= 0.05
        agree &= mine_lo <= hi and lo <= mine_hi
        ours[key] = {
            "freed": r["freed_by_first_restart"],
            "picked_A": r["first_restart_picked_signal"],
            "below_1e-6": r["below_1e-6"],
            "mean_grad_norm_sq_T": r["final_grad_norm_sq"],
        }
    return independent(
        INDEPENDENT["file"],
        {"theirs": {k: v for k, v in INDEPENDENT.items() if k != "file"}, "ours": ours},
        agree,
        "SVD restart at η = 5e-3, 1.6e-3, 5e-4, 1.6e-4 (T = 1000, R = 100 each, different ξ and "
        "Q_{-1} draws): freed and A-picked shares equal to within 0.05, and the Wilson 95% "
        "intervals of the share of runs with ||∇f(X_T)||² < 1e-6 overlap at every η",
    )


def r2_claim(sweep, settings, control, premise, base, quick_note=None) -> dict:
    """The "R2" entry.

    Parameters
    ----------
    sweep : list of dict
        :func:`counterexamples.remark2.sweep.cell` rows of the η sweep.
    settings : dict
        Sensitivity key -> rows of that setting (one per kind), or a str saying why none ran.
    control : list of dict
        PowerSGD (no restart) on the same locked runs.
    premise : dict
        Restart kind -> largest measured ρ = ||Δ̂ − Δ̄||²/||Δ̄||² per problem (Lemma 2's 1 − δ').
    base : dict
        The base setting: lr, steps, replicas, sigma, seed.
    """
    base_rows = [r for r in sweep if r["lr"] == base["lr"] and r["steps"] == base["steps"]]
    verdict = proposition(base_rows)
    svd = {r["lr"]: r for r in sweep if r["kind"] == "svd" and r["steps"] == base["steps"]}
    big, small = svd[5e-3], svd[base["lr"]]
    rows = {}
    for key, value in settings.items():
        if isinstance(value, str):
            rows[key] = sensitivity("open", value, verdict)
        else:
            rows[key] = sensitivity(proposition(value), _summary(value), verdict)
    control_verdict = proposition(control)
    statement = (
        f"On ψ with Claim 1's lock forced (aligned, N = {NODES}, σ = {base['sigma']:g}, τ = {TAU}, "
        f"μ = {MU}), every restart (SVD, randomized, random, power) frees the locked runs by the first "
        f"restart after t = 0 (SVD: {small['freed_at_first_restart']:.0%} at t = {TAU + 1}, its P̃_{TAU} "
        f"along A in {small['first_restart_picked_signal']:.0%}; a random start frees them at t = 0) and at "
        f"η = {base['lr']:g} all converge "
        f"(SVD {small['converged']}/{small['replicas']}); at η = 5e-3 the SVD restart still frees "
        f"{big['freed_at_first_restart']:.0%} at t = {TAU + 1} but converges in "
        f"{big['converged']}/{big['replicas']} "
        f"(E||∇f(X_T)||² = {big['final_grad_norm_sq']:.3g}) because each error-feedback burst released "
        f"at an A-picking restart, spread by momentum, moves ⟨A, X⟩ by g·⟨A, X⟩ with median g = "
        f"{big['gain']['quartiles'][1]:.2f} (linearised 8ητ/(1 − μ) = {big['gain']['predicted']:.2f}; "
        f"g > 2 overshoots, edge η = (1 − μ)/(4τ) = {edge_lr():g}) — not a re-entry into the lock; "
        f"Remark 2's premise fails for the random basis (ρ reaches {max(premise['random'].values()):.3f}, "
        "contractive only in expectation)."
    )
    return claim(
        verdict=verdict,
        statement=statement,
        value={
            "by_kind_at_base": _summary(base_rows),
            "svd_by_lr": {
                f"{lr:g}": {
                    "freed": r["freed_by_first_restart"],
                    "picked_A": r["first_restart_picked_signal"],
                    "converged": f"{r['converged']}/{r['replicas']}",
                    "below_1e-6": r["below_1e-6"],
                    "final_grad_norm_sq": r["final_grad_norm_sq"],
                    "inner_T_quantiles_10_50_90": r["inner_T_quantiles_10_50_90"],
                    "gain_median": r["gain"]["quartiles"][1] if r["gain"]["quartiles"] else None,
                    "gain_amplifying": r["gain"]["amplifying"],
                    "gain_predicted": r["gain"]["predicted"],
                }
                for lr, r in sorted(svd.items(), reverse=True)
            },
            "edge_lr_linearised": edge_lr(),
            "premise_max_rho": premise,
            "converged_means": f"||∇f(X_T)||² ≤ {CONVERGED:g}·||∇f(X_0)||²",
        },
        scope={
            "problem": "psi (eq. 10), lock forced (xi_0 = 1)",
            "N": NODES,
            "basis": "aligned",
            "sigma": base["sigma"],
            "eta": base["lr"],
            "T": base["steps"],
            "R": base["replicas"],
            "precision": "float64",
            "qr0_convention": "previous",
            "seed": base["seed"],
        },
        control={
            "input": "PowerSGD (no restart) on the same locked runs",
            "result": f"{control_verdict}: {_summary(control)}",
        },
        sensitivity=rows,
        independent=_independent(sweep),
        quick_note=quick_note,
    )
