"""Whole-or-nothing file writes: a temporary file in the target folder, then os.replace."""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "save_figure", "write_text", "write_csv"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)                 # mkstemp's 0600 → the usual rw-r--r--
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_figure(fig, path, dpi=150):
    """Save a matplotlib figure as PNG atomically (no timestamp in the metadata)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


def write_text(path, text: str):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv(path, header, rows):
    """``rows``: iterables of values; floats are written with 6 significant digits."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for row in rows:
            out.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
