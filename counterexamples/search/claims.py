"""The study's claims (F-floor, F-noconv, F-search-best) in the form the claims ledger reads.

Each claim: ``verdict``, ``statement`` (one sentence with the numbers), ``value``, ``scope``,
``control`` (the input that makes its detector fire, and that it does; one on which it must not),
``sensitivity`` (the verdict under each change of :mod:`~counterexamples.search.sensitivity`,
against the study's own verdict on the same instances) and ``independent``. The decision rules
are those of :mod:`~counterexamples.search.verdicts`.
"""

from __future__ import annotations

import numpy as np

from .analysis import SHRINK_SLOPE
from .controls import aa_ratio
from .verdicts import best_verdict, floor_verdict, noconv_verdict


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def _sensitivity(variations: dict, rule, pick=None) -> dict:
    """Per variation: the rule's verdict on its ladders and on the baseline, and whether it changed."""
    out = {}
    for name, var in variations.items():
        ladders, baseline = var["ladders"], var["baseline"]
        if pick is not None:
            ladders, baseline = pick(var, ladders), pick(var, baseline)
        if not ladders:
            out[name] = {"verdict": "open", "value": None, "changed": None, "what": var["what"]}
            continue
        new, base = rule(ladders), rule(baseline)
        out[name] = {
            "verdict": new["verdict"],
            "value": new["value"],
            "baseline": {"verdict": base["verdict"], "value": base["value"]},
            "changed": new["verdict"] != base["verdict"],
            "what": var["what"],
            "instances": var["instances"],
        }
    return out


def floor_claim(ladders, scope, controls, variations, independent) -> dict:
    """F-floor: PowerSGD's floor over PowerSGD+'s at the smallest η, over the random instances."""
    main = floor_verdict(ladders)
    by_decade = {k: floor_verdict(ladders, k)["value"] for k in range(len(ladders[0]["powersgd"]))}
    d, last = main["value"], len(by_decade) - 1
    seeds = variations.get("seeds")
    aa = None
    if seeds and seeds["ladders"]:
        rows = [aa_ratio(b["powersgd"], v["powersgd"]) for b, v in zip(seeds["baseline"], seeds["ladders"])]
        aa = {
            "instances": seeds["instances"],
            "holds_1_at_smallest_eta": sum(r["holds_1"][-1] for r in rows),
            "ratios_at_smallest_eta": [r["ratios"][-1] for r in rows],
        }
    locked = controls["locked, aligned basis"]["ratio_at_smallest_eta"]
    lead = {
        "holds in scope": "Restarts lower the floor",
        "fails": "Restarts raise the floor",
        "open": "Whether restarts lower the floor is undecided",
    }[main["verdict"]]
    statement = (
        f"{lead}: at η = η_max/{10**last:g} PowerSGD's stationary E||∇f||² is a median "
        f"{_fmt(d.get('median'))}× PowerSGD+'s (95% CI {_fmt(d.get('median_ci95', [None])[0])}–"
        f"{_fmt(d.get('median_ci95', [None, None])[1])}; 10–90% {_fmt(d.get('p10_p90', [None])[0])}–"
        f"{_fmt(d.get('p10_p90', [None, None])[1])}) over {d['n']} random instances, {d.get('above_1', 0)} "
        f"with their own interval above 1 and {d.get('below_1', 0)} below; at η_max it is "
        + ", at η_max/10 ".join(_fmt(by_decade[k].get("median")) for k in range(last))
        + "×."
    )
    return {
        "verdict": main["verdict"],
        "statement": statement,
        "value": {"smallest_eta": d, "by_decade": by_decade},
        "scope": scope,
        "control": {
            "input": "fires: Theorem 1's lock (ψ, aligned basis, ξ_0 ≡ 1, N = 3), PowerSGD against "
            "PowerSGD+; "
            "must not fire: PowerSGD against itself on fresh seeds (A/A) on the sensitivity subset",
            "result": {
                "locked_ratio_at_smallest_eta": locked,
                "fires": (locked.get("ci95") or [0])[0] > 1,
                "aa": aa,
            },
        },
        "sensitivity": _sensitivity(variations, floor_verdict),
        "independent": independent,
    }


def noconv_claim(ladders, labels, scope, controls, variations, independent) -> dict:
    """F-noconv: whether any method's floor fails to shrink with η in the searched space."""
    main = noconv_verdict(ladders, controls["passed"], labels)
    v = main["value"]
    last = f"η_max/{10 ** max(scope['T']):g}"  # the smallest η of the ladder
    needed = 10 ** (max(scope["T"]) * SHRINK_SLOPE)
    factors = v["shrink_factors"].get("powersgd", [])
    counts = "; ".join(
        f"{m}: " + ", ".join(f"{c} {verdict}" for verdict, c in row.items() if c)
        for m, row in v["counts"].items()
    )
    if main["verdict"] == "fails":
        hit = v["not_shrinking"][0]
        statement = (
            f"Non-convergence found: on instance {hit['instance']} {hit['method']}'s floor falls only "
            f"{_fmt(hit.get('factor'))}× (needed {hit['needed']:.3g}×) from η_max to {last} "
            f"({len(v['not_shrinking'])} such tests in all)."
        )
    else:
        statement = (
            f"No non-convergence found within {v['instances']} random instances of the family (× PowerSGD, "
            f"PowerSGD+, MSGD): from η_max to {last} PowerSGD's floor falls by a median "
            f"{_fmt(float(np.median(factors)) if factors else None)}× where it reached a floor there "
            f"(smallest {_fmt(min(factors) if factors else None)}×; non-convergence would be "
            f"< {needed:.3g}×) — {counts}"
            + (
                f"; so it fails this way on < {v['fraction_bound_95']:.2g} of the family (95%)."
                if v["fraction_bound_95"]
                else "."
            )
        )
    locked, rotated = controls["locked, aligned basis"], controls["lock start, random basis"]
    return {
        "verdict": main["verdict"],
        "statement": statement,
        "value": v,
        "scope": scope,
        "control": {
            "input": "fires: Theorem 1's lock (ψ, aligned basis, ξ_0 ≡ 1, N = 3, PowerSGD); must not "
            "fire: the "
            "same start in a random basis (rounding frees the lock)",
            "result": {
                "locked_aligned": locked["shrink"],
                "lock_start_random_basis": rotated["shrink"],
                "passed": controls["passed"],
            },
        },
        "sensitivity": _sensitivity(variations, lambda lads: noconv_verdict(lads)),
        "independent": independent,
    }


def best_claim(label, instance, rows, scope, controls, variations, independent) -> dict:
    """F-search-best: the instance with the largest lower 95% bound on the ratio at the smallest η,
    and its ratio under perturbations (:mod:`~counterexamples.search.robustness`).
    """
    main = best_verdict(rows)
    r = main["value"]["ratio"]
    rot = [x["ratio"] for n, x in r.items() if n.startswith("rotation") and x["ratio"] is not None]
    kw, options = instance
    desc = (
        f"{kw['m']}×{kw['n']}, k = {kw['k']}, N = {options['nodes']}, r = {options['rank']}, "
        f"μ = {options['momentum']:.2f}, "
        f"σ_i = {min(kw['sigmas']):.3g}–{max(kw['sigmas']):.3g}, κ = {kw['kink']:.2f}, {kw['noise']} noise"
    )
    statement = (
        f"The most extreme instance ({label}: {desc}) has PowerSGD's floor at "
        f"η_max/{10 ** max(scope['T']):g} "
        f"{_fmt(r['selection']['ratio'])}× PowerSGD+'s on the search's seeds, "
        f"{_fmt(r['fresh seeds']['ratio'])}× on fresh "
        f"seeds, {_fmt(r['X0 perturbed']['ratio'])}× with X_0 moved by 1e-3·||X_0||"
        + (
            f", and {_fmt(min(rot))}–{_fmt(max(rot))}× over {len(rot)} random rotations; "
            if rot
            else " (no rotations run); "
        )
        + f"the interval lies above 1 in {main['value']['rows_above_1']} of {len(r)} rows."
    )
    aa = aa_ratio(rows["selection"]["powersgd"], rows["fresh seeds"]["powersgd"])
    locked = controls["locked, aligned basis"]["ratio_at_smallest_eta"]
    return {
        "verdict": main["verdict"],
        "statement": statement,
        "value": {"instance": label, "problem": kw, "run": options, **main["value"]},
        "scope": scope,
        "control": {
            "input": "fires: Theorem 1's lock (ψ, aligned, N = 3), PowerSGD against PowerSGD+; "
            "must not fire: "
            "PowerSGD on this instance against itself on fresh seeds (A/A)",
            "result": {"locked_ratio_at_smallest_eta": locked, "aa_at_each_eta": aa},
        },
        "sensitivity": _sensitivity(
            variations,
            lambda lads: best_verdict({"selection": lads[0]}),
            pick=lambda var, lads: [lad for name, lad in zip(var["instances"], lads) if name == label],
        ),
        "independent": independent,
    }
