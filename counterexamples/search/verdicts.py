"""The three claims' decision rules, on any set of ladders (the study's, or a sensitivity row's).

* **F-floor** — restarts lower the floor: the median over instances of floor(PowerSGD)/floor(PowerSGD+)
  at the smallest η, with a 95% bootstrap interval over instances: "holds in scope" when the
  interval lies above 1, "fails" when below, "open" otherwise.
* **F-noconv** — no method's floor fails to shrink with η: "fails" when the shrink test
  (:mod:`~counterexamples.search.analysis`) says "does not shrink" for any method on any instance;
  "open" when the controls did not pass or more than :data:`MAX_UNDECIDED` of the tests are
  undecided; "holds in scope" otherwise.
* **F-search-best** — the most extreme instance's effect survives perturbation: "holds" when the
  ratio's interval at the smallest η lies above 1 in every row, "fails" when it lies below 1 on
  fresh seeds, "open" otherwise.
"""

from __future__ import annotations

from collections import Counter

from .analysis import VERDICTS, distribution, ratio, shrink

MAX_UNDECIDED = 0.1


def floor_verdict(ladders, decade: int = -1) -> dict:
    """F-floor's rule on ``ladders`` (method -> [Floor]) at ``ladders[i][m][decade]``."""
    dist = distribution([ratio(lad["powersgd"][decade], lad["powersgd+"][decade]) for lad in ladders])
    if not dist["n"]:
        return {"verdict": "open", "value": dist}
    low, high = dist["median_ci95"]
    verdict = "holds in scope" if low > 1 else "fails" if high < 1 else "open"
    return {"verdict": verdict, "value": dist}


def noconv_verdict(ladders, controls_passed: bool = True, labels=None) -> dict:
    """F-noconv's rule: the shrink verdicts of every method on every ladder."""
    labels = list(range(len(ladders))) if labels is None else labels
    tests = [(label, m, shrink(floors)) for label, lad in zip(labels, ladders) for m, floors in lad.items()]
    counts = {m: Counter() for _, m, _ in tests}
    for _, m, test in tests:
        counts[m][test["verdict"]] += 1
    found = [
        {"instance": label, "method": m, **test}
        for label, m, test in tests
        if test["verdict"] == "does not shrink"
    ]
    undecided = sum(c["undecided"] for c in counts.values())
    if not controls_passed:
        verdict = "open"
    elif found:
        verdict = "fails"
    elif undecided > MAX_UNDECIDED * max(len(tests), 1):
        verdict = "open"
    else:
        verdict = "holds in scope"
    value = {
        "instances": len(ladders),
        "counts": {m: {v: c[v] for v in VERDICTS} for m, c in counts.items()},
        "not_shrinking": found,
        "fraction_bound_95": 3 / len(ladders) if ladders and not found else None,
        "shrink_factors": {  # where the run at the smallest η reached a floor (not "decreasing")
            m: sorted(
                t["factor"]
                for _, mm, t in tests
                if mm == m and "factor" in t and t["verdict"] != "decreasing"
            )
            for m in counts
        },
    }
    return {"verdict": verdict, "value": value}


def best_verdict(rows: dict, decade: int = -1) -> dict:
    """F-search-best's rule on ``rows`` (row name -> ladder)."""
    ratios = {name: ratio(lad["powersgd"][decade], lad["powersgd+"][decade]) for name, lad in rows.items()}
    above = [n for n, r in ratios.items() if r["ratio"] is not None and r["ci95"][0] > 1]
    fresh = ratios.get("fresh seeds", {})
    if len(above) == len(ratios):
        verdict = "holds"
    elif fresh.get("ratio") is not None and fresh["ci95"][1] is not None and fresh["ci95"][1] < 1:
        verdict = "fails"
    else:
        verdict = "open"
    shrinks = {name: {m: shrink(f)["verdict"] for m, f in lad.items()} for name, lad in rows.items()}
    return {"verdict": verdict, "value": {"ratio": ratios, "rows_above_1": len(above), "shrink": shrinks}}
