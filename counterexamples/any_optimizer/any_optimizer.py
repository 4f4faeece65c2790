"""Theorem 1's "any base optimizer" under Adam and AdamW: eq. (10) beside the shifted construction.

Theorem 1 is an existence statement. On eq. (10) AdamW's decoupled weight decay releases
Claim 1's lock — but only because decay's fixed point X = 0 is eq. (10)'s minimiser. With ψ
shifted (f_i(X) = ψ(DᵀXD + 2), minimiser at ⟨A, X⟩ = −2; ``Psi2x2(shift=2)``) the same lock
keeps ||∇f||² = 16 under AdamW. Grid: both constructions × PowerSGD with the lock forced
(ξ_0 ≡ 1) and uncompressed averaging × Adam and AdamW (λ = 0.01, 0.05, 0.2) × η = 1e-3, 1e-2;
aligned basis, N = 4, σ = 5, T = 3000, R = 16, seed 0, float64. Then Theorem 1's conclusion
itself, from a random start (R = 1000): E||∇f(X_T)||² against ε₀ = 16·2⁻⁴. Each locked PowerSGD
run is checked against the closed form ⟨A, X_t⟩ = 2(1 − ηλ)^t (:mod:`.runs`).

Run: ``python -m counterexamples.any_optimizer [--quick] --out DIR`` (default
``out/any_optimizer``); the committed files are ``--out counterexamples/any_optimizer``.
"""

from __future__ import annotations

import os
import sys
import time

from simsgd.cli import Parser, check_out_dir, output_set, run
from simsgd.output import atomic_write_json, atomic_write_text

from .._study import study_record
from .claims import any_optimizer_claim
from .runs import CONSTRUCTIONS, NODES, SIGMA
from .runs import run as run_cell

FILES = ("any_optimizer.json", "any_optimizer_table.md")
OPTIMIZERS = (("adam", 0.0), ("adamw", 0.01), ("adamw", 0.05), ("adamw", 0.2))
BASE = {"lr": 1e-2, "weight_decay": 0.2, "steps": 3000, "replicas": 16, "seed": 0, "sigma": SIGMA}
QUICK_BASE = {**BASE, "steps": 1000, "replicas": 8}


def build_parser():
    p = Parser(prog="python -m counterexamples.any_optimizer", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out",
        default=os.path.join("out", "any_optimizer"),
        help="output folder (default out/any_optimizer)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="T = 1000, R = 8, η = 1e-2 and λ = 0.2 only, random start R = 200; no T × 10 row",
    )
    return p


def grid(base, quick):
    """The table's rows: every construction, method, optimiser and η (quick: the base cell only)."""
    lrs = (base["lr"],) if quick else (1e-3, 1e-2)
    optimizers = (("adam", 0.0), ("adamw", base["weight_decay"])) if quick else OPTIMIZERS
    return [
        {"construction": name, **run_cell(shift, method, opt, wd, lr, base["steps"], base["replicas"])}
        for name, shift in CONSTRUCTIONS
        for lr in lrs
        for opt, wd in optimizers
        for method in ("powersgd", "full")
    ]


def settings(base, quick):
    """The shifted construction's locked PowerSGD + AdamW under each sensitivity setting."""

    def shifted(**change):
        cell = {**base, **change}
        return run_cell(
            2.0,
            "powersgd",
            "adamw",
            cell["weight_decay"],
            cell["lr"],
            cell["steps"],
            cell["replicas"],
            sigma=cell["sigma"],
            seed=cell["seed"],
            dtype=cell.get("dtype", "float64"),
        )

    return {
        "eta_x0.1": shifted(lr=base["lr"] / 10),
        "eta_x10": shifted(lr=base["lr"] * 10),
        "T_x10": "not run under --quick (T = 3·10⁴)" if quick else shifted(steps=base["steps"] * 10),
        "sigma": shifted(sigma=25.0),
        "seeds": shifted(seed=1),
        "precision_or_convention": shifted(dtype="float32"),
    }


def unconditional(base, replicas):
    """Theorem 1's conclusion from a random start (no lock forced), AdamW at the base cell."""
    return [
        {
            "construction": name,
            **run_cell(
                shift,
                "powersgd",
                "adamw",
                base["weight_decay"],
                base["lr"],
                base["steps"],
                replicas,
                lock_start=False,
            ),
        }
        for name, shift in CONSTRUCTIONS
    ]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = check_out_dir(args.out, names=FILES)
    base = QUICK_BASE if args.quick else BASE
    start = time.monotonic()
    rows = grid(base, args.quick)
    free = unconditional(base, 200 if args.quick else 1000)
    sens = settings(base, args.quick)
    table = _table(rows, free, base)
    print(table)
    quick_note = (
        "--quick: T = 1000, R = 8, the base cell only, random start R = 200; T_x10 not run"
        if args.quick
        else None
    )
    summary = {
        **study_record("counterexamples.any_optimizer", argv, start),
        "base": base,
        "nodes": NODES,
        "rows": rows,
        "random_start": free,
        "settings": sens,
        "claims": {"T1-any-optimizer": any_optimizer_claim(rows, free, sens, base, quick_note)},
    }
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "any_optimizer.json"), summary)
        atomic_write_text(os.path.join(stage, "any_optimizer_table.md"), table + "\n")
    return 0


def _table(rows, free, base):
    lines = [
        f"ψ, aligned, N = {NODES}, σ = {SIGMA:g}, T = {base['steps']}, float64, seed 0. "
        f"PowerSGD with ξ_0 ≡ 1 forced (R = {base['replicas']}) and uncompressed averaging ('full'). "
        "'stayed' = runs with "
        "||∇f(X_t)||² = ||∇f(X_0)||² = 16 for every t ≤ T; 'closed form' = max_t |⟨A, X_t⟩ − 2(1 − ηλ)^t| / "
        "2(1 − ηλ)^t (bound 4·T·eps).",
        "",
        "| construction | method | optimiser | λ | η | E‖∇f(X_T)‖² [min, max] | stayed | ⟨A, X_T⟩ median "
        "| closed form |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g = r["final_grad_norm_sq"]
        form = r.get("closed_form")
        gap = "–" if form is None else f"{form['max_relative_gap']:.2g} (≤ {form['bound']:.2g})"
        lines.append(
            f"| {r['construction']} | {r['method']} | {r['optimizer']} | {r['weight_decay']:g} | "
            f"{r['lr']:g} | {g['mean']:.3g} [{g['min']:.3g}, {g['max']:.3g}] | "
            f"{r['stayed_at_initial_all_t']}/{r['replicas']} | "
            f"{r['inner_T'][1]:.4g} | {gap} |"
        )
    lines += [
        "",
        f"Theorem 1's conclusion from a random start (PowerSGD + AdamW, λ = {base['weight_decay']:g}, "
        f"η = {base['lr']:g}): E‖∇f(X_T)‖² against ε₀ = 16·2⁻ᴺ.",
        "",
        "| construction | R | E‖∇f(X_T)‖² | ε₀ | runs at 16 for every t |",
        "|---|---|---|---|---|",
    ]
    for r in free:
        lines.append(
            f"| {r['construction']} | {r['replicas']} | {r['final_grad_norm_sq']['mean']:.3g} | "
            f"{r['epsilon0']:g} | {r['stayed_at_initial_all_t']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m counterexamples.any_optimizer"))
