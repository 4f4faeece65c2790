"""The settings of each mode, and one run of every study.

Why these settings (the arithmetic is in ``docs/bounds.md``): compression matters on ψ where
PowerSGD+ keeps a floor that MSGD does not have — N odd (here 1), τ = 1, μ = 0 — and σ large
enough that the kicks it makes are large against the compression term (σ = 3–5). The share of
the excess in the measured mean grows with T (the MSGD transient ΔF/(ηT) falls, the floor stays),
so η is the largest that keeps Theorem 4's bound below what doing nothing scores (≈ 90% of it)
and X_0 sits at ⟨A, X_0⟩ = 1 (``x0_scale`` 0.5), the edge of ψ's quadratic region: the largest
||∇f(X_0)||² (16) for the smallest ΔF (1).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import multiprocessing
import os
import resource
import sys
import time

from simsgd import output

from . import claims, controls, errata, independent, problems, rows, sensitivity, tightness
from .rows import Setting

__all__ = ["MODES", "run_all"]

ALPHA = 0.05


def _psi(basis, sigma, scale=0.5):
    return {"family": "psi", "basis": basis, "noise_scale": sigma, "x0_scale": scale}


def _general(m, k, sigma=5.0):
    return {
        "family": "general",
        "m": m,
        "n": m,
        "k": k,
        "basis": "random",
        "noise_scale": sigma,
        "x0_scale": 0.5,
    }


QUAD = {"family": "quadratic", "m": 6, "n": 4, "heterogeneity": 0.5}
T4, C1, L3, L4 = "Theorem 4", "Corollary 1", "Lemma 3", "Lemma 4"

# The setting every sensitivity row varies (its T/10 prefix is the base row) and the claims' rows.
SHARE = Setting(
    "psi5-aligned", T4, _psi("aligned", 5.0), 1, 1, 1, 0.0, 8.4e-4, (16_000, 160_000), 64, control=False
)
FULL = [
    # the excess share: exact-arithmetic dynamics (aligned basis) ... (no PowerSGD control on the long
    # rows: ε₀ = 8 is below their bound, so Theorem 1 predicts nothing there, and it would double their cost)
    SHARE,
    # σ = 3 to 16 000 steps only (the full run's budget): its share at 160 000 is the share model's
    Setting("psi3-aligned", T4, _psi("aligned", 3.0), 1, 1, 1, 0.0, 1.17e-3, (16_000,), 64, control=False),
    Setting(
        "psi5-aligned-seed1",
        T4,
        _psi("aligned", 5.0),
        1,
        1,
        1,
        0.0,
        8.4e-4,
        (16_000, 160_000),
        64,
        seed=1,
        control=False,
    ),
    # ... and the generic one (a random basis: rounding perturbs the iterates off span{A, B})
    Setting("psi5-random", T4, _psi("random", 5.0), 1, 1, 1, 0.0, 8.4e-4, (4_000, 40_000), 64, control=False),
    # rows with τ ≥ 2, momentum, N = 3, other problems; the control predicted to fail where ε₀ > bound
    Setting("psi5-aligned-tau2", T4, _psi("aligned", 5.0), 1, 1, 2, 0.0, 2.5e-4, (2_000, 20_000), 100),
    Setting("psi5-paper-tau2", T4, _psi("paper", 5.0), 1, 1, 2, 0.0, 2.5e-4, (2_000, 20_000), 100),
    Setting("psi5-random-tau4", T4, _psi("random", 5.0), 1, 1, 4, 0.0, 1.2e-4, (2_000, 20_000), 100),
    Setting("psi2-aligned-tau4", T4, _psi("aligned", 2.0), 1, 1, 4, 0.0, 1.5e-4, (2_000, 20_000), 100),
    Setting("psi5-random-N3", T4, _psi("random", 5.0), 3, 1, 1, 0.0, 3e-4, (2_000, 20_000), 100),
    Setting("psi5-random-mu0.5", T4, _psi("random", 5.0), 1, 1, 1, 0.5, 2e-4, (2_000, 20_000), 100),
    Setting("general3-k1", T4, _general(3, 1), 1, 1, 1, 0.0, 3e-4, (2_000, 20_000), 100),
    Setting("general4-k2-r2", T4, _general(4, 2), 1, 2, 2, 0.0, 2e-4, (2_000, 20_000), 100),
    Setting("quadratic", T4, QUAD, 4, 1, 4, 0.0, 4e-4, (10_000,), 64),
    # Corollary 1 at its own η (T and 10T)
    Setting("cor-psi5-aligned", C1, _psi("aligned", 5.0), 1, 1, 1, 0.0, None, (4_000,), 100),
    Setting("cor-psi5-aligned-10T", C1, _psi("aligned", 5.0), 1, 1, 1, 0.0, None, (40_000,), 100),
    Setting("cor-psi5-random-tau4", C1, _psi("random", 5.0), 1, 1, 4, 0.0, None, (4_000,), 100),
]
LEMMA_SPECS = [
    ("psi5-aligned-tau2", _psi("aligned", 5.0), 1, 1, 2, 0.0, 2.5e-4),
    ("psi5-random-tau4-mu0.5", _psi("random", 5.0), 1, 1, 4, 0.5, 2e-4),
    ("general4-k2-r2", _general(4, 2), 1, 2, 2, 0.0, 2e-4),
    ("quadratic", QUAD, 4, 1, 4, 0.5, 4e-4),
]


def lemma_settings(steps: int, replicas: int) -> list:
    """Lemma 3 and Lemma 4 on each of :data:`LEMMA_SPECS` (max over t ≤ ``steps``)."""
    return [
        Setting(f"{s.lower().replace(' ', '')}-{name}", s, spec, N, r, tau, mu, lr, (steps,), replicas)
        for name, spec, N, r, tau, mu, lr in LEMMA_SPECS
        for s in (L3, L4)
    ]


QUICK = [
    Setting("psi5-aligned", T4, _psi("aligned", 5.0), 1, 1, 1, 0.0, 8.4e-4, (4_000,), 32),
    Setting("cor-psi5-aligned", C1, _psi("aligned", 5.0), 1, 1, 1, 0.0, None, (2_000,), 32),
]

MODES = {
    "quick": dict(settings=QUICK, lemma_steps=300, lemma_replicas=32, tight_replicas=32, quick=True),
    "full": dict(settings=FULL, lemma_steps=2_000, lemma_replicas=100, tight_replicas=128, quick=False),
}


def _tightness(cfg: dict, seed: int) -> dict:
    return dict(
        base=dict(tightness.BASE, spec=problems.label(tightness.BASE["spec"])),
        sweeps=tightness.run(cfg["tight_replicas"], seed, ALPHA, quick=cfg["quick"]),
        control=tightness.control(cfg["tight_replicas"], seed, ALPHA),
        lemma3_tau=tightness.lemma3_tau(cfg["lemma_replicas"], seed, ALPHA),
    )


def _controls(cfg: dict, seed: int) -> dict:
    _, spec, nodes, rank, tau, _, lr = LEMMA_SPECS[0]
    return controls.run(cfg["settings"][0], (spec, nodes, rank, tau, lr), seed, ALPHA)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (the pool's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_all(mode: str = "quick", seed: int = 0, jobs: int = 1) -> dict:
    """Every study of ``mode``: a JSON-ready record with the rows, the tightness sweeps, the
    sensitivity rows, the controls, the errata, the independent comparisons and the claims.

    ``jobs`` > 1 runs the settings, the tightness sweeps, the independent rows and the sensitivity
    rows in that many worker processes (forked; NumPy engine): every run is seeded by its own
    settings, so the record's numbers do not depend on ``jobs``; ``seconds`` then gives each
    stage's wall time and the CPU of all processes together.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}; got {mode!r}")
    cfg, seconds, start, cpu = MODES[mode], {}, time.monotonic(), _cpu_seconds()
    load = [os.getloadavg()]
    commit = output.commit()  # the code that runs, not the HEAD at the end
    settings = cfg["settings"] + lemma_settings(cfg["lemma_steps"], cfg["lemma_replicas"])
    pool = None
    if jobs > 1:
        pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))

    def mapper(fn, items):
        if pool is None:
            return [fn(*args) for args in items]
        return [f.result() for f in [pool.submit(fn, *args) for args in items]]

    try:
        t0 = time.monotonic()
        if pool is None:
            found = [r for s in settings for r in rows.run(s, seed, ALPHA)]
            ctrl = _controls(cfg, seed)
            seconds["rows"] = time.monotonic() - t0
            t0 = time.monotonic()
            indep = independent.run(seed, ALPHA, quick=cfg["quick"])
            seconds["independent"] = time.monotonic() - t0
            t0 = time.monotonic()
            tight = _tightness(cfg, seed)
            seconds["tightness"] = time.monotonic() - t0
        else:  # the longest first: the tightness sweeps are one task (their points share a cache)
            tight_f = pool.submit(_tightness, cfg, seed)
            row_fs = [pool.submit(rows.run, s, seed, ALPHA) for s in settings]
            indep_f = pool.submit(independent.run, seed, ALPHA, quick=cfg["quick"])
            ctrl_f = pool.submit(_controls, cfg, seed)
            found = [r for f in row_fs for r in f.result()]
            ctrl, indep, tight = ctrl_f.result(), indep_f.result(), tight_f.result()
            seconds["rows_independent_tightness"] = time.monotonic() - t0
        t0 = time.monotonic()
        sens = sensitivity.run(
            found, seed, ALPHA, quick=cfg["quick"], tight_replicas=cfg["tight_replicas"], mapper=mapper
        )
        seconds["sensitivity"] = time.monotonic() - t0
    finally:
        if pool is not None:
            pool.shutdown()
    t0 = time.monotonic()
    err = errata.run()
    eq19 = dict(base=errata.x_tilde(), control=errata.x_tilde(mu=0.0))
    seconds["errata"] = time.monotonic() - t0
    seconds["wall_total"] = time.monotonic() - start
    seconds["cpu_total"] = _cpu_seconds() - cpu
    seconds["jobs"] = jobs
    load.append(os.getloadavg())
    record = dict(
        mode=mode,
        seed=seed,
        alpha=ALPHA,
        commit=commit,
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=dict(start=load[0], end=load[1]),
        config=dict(
            settings=[s.to_dict() for s in cfg["settings"]],
            lemma_settings=[s.to_dict() for s in lemma_settings(cfg["lemma_steps"], cfg["lemma_replicas"])],
            tight_replicas=cfg["tight_replicas"],
        ),
        seconds=seconds,
        rows=found,
        controls=ctrl,
        independent=indep,
        tightness=tight,
        sensitivity=sens,
        errata=err,
        eq19=eq19,
    )
    try:
        record["claims"] = claims.build(record)
    except Exception:
        # keep the runs: ``python -m bounds.claims --record PATH`` rebuilds the claims from them
        import json
        import tempfile

        path = os.path.join(tempfile.gettempdir(), f"bounds-record-{os.getpid()}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, default=float)
        print(f"claims failed; the record is in {path}", file=sys.stderr)
        raise
    return record
