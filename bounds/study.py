"""The settings of each mode, and one run of every study."""

from __future__ import annotations

import datetime
import subprocess
import time

from . import errata, grid, remark1, tightness
from .grid import Setting

__all__ = ["MODES", "run_all"]

ALPHA = 0.05


def _psi(basis="aligned"):
    return {"family": "psi", "basis": basis, "noise_scale": 1.0}


# Corollary 1's step size at T (lr_scale < 1: a smaller η); σ = 1 keeps G² small.
QUICK_GRID = [Setting(_psi(), 1, 1, 2, 0.0, 10_000)]
FULL_GRID = [
    Setting(_psi(), 1, 1, 2, 0.0, 30_000),
    Setting(_psi(), 1, 1, 4, 0.0, 30_000),
    Setting(_psi(), 1, 1, 4, 0.0, 30_000, lr_scale=0.5),
    Setting(_psi(), 1, 1, 8, 0.0, 50_000),
    Setting(_psi(), 1, 1, 16, 0.0, 50_000),
    Setting(_psi(), 1, 1, 32, 0.5, 100_000),
    Setting(_psi(), 2, 1, 2, 0.5, 50_000),
    Setting(_psi(), 4, 1, 2, 0.9, 50_000),
    Setting(_psi(), 8, 1, 8, 0.5, 50_000),
    Setting(_psi("paper"), 1, 1, 4, 0.0, 30_000),
    Setting(_psi("paper"), 2, 1, 16, 0.5, 50_000),
    Setting({"family": "general", "m": 4, "n": 4, "k": 1, "noise_scale": 1.0}, 1, 1, 4, 0.0, 30_000),
    Setting({"family": "quadratic", "m": 6, "n": 4, "heterogeneity": 0.5}, 4, 1, 4, 0.5, 20_000),
]

MODES = {
    "quick": dict(
        grid=QUICK_GRID,
        grid_replicas=200,
        tightness_replicas=50,
        tightness_quick=True,
        remark1_taus=(1, 16),
        remark1_steps=(300, 1000),
        remark1_replicas=100,
    ),
    "full": dict(
        grid=FULL_GRID,
        grid_replicas=100,
        tightness_replicas=100,
        tightness_quick=False,
        remark1_taus=(1, 4, 16, 64),
        remark1_steps=(1000, 3000, 10_000),
        remark1_replicas=100,
    ),
}


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_all(mode: str = "quick", seed: int = 0) -> dict:
    """Every study of ``mode``; a JSON-ready record (rows as :class:`bounds.rows.Row`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}; got {mode!r}")
    cfg, seconds, start, cpu = MODES[mode], {}, time.monotonic(), time.process_time()
    commit = _commit()  # the code that runs, not the HEAD at the end
    rows = []
    for s in cfg["grid"]:
        rows += grid.run_setting(s, cfg["grid_replicas"], seed, ALPHA)
    seconds["grid"] = time.monotonic() - start
    tight = tightness.run(cfg["tightness_replicas"], seed, ALPHA, quick=cfg["tightness_quick"])
    seconds["tightness"] = time.monotonic() - start - seconds["grid"]
    rem = [
        remark1.run(inst, cfg["remark1_taus"], cfg["remark1_steps"], cfg["remark1_replicas"], seed, ALPHA)
        for inst in remark1.INSTANCES
    ]
    seconds["remark1"] = time.monotonic() - start - seconds["grid"] - seconds["tightness"]
    err = errata.run()
    seconds["total"] = time.monotonic() - start
    seconds["cpu_total"] = time.process_time() - cpu
    config = {k: v for k, v in cfg.items() if k != "grid"}
    config["grid"] = [s.to_dict() for s in cfg["grid"]]
    return dict(
        mode=mode,
        seed=seed,
        alpha=ALPHA,
        commit=commit,
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        config=config,
        seconds=seconds,
        rows=rows,
        tightness=tight,
        remark1=rem,
        errata=err,
    )
