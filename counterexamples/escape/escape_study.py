"""Floating point against Theorem 1's lock: how many steps until a run started in the lock
(ξ_0 ≡ 1) leaves it, against σ, N, η, float32/float64, the basis and the QR routine.

Two escape times per run:
* ``span``: first t with X_t − X_0 ∉ span(B) (off-B part above 2¹⁰ machine epsilons);
* ``grad``: first t with | ||∇f(X_t)||² − 16 | > 10⁻³ (the gradient itself moved).

"core" is ``orthogonalization="householder"`` (rank 1 in closed form, P̃ = P/β, which keeps
equal entries equal); "lapack" is ``orthogonalization="lapack"`` (``np.linalg.qr``, LAPACK
dgeqrf/dorgqr): the same Householder reflection, different in the last bit.

Run: ``python counterexamples/escape/escape_study.py`` (about 25–40 s on one core). Writes
``figures/escape_steps.png`` and ``counterexamples/escape/escape_study.json``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from simsgd.lock import escape_steps, simulate_lock
from simsgd.output import atomic_savefig, atomic_write_json
from simsgd.problems import Psi2x2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIGMAS = (1, 5, 25, 125)
NODES = (2, 4, 8)
VARIANTS = (("paper", "core"), ("paper", "lapack"), ("random", "core"), ("aligned", "core"))
STEPS, REPLICAS = 400, 200


def _quartiles(steps):
    hit = steps[steps >= 0]
    if hit.size == 0:
        return None
    return [float(v) for v in np.percentile(hit, [25, 50, 75])]


def measure(basis, qr, sigma, nodes, dtype, lr):
    problem = Psi2x2(sigma, basis=basis, lock_start=True)
    trace, locked = simulate_lock(
        problem,
        method="powersgd",
        nodes=nodes,
        optimizer="msgd",
        lr=lr,
        momentum=0.9,
        steps=STEPS,
        replicas=REPLICAS,
        seed=0,
        dtype=dtype,
        orthogonalization="householder" if qr == "core" else "lapack",
    )
    span = escape_steps(locked)
    grad = escape_steps(np.abs(trace.grad_norm_sq - 16.0) <= 1e-3)
    return {
        "basis": basis,
        "qr": qr,
        "sigma": sigma,
        "nodes": nodes,
        "dtype": dtype,
        "lr": lr,
        "escaped_span": float((span >= 0).mean()),
        "span_quartiles": _quartiles(span),
        "escaped_grad": float((grad >= 0).mean()),
        "grad_quartiles": _quartiles(grad),
    }


def main():
    start = time.monotonic()
    rows = []
    for basis, qr in VARIANTS:
        for dtype in ("float64", "float32"):
            for nodes in NODES:
                for sigma in SIGMAS:
                    rows.append(measure(basis, qr, sigma, nodes, dtype, 5e-4))
    for lr in (1e-4, 2e-3):  # step-size dependence, one slice
        for sigma in SIGMAS:
            rows.append(measure("random", "core", sigma, 4, "float64", lr))
    fmt = lambda q: "never" if q is None else f"{q[1]:g} [{q[0]:g}, {q[2]:g}]"  # noqa: E731
    print(f"T = {STEPS}, R = {REPLICAS}, PowerSGD + MSGD μ = 0.9, start ξ_0 ≡ 1; median [IQR] escape step")
    print(
        f"{'basis':8s} {'QR':7s} {'dtype':8s} {'N':>2s} {'σ':>4s} {'η':>7s}  {'left span(B)':22s} {'||∇f||² moved':22s}"
    )
    for r in rows:
        print(
            f"{r['basis']:8s} {r['qr']:7s} {r['dtype']:8s} {r['nodes']:2d} {r['sigma']:4g} {r['lr']:7g}  "
            f"{fmt(r['span_quartiles']):22s} {fmt(r['grad_quartiles']):22s}"
        )
    atomic_write_json(
        os.path.join(HERE, "escape_study.json"), {"steps": STEPS, "replicas": REPLICAS, "rows": rows}
    )
    _plot(rows)
    print(f"({time.monotonic() - start:.0f} s)")


def _plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    panels = (
        ("paper", "lapack", "paper basis, LAPACK QR"),
        ("random", "core", "random basis, core QR"),
        ("random-lr", "core", "random basis, N = 4, float64: η"),
    )
    for ax, (basis, qr, title) in zip(axes, panels):
        if basis == "random-lr":
            series = [
                (
                    f"η = {lr:g}",
                    [
                        r
                        for r in rows
                        if r["basis"] == "random"
                        and r["nodes"] == 4
                        and r["dtype"] == "float64"
                        and r["lr"] == lr
                    ],
                )
                for lr in (1e-4, 5e-4, 2e-3)
            ]
        else:
            series = [
                (
                    f"N = {n}, {d}",
                    [
                        r
                        for r in rows
                        if r["basis"] == basis
                        and r["qr"] == qr
                        and r["nodes"] == n
                        and r["dtype"] == d
                        and r["lr"] == 5e-4
                    ],
                )
                for d in ("float64", "float32")
                for n in NODES
            ]
        for label, sel in series:
            sel = [r for r in sel if r["grad_quartiles"] is not None]
            if not sel:
                ax.plot([], [], label=f"{label}: never")
                continue
            sig = np.array([r["sigma"] for r in sel], dtype=float)
            q = np.array([r["grad_quartiles"] for r in sel])
            ax.errorbar(
                sig,
                q[:, 1],
                yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]],
                marker="o",
                capsize=3,
                label=label,
                linestyle="--" if "float32" in label else "-",
            )
        ax.set_xscale("log")
        ax.set_xlabel("σ")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("steps until ||∇f(X_t)||² moves (median, IQR)")
    fig.suptitle(
        f"Escape from Theorem 1's lock in floating point (PowerSGD, MSGD μ = 0.9, "
        f"ξ_0 ≡ 1, R = {REPLICAS}, T = {STEPS}); aligned and paper basis with core QR: never",
        fontsize=10,
    )
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(ROOT, "figures", "escape_steps.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
