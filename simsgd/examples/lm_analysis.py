"""Tables and verdicts of the LM comparison, from its rows (``lm.csv``); no torch needed.

* :func:`final_table`: final validation loss per method (mean, Student-t 95% interval,
  range over seeds), floats per node and step, and how much the loss still fell over the
  last :data:`FLAT_WINDOW` of training (the flattening criterion, :func:`flattening`).
* :func:`tost_table`: each method's final loss minus PowerSGD's (same r) and minus the
  all-reduce's, paired by seed, tested for equivalence within ±``margin`` by
  :func:`simsgd.stats.tost` (Bonferroni over the table's comparisons); the verdict is
  written here, by the code, never by hand.
* :func:`target_table`: steps, training seconds and floats each method needs to reach the
  target loss (:func:`target_loss`), per seed, with Student-t 95% intervals.
* :func:`claims`: the two findings the claims ledger reads (``lm_claims.json``), from the same
  verdicts.
"""

import math

import numpy as np

from ..stats import student_t_quantile, tost

__all__ = [
    "curves_from_rows",
    "label",
    "final_table",
    "flattening",
    "tost_results",
    "tost_table",
    "target_loss",
    "target_table",
    "claims",
    "FLAT_WINDOW",
    "FAMILY_ALPHA",
]

FLAT_WINDOW = 0.2  # the last fifth of training
FAMILY_ALPHA = 0.05  # family-wise level of the equivalence tests of one table


def label(method, rank, tau):
    """The run's name in tables and legends, e.g. ``PowerSGD+ r=4 τ=10``."""
    if method == "all-reduce":
        return method
    return f"{method} r={rank}" + (f" τ={tau}" if method in ("PowerSGD+", "GaLore-style") else "")


def curves_from_rows(rows):
    """{(method, rank, τ): {seed: [(step, loss, floats, seconds), ...]}} from ``lm.csv``'s rows.

    Parameters
    ----------
    rows : iterable of sequences
        (method, rank, tau, seed, step, validation_loss, floats_per_node, seconds), as text
        or numbers.
    """
    curves = {}
    for method, rank, tau, seed, step, loss, floats, seconds in rows:
        key = (method, int(rank), int(tau))
        point = (int(step), float(loss), int(floats), float(seconds))
        curves.setdefault(key, {}).setdefault(int(seed), []).append(point)
    return curves


def _t_interval(values):
    """Mean and the half-width of the Student-t 95% interval (nan for one value)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float(values.mean()), math.nan
    t = student_t_quantile(0.975, values.size - 1)
    return float(values.mean()), float(t * values.std(ddof=1) / math.sqrt(values.size))


def _pm(mean, half, digits=4):
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")


def flattening(curves, tolerance):
    """How much each method's mean validation loss fell over the last ``FLAT_WINDOW`` of training.

    Parameters
    ----------
    curves : dict
        As :func:`curves_from_rows`.
    tolerance : float
        The loss has flattened when it fell by less than this.

    Returns
    -------
    dict
        {key: (drop, flattened)}: drop = mean loss at the last evaluation at or before step
        (1 − FLAT_WINDOW)·S minus the mean final loss (positive: still falling).
    """
    out = {}
    for key, runs in curves.items():
        steps = [s for s, *_ in next(iter(runs.values()))]
        cut = max(s for s in steps if s <= (1 - FLAT_WINDOW) * steps[-1])
        at = steps.index(cut)
        drop = float(np.mean([c[at][1] - c[-1][1] for c in runs.values()]))
        out[key] = (drop, drop < tolerance)
    return out


def final_table(curves, header, tolerance):
    """Markdown: final validation loss per method, floats, and the flattening criterion."""
    flat = flattening(curves, tolerance)
    numel = None
    lines = [
        header,
        "",
        f"Flattened: the mean validation loss fell by less than {tolerance:g} nats/byte over the "
        f"last {FLAT_WINDOW:.0%} of the steps "
        + (
            "— met by every method."
            if all(ok for _, ok in flat.values())
            else "— **not met** by: " + ", ".join(label(*k) for k, (_, ok) in flat.items() if not ok) + "."
        ),
        "",
        "| method | seeds | final validation loss | [min, max] | fall over the last "
        f"{FLAT_WINDOW:.0%} | floats/node/step | × all-reduce | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, runs in curves.items():
        finals = [c[-1][1] for c in runs.values()]
        floats = float(np.mean([c[-1][2] / c[-1][0] for c in runs.values()]))
        if key[0] == "all-reduce":
            numel = floats
        seconds = float(np.mean([c[-1][3] for c in runs.values()]))
        ratio = f"{floats / numel:.3f}" if numel else "–"
        lines.append(
            f"| {label(*key)} | {len(finals)} | {_pm(*_t_interval(finals))} | "
            f"[{min(finals):.4f}, {max(finals):.4f}] | {flat[key][0]:+.4f} | {floats:,.0f} | {ratio} | "
            f"{'–' if math.isnan(seconds) else f'{seconds:.1f}'} |"
        )
    return "\n".join(lines) + "\n"


def _finals(curves):
    return {key: {seed: c[-1][1] for seed, c in runs.items()} for key, runs in curves.items()}


def _comparisons(curves):
    """[(key, reference key, reference name)] of the equivalence table."""
    keys, out = list(curves), []
    for key in keys:
        method, rank, _ = key
        if method == "all-reduce":
            continue
        if method != "PowerSGD" and ("PowerSGD", rank, 0) in curves:
            out.append((key, ("PowerSGD", rank, 0), "PowerSGD"))
        if ("all-reduce", 0, 0) in curves:
            out.append((key, ("all-reduce", 0, 0), "all-reduce"))
    return out


def tost_results(curves, margin):
    """Every comparison's :class:`~simsgd.stats.Equivalence` (or None with fewer than 2 pairs).

    Parameters
    ----------
    curves : dict
        As :func:`curves_from_rows`.
    margin : float
        m in nats/byte, fixed before the run.

    Returns
    -------
    list of (key, reference name, Equivalence or None, alpha per test)
        Each test at level FAMILY_ALPHA / k (Bonferroni over the k comparisons).
    """
    finals, comparisons = _finals(curves), _comparisons(curves)
    alpha = FAMILY_ALPHA / max(1, len(comparisons))
    out = []
    for key, ref, name in comparisons:
        seeds = sorted(set(finals[key]) & set(finals[ref]))
        diffs = [finals[key][s] - finals[ref][s] for s in seeds]
        out.append((key, name, tost(diffs, margin, alpha) if len(diffs) >= 2 else None, alpha))
    return out


def tost_table(curves, margin):
    """Markdown: the equivalence verdicts of :func:`tost_results`."""
    results = tost_results(curves, margin)
    k = len(results)
    alpha = results[0][3] if results else FAMILY_ALPHA
    lines = [
        f"Final validation loss minus the reference's, paired by seed (same initial weights and "
        f"batches), in nats/byte. Equivalence margin ±{margin:g} (fixed in the code before the run). "
        f"Two one-sided t tests (TOST), each at α = {FAMILY_ALPHA:g}/{k} = {alpha:.4g} (Bonferroni over "
        f"the {k} comparisons); interval: the matching {1 - 2 * alpha:.2%} Student-t interval of the "
        "mean difference. Verdicts: *equivalent* (interval inside ±m), *different* (interval wholly "
        "outside ±m), *undecided* (it straddles ±m).",
        "",
        "| method | reference | pairs | mean difference | interval | TOST p | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, name, result, _ in results:
        if result is None:
            lines.append(f"| {label(*key)} | {name} | <2 | – | – | – | undecided: fewer than 2 pairs |")
            continue
        lines.append(
            f"| {label(*key)} | {name} | {result.n} | {result.mean:+.4f} | "
            f"[{result.lower:+.4f}, {result.upper:+.4f}] | {result.p_value:.2g} | {result.text} |"
        )
    return "\n".join(lines) + "\n"


def target_loss(curves, margin):
    """The target of :func:`target_table` and what it is: PowerSGD's mean final loss + ``margin``
    (the smallest rank's; the all-reduce's where no PowerSGD ran).
    """
    finals = _finals(curves)
    refs = sorted(k for k in curves if k[0] == "PowerSGD") or [("all-reduce", 0, 0)]
    ref = refs[0]
    value = float(np.mean(list(finals[ref].values()))) + margin
    return value, f"{label(*ref)}'s mean final validation loss + {margin:g} = {value:.4f} nats/byte"


def target_table(curves, margin):
    """Markdown: steps, training seconds and floats per node to reach :func:`target_loss`."""
    target, what = target_loss(curves, margin)
    lines = [
        f"To the target loss ({what}): the first evaluation at or below it, per seed; mean ± "
        "Student-t 95% half-width over the seeds that reach it. Seconds: training time on this "
        "machine's loopback (evaluations excluded; the run's provenance has its load).",
        "",
        "| method | reached | steps | seconds | floats/node (millions) |",
        "|---|---|---|---|---|",
    ]
    for key, runs in curves.items():
        hits = [next((p for p in c if p[1] <= target), None) for c in runs.values()]
        got = [p for p in hits if p is not None]
        if not got:
            lines.append(f"| {label(*key)} | 0/{len(hits)} | – | – | – |")
            continue
        steps = _pm(*_t_interval([p[0] for p in got]), 0)
        seconds = _pm(*_t_interval([p[3] for p in got]), 1)
        floats = _pm(*_t_interval([p[2] / 1e6 for p in got]), 1)
        lines.append(f"| {label(*key)} | {len(got)}/{len(hits)} | {steps} | {seconds} | {floats} |")
    return "\n".join(lines) + "\n"


def _verdict_of(results):
    """The verdict of a set of comparisons: holds (all equivalent), fails (one different) or open."""
    kinds = [r.verdict if r is not None else "undecided" for _, _, r, _ in results]
    return (
        "holds"
        if kinds and all(k == "equivalent" for k in kinds)
        else "fails"
        if "different" in kinds
        else "open"
    )


def claims(curves, margin, tolerance):
    """The claims-ledger records of the comparison: "LM-plus" (PowerSGD+ trains as well as PowerSGD,
    within ±``margin``) and "LM-galore" (the GaLore-style row, without error feedback, is worse).

    A verdict drawn before the loss has flattened (:func:`flattening` with ``tolerance``) is
    stated for the horizon trained ("holds in scope"), never for training to convergence.
    """
    results = tost_results(curves, margin)
    flat = flattening(curves, tolerance)
    pairs = len(next(iter(curves.values())))
    steps = next(iter(next(iter(curves.values())).values()))[-1][0]
    scope = dict(
        model="byte-level transformer LM (simsgd.examples.bytelm)",
        N="world size of the run",
        seeds=pairs,
        steps=steps,
        margin=margin,
        flattened=all(f for _, f in flat.values()),
    )

    def one(selected, worse=False):
        verdict = _verdict_of(selected)
        if worse:  # "worse by more than m": every comparison different with a positive mean
            verdict = (
                "holds"
                if all(r is not None and r.verdict == "different" and r.mean > 0 for _, _, r, _ in selected)
                else "open"
            )
        if verdict == "holds" and not scope["flattened"]:
            verdict = "holds in scope"

        def result(r):
            return "no pairs" if r is None else f"{r.mean:+.4f} [{r.lower:+.4f}, {r.upper:+.4f}] {r.verdict}"

        text = "; ".join(f"{label(*key)} − {name}: {result(r)}" for key, name, r, _ in selected)
        falling = "" if scope["flattened"] else " (the loss still falling)"
        return dict(
            verdict=verdict,
            statement=f"{pairs} paired seeds, {steps} steps{falling}, margin ±{margin:g} nats/byte: {text}",
            value={label(*k): None if r is None else r.mean for k, _, r, _ in selected},
            scope=scope,
            control=dict(
                input="a difference shifted past the margin",
                result="TOST says different (tests/test_stats.py)",
            ),
        )

    plus = [r for r in results if r[0][0] == "PowerSGD+" and r[1] == "PowerSGD"]
    galore = [r for r in results if r[0][0] == "GaLore-style" and r[1] == "PowerSGD"]
    return {"LM-plus": one(plus), "LM-galore": one(galore, worse=True)}
