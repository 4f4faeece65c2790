"""Floating point against Theorem 1's lock: whether, and after how many steps, a run started in the
lock (ξ_0 ≡ 1) leaves it — as a function of the implementation, σ, N, the rank r and the precision.

Parts (PowerSGD + MSGD μ = 0.9, η = 5e-4, seed 0; cells in :mod:`.cells`, implementations in
:mod:`.implementations`):

1. ``symmetry``: which building blocks keep the paper basis's swap symmetry on random inputs.
2. ``paper``: the paper basis under five implementations — the project's default (entry-by-entry
   product, closed-form rank-1 Householder, QR(0) = previous), QR(0) = native (even N),
   LAPACK's Householder QR, Gram–Schmidt (PyTorch's hook), and ``np.matmul`` (BLAS) — for
   N = 1..5 and σ = 1, 5, 25, 125 in float64, and three of them in float32.
3. ``random`` / ``aligned``: a random rotation (general position) and the aligned basis (exact
   zeros), the project's default implementation.
4. ``rank``: the 12×10 general counterexample with signal rank k = r ∈ {1, 2, 4}, random basis
   (k = 2 in the aligned basis: the control).
5. ``bfloat16``: every array in bfloat16 (torch backend), paper and random basis.
6. ``error``: is ē bounded in general position? max_t ||ē_t||² over T and over its first tenth.
7. The claim "F-escape" (:mod:`.claims`) with its sensitivity rows.

Run: ``python -m counterexamples.escape [--quick] --out DIR`` (default ``out/escape``); the
committed files are ``--out counterexamples/escape``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from simsgd._checks import check_memory
from simsgd.cli import Parser, check_out_dir, integer, output_set, parse_with_quick, run, usage_errors
from simsgd.engine import memory_estimate
from simsgd.output import atomic_write_json, atomic_write_text

from .._study import study_record
from . import implementations
from .cells import measure
from .claims import escape_claim
from .report import plot, table

SIGMAS = (1, 5, 25, 125)
NODES = (1, 2, 3, 4, 5)
IMPLEMENTATIONS = {
    "default": {},
    "native": {"degenerate_qr": "native"},
    "lapack": {"orthogonalization": "lapack"},
    "gram-schmidt": {"orthogonalization": "gram-schmidt"},
    "blas": {"backend": implementations.BLAS},
}
LASTING = ("default", "gram-schmidt")
"""Implementations expected to keep the paper-basis lock: run for the long T."""
FILES = ("escape.json", "escape_table.md", "escape_steps.png")
QUICK = {"steps": 400, "replicas": 16}


def build_parser():
    p = Parser(prog="python -m counterexamples.escape", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join("out", "escape"), help="output folder (default out/escape)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few cells per part, T = 400 (short runs 200), R = 16; --steps/--replicas win",
    )
    p.add_argument(
        "--steps",
        type=integer("--steps", 1),
        default=2000,
        help="T of the runs that may keep the lock (default 2000; 400 with --quick); "
        "runs that leave it use min(T, 500)",
    )
    p.add_argument(
        "--replicas", type=integer("--replicas", 1), default=32, help="R ≥ 1 (default 32; 16 with --quick)"
    )
    return p


def _cell(part, implementation, **kwargs):
    return {
        "part": part,
        "implementation": implementation,
        **measure(**kwargs, **IMPLEMENTATIONS[implementation]),
    }


def grid(long, short, replicas, quick):
    """Parts 2–6: a list of cells (each a dict from :func:`.cells.measure` with part and implementation)."""
    nodes, sigmas = ((1, 3), (5,)) if quick else (NODES, SIGMAS)
    cells = []
    for impl in IMPLEMENTATIONS:
        for n in (4,) if quick and impl == "native" else nodes:
            if impl == "native" and n % 2:
                continue  # QR(0) never fires for odd N
            for sigma in (1, 125) if impl == "gram-schmidt" and not quick else sigmas:
                steps = long if impl in LASTING else short
                cells.append(
                    _cell("paper", impl, basis="paper", sigma=sigma, nodes=n, steps=steps, replicas=replicas)
                )
    for impl in () if quick else ("default", "lapack", "blas"):
        for n in (1, 3, 4):
            for sigma in (1, 125):
                cells.append(
                    _cell(
                        "paper",
                        impl,
                        basis="paper",
                        sigma=sigma,
                        nodes=n,
                        steps=long,
                        replicas=replicas,
                        precision="float32",
                    )
                )
    for precision in ("float64",) if quick else ("float64", "float32"):
        for n in (3,) if quick else NODES if precision == "float64" else (1, 3, 4):
            for sigma in sigmas if precision == "float64" else (1, 125):
                cells.append(
                    _cell(
                        "random",
                        "default",
                        basis="random",
                        sigma=sigma,
                        nodes=n,
                        steps=short,
                        replicas=replicas,
                        precision=precision,
                    )
                )
    for impl, n, sigma in (
        (("default", 3, 5),) if quick else (("default", 1, 1), ("default", 4, 125), ("lapack", 3, 5))
    ):
        cells.append(
            _cell("aligned", impl, basis="aligned", sigma=sigma, nodes=n, steps=long, replicas=replicas)
        )
    for rank in (2,) if quick else (1, 2, 4):
        for n, sigma in ((3, 5),) if quick else ((3, 5), (3, 125), (4, 5), (4, 125)):
            cells.append(
                _cell(
                    "rank",
                    "default",
                    basis="random",
                    sigma=sigma,
                    nodes=n,
                    steps=short,
                    replicas=replicas,
                    rank=rank,
                    shape=(12, 10),
                )
            )
    if not quick:
        cells.append(
            _cell(
                "rank",
                "default",
                basis="aligned",
                sigma=5,
                nodes=3,
                steps=long,
                replicas=replicas,
                rank=2,
                shape=(12, 10),
            )
        )
    if implementations.has_torch():
        for basis in ("paper", "random"):
            for n in (3,) if quick else (1, 3, 4):
                cells.append(
                    _cell(
                        "bfloat16",
                        "default",
                        basis=basis,
                        sigma=5,
                        nodes=n,
                        steps=100 if quick else 400,
                        replicas=replicas,
                        precision="bfloat16",
                    )
                )
    error_steps = 2000 if quick else 20000
    for n, sigma in ((3, 125),) if quick else ((3, 5), (3, 125), (4, 5), (4, 125)):
        cells.append(
            _cell("error", "default", basis="random", sigma=sigma, nodes=n, steps=error_steps, replicas=16)
        )
    return cells


def settings(base, long, short, replicas, quick):
    """The claim's sensitivity settings: the default and LAPACK at N = 3 under each change."""

    def pair(**change):
        cell = {**base, **change}
        return [
            _cell(
                "sensitivity",
                impl,
                basis="paper",
                replicas=replicas,
                steps=cell["steps"] if impl == "default" else short,
                **{k: v for k, v in cell.items() if k != "steps"},
            )
            for impl in ("default", "lapack")
        ]

    return {
        "eta_x0.1": pair(lr=base["lr"] / 10),
        "eta_x10": pair(lr=base["lr"] * 10),
        "T_x10": "not run under --quick (T = 2·10⁴)" if quick else pair(steps=long * 10),
        "sigma": pair(sigma=125),
        "seeds": pair(seed=1),
        "precision_or_convention": pair(precision="float32"),
    }


def main(argv=None) -> int:
    args = parse_with_quick(build_parser(), argv, QUICK)
    long, replicas = args.steps, args.replicas
    short = min(long // 2 if args.quick else 500, long)
    error_steps = 2000 if args.quick else 20000
    with usage_errors():  # the largest run (the 12×10 problem, and the ē runs), before any is started
        check_memory(
            f"--steps {long} --replicas {replicas}",
            max(memory_estimate(replicas, long, 5, (12, 10), 4), memory_estimate(16, error_steps, 4, (2, 2))),
            "fewer --replicas or --steps",
        )
    out = check_out_dir(args.out, names=FILES)
    implementations.register()
    start = time.monotonic()
    base = {"nodes": 3, "sigma": 5, "steps": long, "lr": 5e-4, "seed": 0, "precision": "float64"}
    symmetry = implementations.symmetry_table(samples=2000 if args.quick else 20000)
    cells = grid(long, short, replicas, args.quick)
    sens = settings(base, long, short, replicas, args.quick)
    quick_note = (
        "--quick: a few cells per part (N = 1, 3; σ = 5), T = 400/200, R = 16; T_x10 not run"
        if args.quick
        else None
    )
    text = table(symmetry, cells, long, short, replicas)
    print(text)
    summary = {
        **study_record("counterexamples.escape", argv, start),
        "steps": long,
        "short_steps": short,
        "replicas": replicas,
        "lr": base["lr"],
        "momentum": 0.9,
        "seed": 0,
        "blas": _blas(),
        "symmetry": symmetry,
        "cells": cells,
        "settings": sens,
        "claims": {"F-escape": escape_claim(cells, sens, base, replicas, quick_note)},
    }
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "escape.json"), summary)
        atomic_write_text(os.path.join(stage, "escape_table.md"), text + "\n")
        plot(cells, os.path.join(stage, "escape_steps.png"))
    return 0


def _blas():
    """NumPy's BLAS/LAPACK build (the float results of the "blas" and "lapack" rows depend on it)."""
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        return {
            k: {"name": deps[k].get("name"), "version": deps[k].get("version")} for k in ("blas", "lapack")
        }
    except (KeyError, TypeError, AttributeError):
        return None


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m counterexamples.escape"))
