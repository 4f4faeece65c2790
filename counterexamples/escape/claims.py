"""Claim "F-escape": whether a float run leaves Theorem 1's lock depends on the implementation.

The checked proposition, per setting (paper basis, N = 3 unless changed): the project's default
implementation keeps every run in the lock (no run moves ⟨A, X⟩ by 1e-3 and P̃ never leaves C)
while LAPACK's Householder QR lets every run escape — "holds in scope"; "fails" otherwise.
"""

from __future__ import annotations

from .._claim_fields import claim, independent, sensitivity

__all__ = ["proposition", "escape_claim", "INDEPENDENT"]

INDEPENDENT = {
    # claims/independent/results/t3_escape.json: paper basis, lock forced, MSGD μ = 0.9,
    # η = 5e-4, T = 2000, R = 32, QR(0) = previous; "X1e-3" medians (|⟨A, X_t − X_0⟩| > 1e-3)
    "file": "t3_escape.json",
    "normalize_float64_float32_never": "32/32 never escaped in every cell N = 1..5, σ = 1, 5, 25, 125",
    "householder_float64_median_x1e-3": {
        1: [15, 18, 41, 126],
        3: [9, 14, 26, 64],
        5: [8, 12, 23, 51],
        2: [3, 7, 5, 6],
        4: [5, 6, 7, 9],
    },
    "householder_float32_median_x1e-3": {1: [7, 14, 32, 98], 3: [6, 9, 19, 49], 5: [5, 8, 15, 36]},
    "sigmas": [1, 5, 25, 125],
}
FACTOR = 1.5
"""Agreement of an escape median with the independent one: within this factor."""


def _escaped(cell, criterion):
    return cell[criterion]["escaped"] if cell[criterion] else 0


def proposition(pair) -> str:
    """The verdict on one setting's [default, lapack] cells."""
    default, lapack = pair
    kept = _escaped(default, "x1e-3") == 0 and _escaped(default, "subspace") == 0
    left = _escaped(lapack, "x1e-3") == lapack["replicas"]
    return "holds in scope" if kept and left else "fails"


def _median(cell, criterion="x1e-3"):
    q = cell[criterion]["quartiles"] if cell[criterion] else None
    return None if q is None else q[1]


def _select(cells, **match):
    return [c for c in cells if all(c.get(k) == v for k, v in match.items())]


def _medians(cells, **match):
    """{N: [median per σ]} of the x1e-3 escape step."""
    out = {}
    for c in sorted(_select(cells, **match), key=lambda c: (c["nodes"], c["sigma"])):
        out.setdefault(c["nodes"], []).append(_median(c))
    return out


def _never(cells, **match):
    rows = _select(cells, **match)
    return {
        "cells": len(rows),
        "runs": sum(c["replicas"] for c in rows),
        "escaped_x1e-3": sum(_escaped(c, "x1e-3") for c in rows),
        "escaped_subspace": sum(_escaped(c, "subspace") for c in rows),
    }


def _error_growth(cells):
    return [
        {
            "N": c["nodes"],
            "sigma": c["sigma"],
            "T": c["steps"],
            "max_error_norm_sq": c["max_error_norm_sq"],
            "max_by_window_0_T/10_T/2_T": c["max_error_norm_sq_windows"],
            "mean_by_window_0_T/10_T/2_T": c["mean_error_norm_sq_windows"],
            "last_over_middle": c["mean_error_norm_sq_windows"][2] / c["mean_error_norm_sq_windows"][1],
        }
        for c in _select(cells, part="error")
    ]


def _independent(cells):
    ours = _medians(cells, part="paper", implementation="lapack", precision="float64")
    never = _never(cells, part="paper", implementation="default", precision="float64")
    theirs = INDEPENDENT["householder_float64_median_x1e-3"]
    sigmas = sorted({c["sigma"] for c in _select(cells, part="paper", implementation="lapack")})
    ratios = {}
    for n, meds in ours.items():
        if n % 2 == 0 or len(sigmas) != 4:
            continue
        ratios[n] = [None if m is None else m / t for m, t in zip(meds, theirs[n])]
    flat = [r for rs in ratios.values() for r in rs]
    agrees = (
        never["escaped_x1e-3"] == 0
        and bool(flat)
        and all(r is not None and 1 / FACTOR <= r <= FACTOR for r in flat)
    )
    return independent(
        INDEPENDENT["file"],
        {
            "theirs": {k: v for k, v in INDEPENDENT.items() if k != "file"},
            "ours": {
                "default_float64_never": never,
                "lapack_float64_median_x1e-3": ours,
                "ratio_odd_N": ratios,
            },
        },
        agrees,
        f"float64, paper basis, same criterion (|⟨A, X_t − X_0⟩| > 1e-3), other draws: our default "
        f"(closed-form P/β, symmetric like their P/||P||) never escapes, as theirs; our LAPACK medians "
        f"for odd N within a factor {FACTOR} of their Householder's at every σ. Not compared: even N (their "
        "zero test lacks our 'Q is rounding noise' rule, so their even-N escape is flat in σ) and "
        "float32 (their Householder is not this build's LAPACK sgeqrf, which keeps the symmetry).",
    )


def escape_claim(cells, settings, base, replicas, quick_note=None) -> dict:
    """The "F-escape" entry from the cells of the map and the sensitivity settings."""
    pair = [
        _select(
            cells,
            part="paper",
            implementation=impl,
            precision="float64",
            nodes=base["nodes"],
            sigma=base["sigma"],
        )[0]
        for impl in ("default", "lapack")
    ]
    verdict = proposition(pair)
    never = {
        f"{impl} {precision}": _never(cells, part="paper", implementation=impl, precision=precision)
        for impl, precision in (("default", "float64"), ("gram-schmidt", "float64"), ("default", "float32"))
    }
    lapack, blas = (
        _medians(cells, part="paper", implementation=i, precision="float64") for i in ("lapack", "blas")
    )
    random = _medians(cells, part="random", precision="float64")
    f32 = {
        impl: _never(cells, part="paper", implementation=impl, precision="float32")
        for impl in ("lapack", "blas")
    }
    errors = _error_growth(cells)
    ranks = {c["rank"]: _median(c) for c in _select(cells, part="rank", basis="random", nodes=3, sigma=5)}
    bf16 = [
        {
            "basis": c["basis"],
            "N": c["nodes"],
            "x1e-1": _median(c, "x1e-1"),
            "subspace_escape": _median(c, "subspace"),
            "flagged": c["flagged_share"],
        }
        for c in _select(cells, part="bfloat16")
    ]
    aligned = _never(cells, part="aligned")
    horizon = errors[0]["T"] if errors else 0
    last = [e["last_over_middle"] for e in errors] or [float("nan")]
    ratios = (min(last), max(last))
    statement = (
        f"Whether a float run leaves Claim 1's lock depends on the implementation: in the paper basis the "
        f"project's default (entry-by-entry product, closed-form P/β, QR(0) = previous) and Gram–Schmidt "
        f"never escape in float64 ({never['default float64']['escaped_x1e-3']}/"
        f"{never['default float64']['runs']} and {never['gram-schmidt float64']['escaped_x1e-3']}/"
        f"{never['gram-schmidt float64']['runs']} runs, N ≤ 5, σ ≤ 125, "
        f"T = {base['steps']}), while LAPACK's Householder QR (x1e-3 median by σ = 1/5/25/125: N = 1 "
        f"{lapack.get(1)}, N = 3 {lapack.get(3)}, N = 5 {lapack.get(5)}) and np.matmul (N = 3 {blas.get(3)}) "
        f"break the swap symmetry that keeps P̃ = C to the last bit and always escape; in float32 this "
        f"build's LAPACK and sgemm keep it ({f32['lapack']['escaped_x1e-3']}/{f32['lapack']['runs']}, "
        f"{f32['blas']['escaped_x1e-3']}/{f32['blas']['runs']} escaped); in general position (random basis) "
        f"every run escapes, later for larger σ (N = 1: {random.get(1)}), also at r = 1, 2, 4 on the 12×10 "
        f"counterexample (N = 3, σ = 5, x1e-3 median by r: {ranks}); ē is bounded in general position "
        f"over the horizon tried: the mean of ||ē_t||² over the last half of {horizon} steps is "
        f"{ratios[0]:.3g}–{ratios[1]:.3g}× its mean over "
        "(T/10, T/2] (inside the lock it grows like t²)."
    )
    control_rows = _select(
        cells,
        part="random",
        implementation="default",
        precision="float64",
        nodes=base["nodes"],
        sigma=base["sigma"],
    )
    return claim(
        verdict=verdict,
        statement=statement,
        value={
            "paper_never": never,
            "paper_float64_lapack_median_x1e-3": lapack,
            "paper_float64_blas_median_x1e-3": blas,
            "paper_float64_native_even_N_median_x1e-3": _medians(
                cells, part="paper", implementation="native"
            ),
            "paper_float32": f32,
            "random_float64_median_x1e-3": random,
            "random_float32_median_x1e-3": _medians(cells, part="random", precision="float32"),
            "aligned": aligned,
            "rank_random_basis_median_x1e-3": ranks,
            "bfloat16": bf16,
            "error_memory": errors,
            "sigmas": sorted({c["sigma"] for c in _select(cells, part="paper")}),
        },
        scope={
            "problem": "psi (eq. 10), lock forced (xi_0 = 1); 12x10 general counterexample for r > 1",
            "N": base["nodes"],
            "basis": "paper",
            "sigma": base["sigma"],
            "eta": base["lr"],
            "T": base["steps"],
            "R": replicas,
            "precision": base["precision"],
            "qr0_convention": "previous",
            "seed": base["seed"],
        },
        control={
            "input": "the aligned basis (exact zeros; the default and LAPACK) and a random basis (default)",
            "result": f"aligned: {aligned['escaped_x1e-3']}/{aligned['runs']} escaped; random basis N = "
            f"{base['nodes']}, σ = {base['sigma']}: "
            + (
                f"{_escaped(control_rows[0], 'x1e-3')}/{control_rows[0]['replicas']} escaped"
                if control_rows
                else "not run"
            ),
        },
        sensitivity={
            key: sensitivity("open", value, verdict)
            if isinstance(value, str)
            else sensitivity(
                proposition(value),
                {
                    c["implementation"]: {
                        "x1e-3": c["x1e-3"],
                        "subspace": c["subspace"],
                        "steps": c["steps"],
                        "lr": c["lr"],
                        "sigma": c["sigma"],
                        "seed": c["seed"],
                        "precision": c["precision"],
                    }
                    for c in value
                },
                verdict,
            )
            for key, value in settings.items()
        },
        independent=_independent(cells),
        quick_note=quick_note,
    )
