"""Argument checks that fail early with a message naming the parameter and its range."""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_int", "check_real", "check_choice", "check_float_dtype"]


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """Return ``value`` as int if it is an integer in ``[low, high]``; else raise ValueError."""
    rng = f"[{low}, {high}]" if high is not None else f"[{low}, ∞)"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in {rng}, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {rng}, got {value}")
    return value


def check_real(
    name: str,
    value,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as float if it is finite and inside the interval; else raise ValueError."""
    rng = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}")
    value = float(value)
    ok = math.isfinite(value) or (value == high and not high_open) or (value == low and not low_open)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a real number in {rng}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_float_dtype(name: str, value) -> np.dtype:
    """Return ``np.dtype(value)`` if it is float32 or float64; else raise ValueError."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    # `dtype is None` first: None == np.dtype("float64") is True in NumPy.
    if dtype is None or dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be 'float32' or 'float64', got {value!r}")
    return dtype
