"""Remark 2: can PowerSGD+'s SVD restart be replaced by a lighter compressor?

For each restart compressor (``simulate(..., restart=...)``) on three problems, PowerSGD+
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
the committed table is ``--out counterexamples/remark2``.
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

RESTARTS = (
    ("SVD (paper)", dict(restart="svd")),
    ("randomized p=5 K=1", dict(restart="randomized", restart_oversampling=5, restart_power_steps=1)),
    ("randomized p=2 K=0", dict(restart="randomized", restart_oversampling=2, restart_power_steps=0)),
    ("random basis", dict(restart="random")),
    ("power K=1", dict(restart="power", restart_power_steps=1)),
    ("power K=2", dict(restart="power", restart_power_steps=2)),
)


def problems():
    quad = HeterogeneousQuadratic(8, 6, nodes=4, seed=0)
    return (
        ("ψ, aligned, lock forced", Psi2x2(5.0, basis="aligned", lock_start=True), 1, 5e-3),
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
    p.add_argument("--quick", action="store_true", help="T = 300, R = 20")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = check_out_dir(args.out, names=("remark2.json", "remark2_table.md"))
    steps, replicas = (300, 20) if args.quick else (1000, 100)
    start = time.monotonic()
    rows = []
    for name, problem, rank, lr in problems():
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
    table = _table(rows, steps, replicas)
    print(table)
    summary = {
        **study_record("counterexamples.remark2", argv, start),
        "steps": steps,
        "replicas": replicas,
        "seed": 0,
        "rows": rows,
    }
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "remark2.json"), summary)
        atomic_write_text(os.path.join(stage, "remark2_table.md"), table + "\n")
    return 0


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
