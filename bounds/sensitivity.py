"""Each claim's base row again under a change: η ×0.1 and ×10, T ×10, another σ, another seed set.

A variant that is already a row of the study (T ×10 as a longer prefix of the same run, another
seed set as its own setting) is named by its id; the others run here. :mod:`bounds.claims` turns
each into the claim's verdict on it and says whether that verdict changed.
"""

from __future__ import annotations

from dataclasses import replace

from . import errata, rows, tightness
from .rows import Setting

__all__ = ["run", "BASES"]

# claim: (base row id in full mode, in quick mode)
BASES = {
    "T4": ("psi5-aligned@T=16000", "psi5-aligned@T=4000"),
    "C1": ("cor-psi5-aligned@T=4000", "cor-psi5-aligned@T=2000"),
    "L3": ("lemma3-psi5-aligned-tau2@T=2000", "lemma3-psi5-aligned-tau2@T=300"),
    "L4": ("lemma4-psi5-aligned-tau2@T=2000", "lemma4-psi5-aligned-tau2@T=300"),
}


def _sigma(s: Setting, sigma: float) -> Setting:
    return replace(s, name=f"{s.name}-sigma{sigma:g}", spec=dict(s.spec, noise_scale=sigma))


def _variants(s: Setting, quick: bool) -> dict:
    """η ×0.1, η ×10, T ×10, σ = 2, seed + 1 of a one-horizon setting (lemmas, Corollary 1)."""
    T = s.horizons[-1]
    out = {
        "sigma": _sigma(s, 2.0),
        "seeds": replace(s, name=f"{s.name}-seed1", seed=s.seed + 1),
        "T_x10": replace(s, name=f"{s.name}-Tx10", horizons=(10 * T,)),
    }
    if s.lr is not None:
        out["eta_x0.1"] = replace(s, name=f"{s.name}-eta/10", lr=s.lr / 10)
        out["eta_x10"] = replace(s, name=f"{s.name}-etax10", lr=s.lr * 10)
    if quick:
        out.pop("T_x10")
    return out


def _setting(found: list, row_id: str) -> Setting:
    row = next(r for r in found if r["id"] == row_id)
    d = {k: row["settings"][k] for k in ("N", "r", "τ", "μ", "η", "T", "R", "seed")}
    lr = None if row["statement"] == "Corollary 1" else d["η"]
    return Setting(
        row["setting"], row["statement"], row["spec"], d["N"], d["r"], d["τ"], d["μ"], lr, (d["T"],), d["R"]
    )


def _first_row(setting: Setting, seed: int, alpha: float) -> dict:
    return rows.run(setting, seed, alpha)[0]


def _theorem4(found, base_id, quick) -> dict:
    """(key → Setting to run, or the id of a row the study has) of Theorem 4's base row."""
    base = _setting(found, base_id)
    out = {"eta_x10": replace(base, name=f"{base.name}-etax10", lr=base.lr * 10)}
    if quick:
        return out
    out["eta_x0.1"] = replace(base, name=f"{base.name}-eta/10", lr=base.lr / 10)
    out["sigma"] = _sigma(base, 2.0)
    out["T_x10"] = f"{base.name}@T={10 * base.horizons[0]}"
    out["seeds"] = f"{base.name}-seed1@T={base.horizons[0]}"
    return out


def _corollary(found, base_id, quick) -> dict:
    if quick:
        return {}
    base = _setting(found, base_id)
    out = {k: v for k, v in _variants(base, quick).items() if k != "T_x10"}
    for key, scale in (("eta_x0.1", 0.1), ("eta_x10", 10.0)):
        out[key] = replace(base, name=f"{base.name}-eta-x{scale:g}", lr_scale=scale)
    out["T_x10"] = f"{base.name}-10T@T={10 * base.horizons[0]}"
    return out


def _tight(quick, replicas) -> dict:
    """(key → (params, replicas, seed offset, tenfold)) of the tightness base."""
    if quick:
        return {}
    base = dict(tightness.BASE)
    return {
        "eta_x0.1": (dict(base, lr=base["lr"] / 10), replicas, 0, False),
        "eta_x10": (dict(base, lr=base["lr"] * 10), replicas, 0, True),
        "seeds": (base, replicas, 1, True),
    }


def _eq19() -> dict:
    base = dict(mu=0.5, lr=1e-3, steps=20, seed=0, sigma=1.0)
    changes = {"eta_x0.1": dict(lr=1e-4), "eta_x10": dict(lr=1e-2), "T_x10": dict(steps=200)}
    changes.update(sigma=dict(sigma=5.0), seeds=dict(seed=1))
    out = {}
    for key, change in changes.items():
        found = errata.x_tilde(**dict(base, **change))
        out[key] = dict(
            change,
            gap=found["gap"],
            ratio_min=min(found["ratios"]),
            ratio_max=max(found["ratios"]),
            expected=found["expected"],
        )
    return out


def _serial(fn, items) -> list:
    return [fn(*args) for args in items]


def run(found: list, seed: int, alpha: float, quick: bool, tight_replicas: int = 128, mapper=None) -> dict:
    """The variants of every claim's base row: rows (dicts), row ids, or tightness points.

    ``mapper(fn, items)`` returns ``[fn(*args) for args in items]``, possibly in other processes
    (:func:`bounds.study.run_all` with ``jobs`` > 1): the runs are independent and seeded.
    """
    mapper = mapper or _serial
    pick = 1 if quick else 0
    plan = {
        "T4": _theorem4(found, BASES["T4"][pick], quick),
        "C1": _corollary(found, BASES["C1"][pick], quick),
    }
    for claim in ("L3", "L4"):
        plan[claim] = dict(_variants(_setting(found, BASES[claim][pick]), quick))
    runs = [(c, k, v) for c, variants in plan.items() for k, v in variants.items() if isinstance(v, Setting)]
    done = mapper(_first_row, [(v, seed, alpha) for _, _, v in runs])
    got = {(c, k): row for (c, k, _), row in zip(runs, done)}
    tight = _tight(quick, tight_replicas)
    points = mapper(tightness.point, [(p, r, seed + d, alpha, ten) for p, r, d, ten in tight.values()])
    out = {c: {k: got.get((c, k), v) for k, v in variants.items()} for c, variants in plan.items()}
    out["eq19"] = _eq19()
    out["T4-tight"] = {k: {a: b for a, b in p.items() if a != "values"} for k, p in zip(tight, points)}
    order = ("T4", "C1", "eq19", "T4-tight", "L3", "L4")
    return dict({k: out[k] for k in order}, bases={k: v[pick] for k, v in BASES.items()})
