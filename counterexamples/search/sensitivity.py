"""The study rerun with one setting changed, on a subset of instances (each claim's sensitivity).

Each variation gives, per instance of its subset, the ladder under the change and the study's
own ladder over the same decades (the baseline its verdict is compared with):

* ``eta_x0.1``: every η divided by 10 — decades 1, 2, 3 (the new k = 3 run; k = 1, 2 reused);
* ``T_x10``: ten times the span (T ×10) at decades 0, 1 (k = 2 would take ~60 000 steps a run);
* ``sigma``: every σ_i ×0.1 (noise nearer the signal's size), decades 0, 1, 2;
* ``seeds``: run seed 1 instead of 0, decades 0, 1, 2;
* ``precision_or_convention``: float32 instead of float64, decades 0, 1, 2.
"""

from __future__ import annotations

from .ladder import run_ladder
from .problem import SearchProblem

COMPRESSED = ("powersgd", "powersgd+")


def _restrict(ladder, decades, methods=None):
    return {
        m: [floors[k] for k in decades] for m, floors in ladder.items() if methods is None or m in methods
    }


def variations(instances, settings, subset, eta_subset) -> dict:
    """Run every variation.

    Parameters
    ----------
    instances : list of (label, problem_kw, options, ladder)
        The study's instances with their ladders (decades 0, 1, 2).
    settings : Settings
    subset, eta_subset : list of int
        Positions in ``instances`` that each variation (``eta_subset``: ``eta_x0.1``) reruns.

    Returns
    -------
    dict
        Variation -> {"what", "instances" (labels), "ladders", "baseline"}.
    """
    out = {}

    def add(name, what, positions, make):
        rows = [make(*instances[p][1:]) for p in positions]
        out[name] = {
            "what": what,
            "instances": [instances[p][0] for p in positions],
            "ladders": [r[0] for r in rows],
            "baseline": [r[1] for r in rows],
        }

    def eta(kw, options, ladder):
        extra = run_ladder(SearchProblem(**kw), options, settings, COMPRESSED, decades=(3,))
        new = {m: ladder[m][1:] + extra[m] for m in COMPRESSED}
        return new, _restrict(ladder, (0, 1, 2), COMPRESSED)

    def longer(kw, options, ladder):
        new = run_ladder(
            SearchProblem(**kw), options, settings, COMPRESSED, decades=(0, 1), span=10 * settings.span
        )
        return new, _restrict(ladder, (0, 1), COMPRESSED)

    def sigma(kw, options, ladder):
        kw = {**kw, "sigmas": [0.1 * s for s in kw["sigmas"]]}
        return run_ladder(SearchProblem(**kw), options, settings), ladder

    def seeds(kw, options, ladder):
        return run_ladder(SearchProblem(**kw), options, settings, seed=1), ladder

    def precision(kw, options, ladder):
        return run_ladder(SearchProblem(**kw), options, settings, dtype="float32"), ladder

    add("eta_x0.1", "η ×0.1: decades 1, 2, 3 (PowerSGD, PowerSGD+)", eta_subset, eta)
    add("T_x10", "T ×10 (span ×10) at decades 0, 1 (PowerSGD, PowerSGD+)", subset, longer)
    add("sigma", "σ_i ×0.1, decades 0, 1, 2", subset, sigma)
    add("seeds", "run seed 1 instead of 0, decades 0, 1, 2", subset, seeds)
    add("precision_or_convention", "float32 instead of float64, decades 0, 1, 2", subset, precision)
    return out
