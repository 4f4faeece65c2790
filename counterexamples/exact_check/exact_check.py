"""Claim 1 of Theorem 1 checked step by step in exact rational arithmetic (simsgd.exact).

For N = 1..5, the paper's / aligned / a rational rotated ("pythagorean") basis, each QR
convention for the degenerate step P_t = 0, and SGD / MSGD / Adam, run PowerSGD from
ξ_0 ≡ 1 with the engine's ξ and Q_{-1} (seed 0, replicas 0..R−1) and report how many runs
keep every invariant for T steps, and where the first one breaks. Then the corner cases
σ = 0 and Q_{-1} ⊥ C, unequal per-node σ_i under every convention, and how long Theorem 1's
conclusion survives LAPACK's convention.

Run: ``python counterexamples/exact_check/exact_check.py`` (about 40 s of CPU).
Writes ``counterexamples/exact_check/exact_check.json``.
"""

from __future__ import annotations

import os
import time

from simsgd.exact import EXACT_BASES, EXACT_DEGENERATE_QR, INVARIANTS, run_exact
from simsgd.output import atomic_write_json

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, REPLICAS, SIGMA, LR = 100, 4, 5, "1/1000"


def _runs(sigma=SIGMA, **kwargs):
    return [
        run_exact(sigma, steps=STEPS, lr=LR, replica=k, max_seconds=10, **kwargs) for k in range(REPLICAS)
    ]


def _row(runs):
    outcomes = [r.outcome for r in runs]
    breaks = [r.broken_at for r in runs if r.broken_at is not None]
    return {
        "held": outcomes.count("held"),
        "broken": outcomes.count("broken"),
        "undefined": outcomes.count("undefined"),
        "budget": outcomes.count("budget"),
        "break_steps": breaks,
        "invariants": sorted({r.broken_invariant for r in runs if r.broken_invariant}),
        "degenerate_steps": sum(len(r.degenerate_steps) for r in runs),
        "steps_checked": sum(r.steps_run for r in runs),
        "notes": sorted({r.note for r in runs if r.note}),
    }


def _fmt(row):
    br = row["break_steps"]
    where = f"t = {min(br)}..{max(br)}" if br else ""
    return (
        f"held {row['held']}/{REPLICAS}  broken {row['broken']}  undefined {row['undefined']}  "
        f"{where:12s} {', '.join(row['invariants'])}  (degenerate {row['degenerate_steps']}/"
        f"{row['steps_checked']} steps)"
    )


def main():
    start = time.monotonic()
    out = {
        "steps": STEPS,
        "replicas": REPLICAS,
        "sigma": SIGMA,
        "lr": LR,
        "grid": [],
        "corners": [],
        "unequal_sigma": [],
        "lapack_conclusion": [],
    }
    print(
        f"PowerSGD in exact arithmetic, ξ_0 ≡ 1, σ = {SIGMA}, T = {STEPS}, R = {REPLICAS}, η = {LR}, "
        f"MSGD μ = 9/10 unless noted"
    )
    for basis in EXACT_BASES:
        for conv in EXACT_DEGENERATE_QR:
            for nodes in range(1, 6):
                row = _row(_runs(nodes=nodes, basis=basis, degenerate_qr=conv))
                out["grid"].append(
                    {"basis": basis, "degenerate_qr": conv, "nodes": nodes, "optimizer": "msgd", **row}
                )
                print(f"{basis:11s} {conv:8s} N={nodes} msgd  {_fmt(row)}")
        for optimizer in ("sgd", "adam"):
            for nodes in (2, 3):
                row = _row(_runs(nodes=nodes, basis=basis, degenerate_qr="previous", optimizer=optimizer))
                out["grid"].append(
                    {
                        "basis": basis,
                        "degenerate_qr": "previous",
                        "nodes": nodes,
                        "optimizer": optimizer,
                        **row,
                    }
                )
                print(f"{basis:11s} previous N={nodes} {optimizer:5s} {_fmt(row)}")
    print("corner cases (paper basis, N = 3, 'previous'):")
    for label, kwargs in (("σ = 0", {"sigma": 0}), ("Q_{-1} = (1, -1) ⊥ C", {"q_init": (1, -1)})):
        row = _row(_runs(nodes=3, degenerate_qr="previous", **kwargs))
        out["corners"].append({"case": label, **row})
        print(f"  {label:22s} {_fmt(row)}")
    print("unequal per-node σ_i (no signed sum Σ ±σ_i vanishes), MSGD:")
    for sigmas in ((5, 10), (1, 2, 4, 8)):
        for basis in ("paper", "pythagorean"):
            for conv in EXACT_DEGENERATE_QR:
                row = _row(_runs(sigma=list(sigmas), nodes=len(sigmas), basis=basis, degenerate_qr=conv))
                out["unequal_sigma"].append(
                    {"sigmas": list(sigmas), "basis": basis, "degenerate_qr": conv, **row}
                )
                print(f"  σ = {sigmas!s:13s} {basis:11s} {conv:8s} {_fmt(row)}")
    print("LAPACK's e₁ on a degenerate step, paper basis, run on until ||∇f(X_t)||² ≠ 16:")
    for nodes in (2, 4):
        runs = [
            run_exact(
                SIGMA,
                nodes,
                200,
                lr=LR,
                replica=k,
                degenerate_qr="native",
                stop_on=(INVARIANTS[5],),
                max_bits=100_000,
                max_seconds=120,
            )
            for k in range(REPLICAS)
        ]
        cases = [
            {
                "P_tilde_leaves_C": r.broken_at,
                "grad_norm_sq_changes": r.conclusion_broken_at,
                "steps_run": r.steps_run,
                "max_bits": r.max_bits,
            }
            for r in runs
        ]
        out["lapack_conclusion"].append({"nodes": nodes, "runs": cases})
        shown = "; ".join(
            f"{c['P_tilde_leaves_C']} -> "
            + (
                f"{c['grad_norm_sq_changes']}"
                if c["grad_norm_sq_changes"] is not None
                else f"still 16 at t = {c['steps_run']} "
                f"(numbers of {c['max_bits']} bits ≥ the 100 000-bit budget)"
            )
            for c in cases
        )
        print(f"  N = {nodes}: P̃ leaves C at t -> ||∇f||² ≠ 16 at t: {shown}")
    atomic_write_json(os.path.join(HERE, "exact_check.json"), out)
    print(f"({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
