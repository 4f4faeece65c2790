"""A minimal progress bar on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, enabled: bool | None, label: str = "simulate"):
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.total, self.label, self._last = total, label, 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and done < self.total):
            return
        self._last = now
        width = 30
        filled = width * done // max(self.total, 1)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}")
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
