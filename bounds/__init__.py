"""Theorem 4, Corollary 1, Lemmas 3–4 of PowerSGD+ where they can fail and where compression matters.

``python -m bounds [--quick] [--seed S] [--out DIR]`` writes ``DIR/REPORT.md`` and
``DIR/report.json`` (default ``out/bounds``; the committed report is regenerated only by
``python -m bounds --out bounds/results``). Every bound, term, vacuity flag and status comes from
:mod:`simsgd.check`; this package chooses the settings and reads the results:

:mod:`bounds.study`        the settings of each mode and the run of everything;
:mod:`bounds.rows`         one setting as rows (``simsgd.check`` results with ids and scope);
:mod:`bounds.tightness`    the stationary excess against the compression term, swept;
:mod:`bounds.sensitivity`  each claim's base row under η ×0.1, ×10, T ×10, another σ and seed set;
:mod:`bounds.controls`     compressors that make a check fail on purpose;
:mod:`bounds.independent`  the numbers of an independent re-derivation, and the comparison;
:mod:`bounds.claims`       the claims dict the ledger reads (``report.json["claims"]``);
:mod:`bounds.rebuild`      a written report's claims rebuilt from its rows (``python -m bounds.rebuild``);
:mod:`bounds.errata`       the paper's errors, checked numerically;
:mod:`bounds.search`       Hypothesis's targeted search for worst cases (``python -m bounds.search``).
"""

from .study import MODES, run_all

__all__ = ["run_all", "MODES"]
