"""Claim "F-pernode": with unequal σ_i, which method has degenerate steps, and where.

The checked proposition, per setting (σ = (5, 10), N = 2 unless changed): PowerSGD has no
degenerate step, and every degenerate step of PowerSGD+ is an SSP step inside an A-lock —
"holds in scope"; "fails" otherwise. The control, σ = (5, 5), makes PowerSGD degenerate.
"""

from __future__ import annotations

from .._claim_fields import claim, independent, sensitivity

__all__ = ["proposition", "pernode_claim", "INDEPENDENT"]

INDEPENDENT = {
    # claims/independent/results/t6_pernode_sigma.json: σ = (5, 10), N = 2, aligned, T = 1000,
    # R = 1000, η = 5e-4, μ = 0.9, τ = 10, float64, QR(0) = previous, their own draws
    "file": "t6_pernode_sigma.json",
    "powersgd_P_zero_steps": 0,
    "powersgd_plus_A_lock_ssp_steps": 130023,
    "powersgd_plus_A_lock_P_zero": 53903,
    "powersgd_plus_B_lock_ssp_steps": 769977,
    "powersgd_plus_B_lock_P_zero": 0,
    "powersgd_plus_restart_Dbar_zero": 0,
}


def proposition(pair) -> str:
    """The verdict on one setting's [PowerSGD, PowerSGD+] rows."""
    plain, plus = pair
    elsewhere = sum(v["degenerate"] for k, v in plus["by_state"].items() if k != "SSP in A-lock")
    ok = (
        plain["degenerate_share"] == 0
        and elsewhere == 0
        and plus["by_state"]["SSP in A-lock"]["degenerate"] > 0
    )
    return "holds in scope" if ok else "fails"


def _brief(pair):
    plain, plus = pair
    return {
        "sigmas": plain["sigmas"],
        "powersgd_degenerate_share": plain["degenerate_share"],
        "powersgd_plus_degenerate_share": plus["degenerate_share"],
        "powersgd_plus_by_state": {k: v["share"] for k, v in plus["by_state"].items()},
        "steps": plain["steps"],
        "replicas": plain["replicas"],
        "lr": plain["lr"],
        "seed": plain["seed"],
        "dtype": plain["dtype"],
    }


def _independent(pair):
    plain, plus = pair
    a_lock = plus["by_state"]["SSP in A-lock"]
    theirs = INDEPENDENT["powersgd_plus_A_lock_P_zero"] / INDEPENDENT["powersgd_plus_A_lock_ssp_steps"]
    agrees = (
        plain["degenerate_share"] == 0
        and plus["by_state"]["SSP in B-lock"]["degenerate"] == 0
        and a_lock["share"] is not None
        and abs(a_lock["share"] - theirs) <= 0.03
    )
    return independent(
        INDEPENDENT["file"],
        {
            "theirs": {k: v for k, v in INDEPENDENT.items() if k != "file"} | {"A_lock_share": theirs},
            "ours": {
                "powersgd_degenerate_share": plain["degenerate_share"],
                "powersgd_plus_B_lock_degenerate": plus["by_state"]["SSP in B-lock"]["degenerate"],
                "powersgd_plus_A_lock": a_lock,
            },
        },
        agrees,
        "σ = (5, 10), N = 2, same settings, other draws: PowerSGD 0 degenerate steps in both, PowerSGD+ "
        "none in the B-lock in both, and the share of A-locked SSP steps with P = 0 within 0.03 of theirs "
        "(their test: P exactly 0 or below a rounding bound; ours: the project's input-relative test)",
    )


def pernode_claim(rows, settings, quick_note=None) -> dict:
    """The "F-pernode" entry from the per-node rows (:func:`.pernode.measure`) and the settings."""
    by = {(tuple(r["sigmas"]), r["method"]): r for r in rows}
    base = [by[((5.0, 10.0), m)] for m in ("powersgd", "powersgd+")]
    verdict = proposition(base)
    plain, plus = base
    a_lock = plus["by_state"]["SSP in A-lock"]
    vanish = {
        str(s): {
            "powersgd_B_lock_share": by[(s, "powersgd")]["by_state"]["SSP in B-lock"]["share"],
            "powersgd_plus_A_lock_share": by[(s, "powersgd+")]["by_state"]["SSP in A-lock"]["share"],
            "expected": by[(s, "powersgd")]["expected_a_lock_share"],
        }
        for s in ((5.0, 10.0, 5.0, 10.0), (5.0, 10.0, 15.0))
        if (s, "powersgd") in by
    }
    control = [by[((5.0, 5.0), m)] for m in ("powersgd", "powersgd+")]
    statement = (
        f"With σ = (5, 10) (N = 2, no vanishing signed sum) PowerSGD has no degenerate step "
        f"({plain['degenerate_share']:.3g} of {plain['steps'] * plain['replicas']} replica-steps), but "
        f"PowerSGD+ has {plus['degenerate_share']:.1%}: all of them SSP steps inside A-locks that its "
        f"restarts enter ({a_lock['share']:.3f} of those steps; ξ ≡ +1 now or one step earlier, expected "
        f"1 − (3/4)² = {plus['expected_a_lock_share']:.4f}), none in the B-lock or at restarts; where a "
        f"signed sum vanishes — (5, 10, 5, 10), (5, 10, 15) — PowerSGD itself is degenerate in "
        + ", ".join(f"{v['powersgd_B_lock_share']:.2f}" for v in vanish.values())
        + " of its B-locked steps."
    )
    return claim(
        verdict=verdict,
        statement=statement,
        value={"base": _brief(base), "vanishing_signed_sums": vanish, "by_history": plus["by_history"]},
        scope={
            "problem": "psi (eq. 10), per-node sigma_i, random start",
            "N": 2,
            "basis": "aligned",
            "sigma": [5.0, 10.0],
            "eta": plain["lr"],
            "T": plain["steps"],
            "R": plain["replicas"],
            "precision": plain["dtype"],
            "qr0_convention": "previous",
            "seed": plain["seed"],
        },
        control={
            "input": "σ = (5, 5): one common σ, even N",
            "result": f"{proposition(control)}: PowerSGD degenerate share "
            f"{control[0]['degenerate_share']:.3f}",
        },
        sensitivity={
            key: sensitivity("open", value, verdict)
            if isinstance(value, str)
            else sensitivity(proposition(value), _brief(value), verdict)
            for key, value in settings.items()
        },
        independent=_independent(base),
        quick_note=quick_note,
    )
