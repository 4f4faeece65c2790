"""Set the study's numbers beside an independent re-derivation (code that does not share simsgd's path).

The other analyst's results live in ``claims/independent/results/thm4_*.json`` of the main
checkout; ``python -m bounds.independent --source DIR`` copies the numbers the study compares
(with each file's SHA-256) into ``bounds/data/independent.json``, which is committed, so the study
never reads another checkout. :func:`run` reruns their settings with :mod:`simsgd.check` and says,
per comparison, whether the two 95% intervals overlap.

Their ψ problems ("psiN1", "psiN3") are eq. (10) in a random basis with N = 1 or 3 nodes; "saturated"
X_0 is ⟨A, X_0⟩ = 2 (this package's default X_0); their intervals are two-sided 95%.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from simsgd.cli import Parser, check_out_dir, output_set
from simsgd.cli import run as run_cli
from simsgd.output import atomic_write_json

from . import rows
from .rows import Setting

__all__ = ["SNAPSHOT", "load", "extract", "run", "main"]

SNAPSHOT = os.path.join(os.path.dirname(__file__), "data", "independent.json")
Z_RATIO = 1.959963984540054 / 1.6448536269514722  # two-sided 95% half-width / one-sided 95%


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def extract(source: str) -> dict:
    """The numbers the study compares, from the other analyst's results folder ``source``."""
    files = {
        name: os.path.join(source, name)
        for name in ("thm4_rows.json", "thm4_excess.json", "thm4_verify.json")
    }
    data = {}
    for name, path in files.items():
        with open(path, encoding="utf-8") as f:
            data[name] = json.load(f)
    keep = ("sigma", "tau", "mu", "eta", "T", "R", "seed", "X0", "excess", "excess_share_of_lhs_plus")
    psi1 = [{k: r[k] for k in keep} for r in data["thm4_rows.json"]["rows"] if r["problem"] == "psiN1"]
    sweep = data["thm4_excess.json"]["psiN3"]
    tau = [
        dict(
            tau=r["tau"],
            eta=r["eta"],
            mu=r["mu"],
            sigma=r["sigma"],
            T=r["10T"]["T"],
            excess=r["10T"]["excess_tail"],
        )
        for r in sweep["rows"]
        if abs(r["eta"] - 6.25e-4) < 1e-9 and r["sigma"] == 5.0 and r["mu"] == 0.9
    ]
    verify = data["thm4_verify.json"]
    return dict(
        source=os.path.abspath(source),
        sha256={name: _sha(path) for name, path in files.items()},
        theorem4_rows=psi1,
        stationary_tau=dict(scope=sweep["scope"], rows=tau),
        long_row=dict(
            scope=verify["scope"],
            excess=verify["measured"]["excess"],
            share=verify["measured"]["share"],
            share_ci95=verify["measured"]["share_ci95"],
        ),
    )


def load() -> dict:
    with open(SNAPSHOT, encoding="utf-8") as f:
        return json.load(f)


def _interval95(est: dict) -> list:
    half = (est["upper"] - est["mean"]) * Z_RATIO
    return [est["mean"], est["mean"] - half, est["mean"] + half]


def _overlap(a: list, b: list) -> bool:
    return a[1] <= b[2] and b[1] <= a[2]


def run(seed: int, alpha: float, quick: bool = False) -> dict:
    """Their Theorem 4 rows rerun (random basis, their η, T, R), each with ``agrees``; the τ sweep
    is compared in :func:`compare_tau` once the tightness sweeps have run.
    """
    snap = load()
    their_rows = snap["theorem4_rows"][:1] if quick else snap["theorem4_rows"]
    found = []
    for r in their_rows:
        spec = {"family": "psi", "basis": "random", "noise_scale": r["sigma"]}
        s = Setting(
            f"indep-psiN1-s{r['sigma']:g}-tau{r['tau']}",
            "Theorem 4",
            spec,
            1,
            1,
            r["tau"],
            r["mu"],
            r["eta"],
            (r["T"],),
            64 if quick else r["R"],
        )
        (mine,) = rows.run(s, seed, alpha)
        ours = _interval95(mine["excess"])
        found.append(
            dict(
                file="claims/independent/results/thm4_rows.json",
                setting=s.to_dict(),
                theirs=r["excess"],
                ours=ours,
                agrees=_overlap(ours, r["excess"]),
                row=mine,
            )
        )
    long = snap["long_row"]
    base = next(
        (
            f["row"]
            for f in found
            if f["setting"]["restart_period"] == 1 and f["setting"]["spec"]["noise_scale"] == 2.0
        ),
        None,
    )
    predicted = None if base is None else rows.share_model(base, long["scope"]["T"])
    return dict(
        sha256=snap["sha256"],
        theorem4_rows=[{k: v for k, v in f.items() if k != "row"} for f in found],
        long_row=dict(
            file="claims/independent/results/thm4_verify.json",
            scope=long["scope"],
            theirs_share=long["share_ci95"],
            ours_predicted_share=predicted,
            agrees=None if predicted is None else long["share_ci95"][0] <= predicted <= long["share_ci95"][1],
        ),
    )


def compare_tau(sweeps: list) -> list:
    """Their stationary excess (ψ, N = 3, σ = 5, μ = 0.9, η = 6.25e-4, tail at 10T) beside the same
    points of :func:`bounds.tightness.run`'s sweep "τ (N = 3, μ = 0.9)".
    """
    snap = load()
    sweep = next((s for s in sweeps if s["name"].startswith("τ (N = 3")), None)
    if sweep is None:
        return []
    out = []
    for r in snap["stationary_tau"]["rows"]:
        p = next((p for p in sweep["points"] if p["value"] == r["tau"]), None)
        if p is None:
            continue
        ours = _interval95(p["excess_10T"])
        out.append(
            dict(
                file="claims/independent/results/thm4_excess.json (psiN3)",
                tau=r["tau"],
                T=r["T"],
                theirs=r["excess"],
                ours=ours,
                agrees=_overlap(ours, r["excess"]),
            )
        )
    return out


def main(argv=None) -> int:
    parser = Parser(prog="python -m bounds.independent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="the other analyst's results folder")
    parser.add_argument("--out", default=os.path.dirname(SNAPSHOT), help="folder for independent.json")
    args = parser.parse_args(argv)
    out = check_out_dir(args.out, names=("independent.json",))
    with output_set(out) as stage:
        atomic_write_json(os.path.join(stage, "independent.json"), extract(args.source))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="python -m bounds.independent"))
