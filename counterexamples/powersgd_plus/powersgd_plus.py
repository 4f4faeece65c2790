"""PowerSGD+ against PowerSGD on Theorem 1's problem (aligned basis, random start):
which step sizes let PowerSGD+ drive E||∇f(X_T)||² towards 0 while PowerSGD keeps
its locked fraction at 2^(−N)?

MSGD μ = 0.9, so Theorem 4 asks for η ≤ (1 − μ)/(2L) = 1/160 = 0.00625 (L = 8).

Run: ``python counterexamples/powersgd_plus/powersgd_plus.py`` (about 60 s on one core).
Writes ``counterexamples/powersgd_plus/powersgd_plus.json`` and
``figures/counterexample_powersgd_plus.png``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from simsgd.lock import lock_summary, simulate_lock
from simsgd.output import atomic_savefig, atomic_write_json
from simsgd.problems import Psi2x2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIGMA, NODES, STEPS, REPLICAS, MU = 5.0, 4, 2000, 1000, 0.9


def _decay(t):
    return 5e-3 / (1 + t / 50)


SETTINGS = (
    ("η = 5e-3", 5e-3, 10),
    ("η = 2e-3", 2e-3, 10),
    ("η = 1e-3", 1e-3, 10),
    ("η = 5e-4", 5e-4, 10),
    ("η = 5e-4, τ = 50", 5e-4, 50),
    ("η_t = 5e-3/(1 + t/50)", _decay, 10),
)


def main():
    start = time.monotonic()
    problem = Psi2x2(SIGMA, basis="aligned")
    rows, curves = [], {}
    print(
        f"σ = {SIGMA:g}, N = {NODES}, T = {STEPS}, R = {REPLICAS}, MSGD μ = {MU}, aligned basis, "
        f"random start; bound 2^-N = {2.0**-NODES:.4f}, ε₀ = {problem.epsilon0(NODES):g}"
    )
    print(
        f"{'setting':24s} {'method':10s} {'E||∇f(X_T)||² [95% CI]':34s} {'locked at T [95% CI]':26s} "
        f"{'at 16 at T':>10s}"
    )
    for label, lr, tau in SETTINGS:
        for method in ("powersgd", "powersgd+"):
            trace, locked = simulate_lock(
                problem,
                method=method,
                nodes=NODES,
                optimizer="msgd",
                lr=lr,
                momentum=MU,
                restart_period=tau,
                steps=STEPS,
                replicas=REPLICAS,
                seed=0,
            )
            final = trace.grad_norm_sq[:, -1]
            row = {
                "setting": label,
                "method": method,
                "tau": tau,
                **lock_summary(trace, locked),
                "fraction_at_16": float(np.mean(final == 16.0)),
            }
            rows.append(row)
            curves[(label, method)] = trace.grad_norm_sq.mean(axis=0)
            (lo, hi), (clo, chi) = row["locked_ci95"], row["ci95"]
            print(
                f"{label:24s} {method:10s} {row['mean_grad_norm_sq_T']:10.3g} [{clo:9.3g}, {chi:9.3g}]  "
                f"{row['locked_fraction']:.4f} [{lo:.4f}, {hi:.4f}]    {row['fraction_at_16']:10.3f}"
            )
    atomic_write_json(
        os.path.join(HERE, "powersgd_plus.json"),
        {"sigma": SIGMA, "nodes": NODES, "steps": STEPS, "replicas": REPLICAS, "momentum": MU, "rows": rows},
    )
    _plot(curves, problem.epsilon0(NODES))
    print(f"({time.monotonic() - start:.0f} s)")


def _plot(curves, eps0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, _, _), colour in zip(SETTINGS, colours):
        ax.plot(np.maximum(curves[(label, "powersgd+")], 1e-300), color=colour, label=f"PowerSGD+, {label}")
        ax.plot(curves[(label, "powersgd")], color=colour, linestyle=":", linewidth=1)
    ax.axhline(
        eps0, color="k", linestyle="--", linewidth=1, label=rf"$\epsilon_0$ = {eps0:g} (dotted: PowerSGD)"
    )
    ax.set_yscale("log")
    ax.set_ylim(1e-30, 50)
    ax.set_xlabel("step t")
    ax.set_ylabel("E ||∇f(X_t)||²")
    ax.set_title(
        f"PowerSGD+ vs PowerSGD, σ = {SIGMA:g}, N = {NODES}, MSGD μ = {MU}, R = {REPLICAS}, aligned basis",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(ROOT, "figures", "counterexample_powersgd_plus.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
