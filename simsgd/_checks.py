"""Argument checks shared by the API and every CLI: they fail early, naming the parameter and its range.

Every number is checked finite (``inf`` is refused even where no upper bound is given),
dtypes are checked before anything is computed, and :func:`check_memory` refuses a run
whose arrays would not fit, with the estimate and the limit, before they are allocated.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "check_int",
    "check_real",
    "check_choice",
    "check_float_dtype",
    "check_seed",
    "check_memory",
    "memory_limit",
    "MAX_SEED",
    "MEMORY_LIMIT_BYTES",
]

MAX_SEED = 2**64 - 1  # seeds are SplitMix64 keys (simsgd.streams): one uint64
MEMORY_LIMIT_BYTES = 8 * 2**30  # the documented budget of one run; less if less RAM is available
_GIB = 2**30


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
    """Return ``value`` as float if it is finite and inside the interval; else raise ValueError.

    ``inf`` and ``nan`` are always refused: an unbounded side (``low = -inf`` or
    ``high = inf``, the defaults) still means a finite number.
    """
    left = "(" if low_open or low == -math.inf else "["
    rng = f"{left}{low:g}, {high:g}{')' if high_open or high == math.inf else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number in {rng}, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        digits = len(str(abs(int(value))))
        raise ValueError(
            f"{name} must be a finite real number in {rng}, got a {digits}-digit integer"
        ) from None
    ok = math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a finite real number in {rng}, got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ValueError listing them."""
    try:
        known = value in choices
    except TypeError:  # unhashable
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_float_dtype(name: str, value) -> np.dtype:
    """Return ``np.dtype(value)`` if it is float32 or float64; else raise ValueError.

    ``None`` is refused (``np.dtype(None)`` would silently be float64).
    """
    dtype = None
    if value is not None:
        try:
            dtype = np.dtype(value)
        except (TypeError, ValueError):
            dtype = None
    if dtype is None or dtype.name not in ("float32", "float64"):  # (np.dtype(...) == None is True)
        raise ValueError(f"{name} must be 'float32' or 'float64', got {value!r}")
    return dtype


def check_seed(name: str, value) -> int:
    """A seed: an integer in [0, 2⁶⁴ − 1] (one uint64 key of :mod:`simsgd.streams`)."""
    return check_int(name, value, 0, MAX_SEED)


def memory_limit() -> int:
    """Bytes one run may use: :data:`MEMORY_LIMIT_BYTES`, or ¾ of the available RAM if that is less.

    The available RAM is read from ``/proc/meminfo`` where there is one.
    """
    limit = MEMORY_LIMIT_BYTES
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    limit = min(limit, int(line.split()[1]) * 1024 * 3 // 4)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return limit


def check_memory(what: str, estimate_bytes: float, hint: str) -> None:
    """Raise ValueError, with the estimate and the limit, when ``estimate_bytes`` > :func:`memory_limit`.

    Parameters
    ----------
    what : str
        The run, as the message should name it.
    estimate_bytes : float
        What its arrays need (a float: the product of huge sizes may exceed int64).
    hint : str
        Which parameters to lower, e.g. ``"fewer replicas or steps"``.
    """
    limit = memory_limit()
    if not estimate_bytes <= limit:
        raise ValueError(
            f"{what} needs about {estimate_bytes / _GIB:.3g} GiB of memory, more than the limit "
            f"{limit / _GIB:.3g} GiB (8 GiB or ¾ of the available RAM, whichever is less); use {hint}"
        )
