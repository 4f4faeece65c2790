"""Progress on stderr: a bar with elapsed time and ETA on a terminal, optional log lines off one."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d}")
    )


class Progress:
    """Progress of ``total`` units of work on stderr.

    Parameters
    ----------
    total : int
    enabled : bool or None
        Show the bar (None: only when stderr is a terminal).
    label : str
    log_every : float, optional
        Off a terminal, write a line ``label: done/total, elapsed, ETA`` every this many
        seconds (the first after as many: a run shorter than that prints nothing). None:
        nothing off a terminal.
    """

    def __init__(self, total: int, enabled: bool | None, label: str = "simulate", log_every=None):
        tty = sys.stderr.isatty()
        self.enabled = tty if enabled is None else bool(enabled)
        self.log_every = None if tty else log_every
        self.total, self.label = total, label
        self._start = self._last = self._last_log = time.monotonic()
        self._open = False  # a bar is drawn and its line not yet ended

    def _status(self, done: int, now: float) -> str:
        elapsed = now - self._start
        eta = f", ETA {_clock(elapsed / done * (self.total - done))}" if 0 < done < self.total else ""
        return f"{done}/{self.total}, {_clock(elapsed)} elapsed{eta}"

    def update(self, done: int) -> None:
        """Report ``done`` units finished (redrawn at most every 0.2 s, and at the end)."""
        now = time.monotonic()
        if self.log_every is not None and now - self._last_log >= self.log_every:
            self._last_log = now
            sys.stderr.write(f"{self.label}: {self._status(done, now)}\n")
            sys.stderr.flush()
        if not self.enabled or (now - self._last < 0.2 and done < self.total):
            return
        self._last = now
        width = 30
        filled = width * done // max(self.total, 1)
        bar = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self._status(done, now)}"
        sys.stderr.write(bar.ljust(len(bar) + 8))  # blank what a longer previous ETA left
        self._open = done < self.total
        if not self._open:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line if the work stopped short of ``total`` (a deadline, an error)."""
        if self._open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._open = False
