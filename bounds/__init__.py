"""Empirical checks of the paper's analysis that can fail: Theorem 4, Corollary 1, Lemmas 3–4.

``python -m bounds [--quick] [--seed S] [--out DIR]`` writes ``DIR/REPORT.md`` and
``DIR/report.json`` (default ``out/bounds``; the committed report is regenerated only by
``python -m bounds --out bounds/results``):

:mod:`bounds.grid`        Theorem 4 / Corollary 1 / Lemma rows, each with trivial_bound, vacuity
                          flag and a negative control (PowerSGD without restart);
:mod:`bounds.tightness`   how close each factor (τ², δ⁻², (1−μ)⁻², (1−μ)⁻⁴, 1/N, 1/(ηT)) comes;
:mod:`bounds.remark1`     PowerSGD+ / MSGD at Corollary 1's η as T grows;
:mod:`bounds.errata`      the paper's errors, checked numerically;
:mod:`bounds.search`      Hypothesis's targeted search for worst cases (``python -m bounds.search``).

The constants and bound formulas are in :mod:`simsgd.theory`, the estimators in :mod:`simsgd.stats`.
"""

from .study import MODES, run_all

__all__ = ["run_all", "MODES"]
