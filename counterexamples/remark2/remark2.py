"""Remark 2: can PowerSGD+'s SVD restart be replaced by a lighter compressor, and what does a
restart do to a run locked by Claim 1?

Two parts. The step-size sweep (:mod:`counterexamples.remark2.sweep`): on ψ with the lock
forced, per restart kind and η, whether the first restart frees the run, which direction it
picks, whether the freed runs converge, and the burst gain that decides it; with the claim
"R2" (:mod:`counterexamples.remark2.claims`). The premise table: for each restart compressor
(``simulate(..., restart=...)``) on three problems, PowerSGD+
(MSGD μ = 0.9, τ = 10) against PowerSGD (the control) and uncompressed averaging (the noise
floor at this constant η): E||∇f(X_T)||² with a 95% bootstrap
band, the fraction of runs with ||∇f(X_T)||² ≤ 10⁻³·||∇f(X_0)||² (Wilson 95%), floats one
node sends per step (mean over T, and at a restart step), and Lemma 2's contraction at the
restarts, measured: ρ = ||Δ̂ − Δ̄||²/||Δ̄||² per restart (δ' = 1 − ρ), its mean with a 95%
CI, its 99% quantile and its largest value over all restarts and runs (a compressor is
δ'-contractive for every input only if ρ ≤ 1 − δ' always). ρ > 1 can only come from
rounding: where Δ̄ is a cancellation-small mean of large Δ^{(i)} (a balanced step), the
compressed mean P̃ mean_i(Δ^{(i)ᵀ}P̃)ᵀ has absolute error ~ eps·max||Δ^{(i)}||.

Problems: ψ (eq. 10, σ = 5, N = 4, aligned basis, lock forced ξ_0 ≡ 1, r = 1, η = 5e-3);
the general counterexample (12×10, k = 2, σ = 5, N = 4, aligned basis, lock forced, r = 2,
η = 1e-3); the heterogeneous quadratic (8×6, N = 4, r = 1, η = (1 − μ)/(4L)).

Run: ``python -m counterexamples.remark2 [--quick] --out DIR`` (default ``out/remark2``);
the committed tables are ``--out counterexamples/remark2``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import simsgd
from simsgd.cli import Parser, check_out_dir, output_set, run
from simsgd.output import atomic_write_json, atomic_write_text
from simsgd.problems import GeneralCounterexample, HeterogeneousQuadratic, Psi2x2
from simsgd.stats import mean_band, mean_ci, wilson_interval

from .._study import study_record
from . import sweep
from .claims import r2_claim

RESTARTS = (
    ("SVD (paper)", dict(restart="svd")),
    ("randomized p=5 K=1", dict(restart="randomized", restart_oversampling=5, restart_power_steps=1)),
    ("randomized p=2 K=0", dict(restart="randomized", restart_oversampling=2, restart_power_steps=0)),
    ("random basis", dict(restart="random")),
    ("power K=1", dict(restart="power", restart_power_steps=1)),
    ("power K=2", dict(restart="power", restart_power_steps=2)),
)


def problems(quick=False):
    psi = ("ψ, aligned, lock forced", Psi2x2(5.0, basis="aligned", lock_start=True), 1, 5e-3)
    if quick:
        return (psi,)
    quad = HeterogeneousQuadratic(8, 6, nodes=4, seed=0)
    return (
        psi,
        (
            "general 12×10 k=2, aligned, lock forced",
            GeneralCounterexample(12, 10, signal_rank=2, noise_scale=5.0, lock_start=True),
            2,
            1e-3,
        ),
        ("quadratic 8×6", quad, 1, 0.1 / (4 * quad.L)),
    )


def measure(problem, rank, lr, method, options, steps, replicas):
    trace = simsgd.simulate(
        problem,
        method=method,
        nodes=4,
        rank=rank,
        restart_period=10,
        optimizer="msgd",
        lr=lr,
        momentum=0.9,
        steps=steps,
        replicas=replicas,
        seed=0,
        progress=False,
        **options,
    )
    final = trace.grad_norm_sq[:, -1]
    mean, lo, hi = (float(v[-1]) for v in mean_band(trace.grad_norm_sq[:, -1:]))
    converged = int((final <= 1e-3 * trace.grad_norm_sq[:, 0]).sum())
    row = {
        "final_grad_norm_sq": mean,
        "final_band95": [lo, hi],
        "converged": converged,
        "converged_wilson95": list(wilson_interval(converged, replicas)),
        "floats_per_step": float(trace.floats_sent.mean()),
        "floats_restart": int(trace.floats_sent[0]),
    }
    if trace.restart_residual is not None and trace.restart_residual.size:
        rho = trace.restart_residual.ravel()
        rho_mean, rho_half = mean_ci(rho)
        row.update(
            residual_mean=float(rho_mean),
            residual_ci95_half=float(rho_half),
            residual_p99=float(np.quantile(rho, 0.99)),
            residual_max=float(rho.max()),
        )
    return row


def build_parser():
    p = Parser(prog="python -m counterexamples.remark2", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out", default=os.path.join("out", "remark2"), help="output folder (default out/remark2)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="premise table on ψ only (T = 300, R = 20); sweep at η = 5e-3 and 5e-4 (T = 600, R = 20)",
    )
    return p


BASE = {"lr": 5e-4, "steps": 1000, "replicas": 100, "sigma": 5.0, "seed": 0}
QUICK_BASE = {**BASE, "steps": 600, "replicas": 20}


def run_sweep(base, quick):
    """The η sweep (every kind), the sensitivity settings and the PowerSGD control."""

    def kinds(lr, steps, **extra):
        return [
            sweep.cell(kind, options, lr, steps, base["replicas"], **extra) for kind, options in sweep.KINDS
        ]

    etas = ((5e-3, 1), (base["lr"], 1)) if quick else sweep.ETAS
    rows = [row for lr, mult in etas for row in kinds(lr, base["steps"] * mult)]
    at = {(r["lr"], r["steps"]) for r in rows}
    not_run = "not run under --quick (T = 10⁴ runs)"
    settings = {
        "eta_x0.1": not_run if quick else kinds(base["lr"] / 10, base["steps"] * 10),
        "eta_x10": [r for r in rows if (r["lr"], r["steps"]) == (base["lr"] * 10, base["steps"])],
        "T_x10": not_run if quick else kinds(base["lr"], base["steps"] * 10),
        "sigma": kinds(base["lr"], base["steps"], sigma=25.0),
        "seeds": kinds(base["lr"], base["steps"], seed=1),
        "precision_or_convention": kinds(base["lr"], base["steps"], dtype="float32"),
    }
    assert (base["lr"] * 10, base["steps"]) in at  # η × 10 is a sweep row
    control = [
        sweep.cell("none (PowerSGD)", {}, base["lr"], base["steps"], base["replicas"], method="powersgd")
    ]
    return rows, settings, control


FILES = ("remark2.json", "remark2_table.md", "remark2_sweep.md")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = check_out_dir(args.out, names=FILES)
    steps, replicas = (300, 20) if args.quick else (1000, 100)
    base = QUICK_BASE if args.quick else BASE
    start = time.monotonic()
    sweep_rows, settings, control = run_sweep(base, args.quick)
    rows = []
    for name, problem, rank, lr in problems(args.quick):
        for method in ("full", "powersgd"):  # the noise floor at this η, and the control
            row = measure(problem, rank, lr, method, {}, steps, replicas)
            rows.append({"problem": name, "restart": f"none ({method})", "lr": lr, **row})
        for label, options in RESTARTS:
            rows.append(
                {
                    "problem": name,
                    "restart": label,
                    "lr": lr,
                    **measure(problem, rank, lr, "powersgd+", options, steps, replicas),
                }
            )
    table, sweep_table = _table(rows, steps, replicas), _sweep_table(sweep_rows, control)
    print(sweep_table, table, sep="\n\n")
    premise = {
        label: {r["problem"]: r.get("residual_max") for r in rows if r["restart"] == label}
        for label in ("SVD (paper)", "random basis", "power K=1", "randomized p=5 K=1")
    }
    premise["random"] = premise.pop("random basis")
    quick_note = (
        "--quick: R = 20, T = 600, sweep at η = 5e-3 and 5e-4 only, premise table on ψ only; "
        "eta_x0.1 and T_x10 not run"
        if args.quick
        else None
    )
    summary = {
        **study_record("counterexamples.remark2", argv, start),
        "steps": steps,
        "replicas": replicas,
        "seed": 0,
        "rows": rows,
        "sweep": {"base": base, "rows": sweep_rows, "control": control, "settings": settings},
        "claims": {"R2": r2_claim(sweep_rows, settings, control, premise, base, quick_note)},
    }
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "remark2.json"), summary)
        atomic_write_text(os.path.join(stage, "remark2_table.md"), table + "\n")
        atomic_write_text(os.path.join(stage, "remark2_sweep.md"), sweep_table + "\n")
    return 0


def _sweep_table(rows, control):
    lines = [
        f"The restart on a locked run: ψ, aligned, ξ_0 ≡ 1 forced, N = {sweep.NODES}, σ = 5, "
        f"τ = {sweep.TAU}, MSGD μ = {sweep.MU}, float64, seed 0. "
        "'freed' = ⟨A, X⟩ moved by t = τ + 1 (first move: median step); "
        "'picked A' = P̃_τ mostly along A; 'converged' = ||∇f(X_T)||² ≤ 1e-3·16 (Wilson 95%); "
        "g = 1 − s_{t+τ}/s_t per A-picking restart with |s_t| < 1 (s = ⟨A, X⟩; g > 2 overshoots), "
        "median [quartiles], share > 2, and the linearised 8ητ/(1 − μ); 'off axes' = share of steps whose "
        "P̃ lies along neither A nor B.",
        "",
        "| restart | η | T | R | freed | picked A (restarts) | converged | < 1e-6 | E‖∇f(X_T)‖² [95% band] "
        "| ⟨A, X_T⟩ 10/50/90% | g median [IQR] | g > 2 | 8ητ/(1−μ) | off axes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*rows, *control]:
        lo, hi = r["final_band95"]
        clo, chi = r["converged_wilson95"]
        q = r["inner_T_quantiles_10_50_90"]
        gain = r.get("gain", {})
        gq = gain.get("quartiles")
        g = "–" if not gq else f"{gq[1]:.2f} [{gq[0]:.2f}–{gq[2]:.2f}]"
        amp = "–" if gain.get("amplifying") is None else f"{gain['amplifying']:.2f}"
        picked = (
            f"{r['first_restart_picked_signal']:.2f} ({r['restarts_picking_signal']:.2f})"
            if "first_restart_picked_signal" in r
            else "–"
        )
        lines.append(
            f"| {r['kind']} | {r['lr']:g} | {r['steps']} | {r['replicas']} | "
            f"{r['freed_by_first_restart']:.2f} ({r['first_move_quartiles'][1]:g}) | {picked} | "
            f"{r['converged']}/{r['replicas']} "
            f"[{clo:.2f}, {chi:.2f}] | {r['below_1e-6']:.2f} | "
            f"{r['final_grad_norm_sq']:.3g} [{lo:.3g}, {hi:.3g}] | {q[0]:.3g} / {q[1]:.3g} / {q[2]:.3g} | "
            f"{g} | {amp} | {gain.get('predicted', float('nan')):.3g} | "
            f"{r.get('off_axes', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def _table(rows, steps, replicas):
    lines = [
        f"PowerSGD+ restarts (Remark 2), N = 4, τ = 10, MSGD μ = 0.9, T = {steps}, R = {replicas}, seed 0. "
        "ρ = ||Δ̂ − Δ̄||²/||Δ̄||² at restarts (δ' = 1 − ρ).",
        "",
        "| problem | restart | E‖∇f(X_T)‖² [95% band] | converged (Wilson 95%) | floats/step (restart) "
        "| mean ρ [95% CI] | 99% ρ | max ρ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["final_band95"]
        clo, chi = r["converged_wilson95"]
        rho = (
            f"{r['residual_mean']:.3f} ± {r['residual_ci95_half']:.3f} | {r['residual_p99']:.3f} | "
            f"{r['residual_max']:.3g}"
            if "residual_mean" in r
            else "– | – | –"
        )
        lines.append(
            f"| {r['problem']} | {r['restart']} | {r['final_grad_norm_sq']:.3g} [{lo:.3g}, {hi:.3g}] | "
            f"{r['converged']}/{replicas} [{clo:.2f}, {chi:.2f}] | "
            f"{r['floats_per_step']:.1f} ({r['floats_restart']}) | {rho} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m counterexamples.remark2"))
