"""The detectors' controls: inputs on which they must fire, and inputs on which they must not.

* Non-convergence (the shrink test of :mod:`~counterexamples.search.analysis`): Theorem 1's lock —
  ψ (eq. 10) in the aligned basis with ξ_0 ≡ 1 forced, N = 3 (odd, so P ≠ 0 and no QR(0)
  convention is involved) — must be found not to shrink for PowerSGD; the same start in a
  random basis (rounding frees the lock) must not.
* The floor ratio PowerSGD/PowerSGD+: on the locked ψ its interval must lie above 1; PowerSGD
  against itself on fresh seeds (an A/A comparison, :func:`aa_ratio`) must not.
"""

from __future__ import annotations

from simsgd.problems import Psi2x2

from .analysis import ratio, shrink
from .ladder import run_ladder

PSI = dict(noise_scale=5.0, lock_start=True)
PSI_RUN = dict(nodes=3, rank=1, momentum=0.9)
ROTATION_SEED = 1


def lock_controls(settings, nodes: int = 3, **extra) -> dict:
    """The shrink test and the ratio on ψ's lock (aligned basis) and on the same start rotated.

    Parameters
    ----------
    settings : Settings
    nodes : int
        N (3: no degenerate QR; 4: the QR(0) convention decides the aligned lock).
    **extra
        Passed to the runs (e.g. ``degenerate_qr="native"``).

    Returns
    -------
    dict
        Per input ("locked, aligned basis", "lock start, random basis"): the shrink verdicts of
        PowerSGD and PowerSGD+, the ratio at the smallest η and the floors; ``passed`` when the
        shrink test fires on the first for PowerSGD and on neither method of the second, and the
        ratio's interval lies above 1 on the first.
    """
    run = {**PSI_RUN, "nodes": nodes}
    inputs = {
        "locked, aligned basis": Psi2x2(**PSI, basis="aligned"),
        "lock start, random basis": Psi2x2(**PSI, basis="random", basis_seed=ROTATION_SEED),
    }
    out = {"problem": {**PSI, **run, **extra}}
    for name, problem in inputs.items():
        ladder = run_ladder(problem, run, settings, methods=("powersgd", "powersgd+"), **extra)
        out[name] = {
            "shrink": {m: shrink(floors)["verdict"] for m, floors in ladder.items()},
            "ratio_at_smallest_eta": ratio(ladder["powersgd"][-1], ladder["powersgd+"][-1]),
            "floors": {m: [f.floor for f in floors] for m, floors in ladder.items()},
            "max_error_norm": {m: [float(f.max_error.max()) for f in floors] for m, floors in ladder.items()},
        }
    locked, rotated = out["locked, aligned basis"], out["lock start, random basis"]
    ratio_fires = (locked["ratio_at_smallest_eta"].get("ci95") or [0])[0] > 1
    out["passed"] = (
        locked["shrink"]["powersgd"] == "does not shrink"
        and "does not shrink" not in rotated["shrink"].values()
        and ratio_fires
    )
    return out


def aa_ratio(base, fresh) -> dict:
    """PowerSGD's floor on the study's seeds over the same on fresh seeds, at each η (an A/A
    comparison: its interval should hold 1).
    """
    rows = [ratio(a, b) for a, b in zip(base, fresh)]
    holds = [r["ratio"] is not None and r["ci95"][0] <= 1 <= (r["ci95"][1] or 0) for r in rows]
    return {"ratios": rows, "holds_1": holds}
