"""The same ψ problem written in other orthonormal bases (X' = U X Vᵀ).

In exact arithmetic the basis does not matter for SGD/MSGD (see exact_check: the
rational "pythagorean" rotation keeps every invariant). In floating point it does: the
lock survives only where rounding keeps C's direction exact. This study runs PowerSGD
(MSGD, and Adam) from a random start and from ξ_0 ≡ 1 in the aligned basis, the paper's
basis and five random rotations, and reports the locked fraction at T against 2^(−N)
and E||∇f(X_T)||² against ε₀.

Run: ``python counterexamples/rotated_bases/rotated_bases.py`` (about 40 s on one core).
Writes ``counterexamples/rotated_bases/rotated_bases.json``.
"""

from __future__ import annotations

import os
import time

from simsgd.lock import lock_summary, simulate_lock
from simsgd.output import atomic_write_json
from simsgd.problems import Psi2x2

HERE = os.path.dirname(os.path.abspath(__file__))
SIGMA, NODES, STEPS, REPLICAS = 5.0, 4, 1000, 1000
BASES = [("aligned", 0), ("paper", 0)] + [("random", s) for s in range(5)]
OPTIMIZERS = (("msgd", 5e-4), ("adam", 1e-3))


def main():
    start = time.monotonic()
    rows = []
    print(
        f"PowerSGD, σ = {SIGMA:g}, N = {NODES}, T = {STEPS}, R = {REPLICAS}, bound 2^-N = {2.0**-NODES:.4f}, "
        f"ε₀ = 1 (MSGD μ = 0.9, η = 5e-4; Adam η = 1e-3)"
    )
    print(
        f"{'basis':10s} {'opt':5s} {'start':8s} {'locked at T [95% CI]':26s} {'E||∇f(X_T)||² [95% CI]':30s}"
    )
    # the default QR(0) convention ("previous") everywhere; LAPACK's "native" once, to show
    # what using QR of a rounding-noise P (at balanced steps) does to the speed
    cases = [(b, s, opt, lr, "previous") for b, s in BASES for opt, lr in OPTIMIZERS]
    cases.append(("random", 0, "msgd", 5e-4, "native"))
    for basis, basis_seed, optimizer, lr, convention in cases:
        for lock_start in (False, True):
            problem = Psi2x2(SIGMA, basis=basis, basis_seed=basis_seed, lock_start=lock_start)
            trace, locked = simulate_lock(
                problem,
                method="powersgd",
                nodes=NODES,
                optimizer=optimizer,
                lr=lr,
                momentum=0.9,
                steps=STEPS,
                replicas=REPLICAS,
                seed=0,
                degenerate_qr=convention,
            )
            row = lock_summary(trace, locked)
            name = basis if basis != "random" else f"random/{basis_seed}"
            name += "" if convention == "previous" else " (native)"
            start_label = "ξ_0 ≡ 1" if lock_start else "random"
            rows.append(
                {
                    "basis": basis,
                    "basis_seed": basis_seed,
                    "degenerate_qr": convention,
                    "optimizer": optimizer,
                    "lr": lr,
                    "lock_start": lock_start,
                    **row,
                }
            )
            (lo, hi), (clo, chi) = row["locked_ci95"], row["ci95"]
            print(
                f"{name:10s} {optimizer:5s} {start_label:8s} "
                f"{row['locked_fraction']:.4f} [{lo:.4f}, {hi:.4f}]   "
                f"{row['mean_grad_norm_sq_T']:9.3g} [{clo:9.3g}, {chi:9.3g}]"
            )
    atomic_write_json(
        os.path.join(HERE, "rotated_bases.json"),
        {"sigma": SIGMA, "nodes": NODES, "steps": STEPS, "replicas": REPLICAS, "rows": rows},
    )
    print(f"({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
