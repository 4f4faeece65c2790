"""Empirical checks of the paper's analysis: Lemmas 1–4, Theorem 4 and Corollary 1.

``python -m bounds [--quick]`` runs three studies and writes ``bounds/REPORT.md`` and
``bounds/report.json``:

:mod:`bounds.checks`   Lemma 3, Lemma 4 and Theorem 4 of PowerSGD+ (MSGD) on the ψ example
                       (paper and aligned bases) and the heterogeneous quadratic, for several
                       τ, r, N, μ, each measured value with one-sided confidence bounds;
:mod:`bounds.shape`    sweeps that fit the exponents of the rate (T, N, τ, δ);
:mod:`bounds.failure`  PowerSGD without restart exceeding Theorem 4's right-hand side.

Lemmas 1 and 2 (deterministic statements about the compressors) are property-tested in
``tests/test_lemmas_property.py``. The constants and bound formulas are in
:mod:`simsgd.theory`, the estimators in :mod:`simsgd.stats`.
"""

from .study import MODES, render, run_all

__all__ = ["run_all", "render", "MODES"]
