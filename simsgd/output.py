"""Atomic file writes: a file is written whole or not at all.

The data go to a temporary file in the destination's folder, which is then renamed
over the destination with :func:`os.replace` (atomic on POSIX and Windows), so an
interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import subprocess
import sys
import tempfile

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_csv",
    "atomic_savefig",
    "provenance",
    "commit",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns the path as a string."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> the usual file mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> str:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_csv(path, header, rows) -> str:
    """Write a CSV with ``header`` (sequence of str) and ``rows`` to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def atomic_savefig(fig, path, **savefig_kwargs) -> str:
    """``fig.savefig`` into memory, then write the bytes to ``path`` atomically."""
    buffer = io.BytesIO()
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    fig.savefig(buffer, format=fmt, **savefig_kwargs)
    return atomic_write_bytes(path, buffer.getvalue())


def commit(short: bool = True) -> str:
    """The git commit of the checkout this package runs from (``git describe --always --dirty``:
    ``-dirty`` when it has uncommitted changes), or ``"unknown"`` outside one. The one place the
    commit of a result is looked up.
    """
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", f"--abbrev={12 if short else 40}"],
            cwd=os.path.dirname(os.path.abspath(__file__)),  # the checkout this code runs from
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out or "unknown"


def provenance(command: str | None = None, **settings) -> dict:
    """Where a generated result came from: the command, the git commit, the date, versions.

    Parameters
    ----------
    command : str, optional
        The command line that made the result (default: this process's ``sys.argv``).
    **settings
        Anything else that fixes the numbers (seeds, sizes), recorded as given.

    Returns
    -------
    dict
        ``command``, ``commit`` (:func:`commit`), ``date`` (UTC, ISO 8601), ``python``, ``numpy``,
        ``load_average`` (the 1-minute load when the result was made: what it ran beside) and
        ``settings``.
    """
    import numpy as np

    return {
        "command": command or " ".join(["python"] + sys.argv),
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "settings": settings,
    }
