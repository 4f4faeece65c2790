"""The claims contract of the studies' JSON: a top-level ``"claims"`` dict, one entry per claim id.

A claims ledger reads these entries. Each has every field below, checked by :func:`claim`:

``verdict``       "holds" | "holds in scope" | "fails" | "open" | "inconclusive"
``statement``     one sentence, with numbers
``value``         the measured numbers behind the statement (a dict)
``scope``         problem, N, basis, sigma, eta, T, R, precision, qr0_convention, seed
``control``       {"input", "result"}: what makes the check come out otherwise, and that it does
``sensitivity``   eta_x0.1, eta_x10, T_x10, sigma, seeds, precision_or_convention: each
                  {"verdict", "value", "changed"} (changed: the verdict differs from the claim's)
``independent``   {"file", "value", "agrees", "how"}: the same number from code that does not
                  share the project's path (the file it comes from, and how it was compared)

and, under ``--quick``, ``quick_note`` where the quick run differs from the full one.
"""

from __future__ import annotations

__all__ = ["VERDICTS", "SCOPE_KEYS", "SENSITIVITY_KEYS", "claim", "sensitivity", "independent"]

VERDICTS = ("holds", "holds in scope", "fails", "open", "inconclusive")
SCOPE_KEYS = ("problem", "N", "basis", "sigma", "eta", "T", "R", "precision", "qr0_convention", "seed")
SENSITIVITY_KEYS = ("eta_x0.1", "eta_x10", "T_x10", "sigma", "seeds", "precision_or_convention")
INDEPENDENT_ROOT = "claims/independent/results"
"""Where the independent analyst's JSON lives (a checkout of the main worktree; read, not run)."""


def _check_verdict(verdict):
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return verdict


def sensitivity(verdict: str, value, claim_verdict: str) -> dict:
    """One sensitivity row: the verdict under a changed setting, its numbers, and whether it changed.

    Parameters
    ----------
    verdict : str
        The verdict under the changed setting (one of :data:`VERDICTS`).
    value : dict or str
        What was measured there (or why nothing was).
    claim_verdict : str
        The claim's own verdict, to compare with.
    """
    return {"verdict": _check_verdict(verdict), "value": value, "changed": verdict != claim_verdict}


def independent(file: str, value, agrees: bool, how: str) -> dict:
    """The independent re-derivation: ``file`` under :data:`INDEPENDENT_ROOT`, its numbers,
    whether they agree with ours, and how that was judged.
    """
    return {"file": f"{INDEPENDENT_ROOT}/{file}", "value": value, "agrees": bool(agrees), "how": how}


def claim(*, verdict, statement, value, scope, control, sensitivity, independent, quick_note=None) -> dict:
    """One entry of a study's ``"claims"`` dict, with every field of the contract checked.

    Raises
    ------
    ValueError
        A verdict outside :data:`VERDICTS`, or a missing scope, control, sensitivity or
        independent field.
    """
    _check_verdict(verdict)
    missing = [k for k in SCOPE_KEYS if k not in scope]
    missing += [f"control.{k}" for k in ("input", "result") if k not in control]
    missing += [f"sensitivity.{k}" for k in SENSITIVITY_KEYS if k not in sensitivity]
    missing += [f"independent.{k}" for k in ("file", "value", "agrees", "how") if k not in independent]
    if missing:
        raise ValueError(f"claim lacks {', '.join(missing)}")
    for key, row in sensitivity.items():
        _check_verdict(row["verdict"])
        if row["changed"] != (row["verdict"] != verdict):
            raise ValueError(f"sensitivity {key}: 'changed' must say whether its verdict differs")
    entry = {
        "verdict": verdict,
        "statement": statement,
        "value": value,
        "scope": {k: scope[k] for k in SCOPE_KEYS},
        "control": control,
        "sensitivity": {k: sensitivity[k] for k in SENSITIVITY_KEYS},
        "independent": independent,
    }
    if quick_note:
        entry["quick_note"] = quick_note
    return entry
