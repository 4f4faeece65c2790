"""One background thread for the explorer's computations, so that the kernel stays free to hear
the Stop button and the next slider move while a run goes on.

Jobs come in kinds ("curves", "map"). Per kind only the latest submitted job is kept; submitting
one stops the running job of the same kind (its settings are stale), while a job of another kind
waits its turn. A job is a callable taking ``stop``, a function it polls that turns true when the
job should end.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

__all__ = ["Jobs"]


class Jobs:
    """The explorer's background thread and its queue (see the module).

    Attributes
    ----------
    errors : list of str
        Tracebacks of jobs that raised (a job is expected to handle its own failures).
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._pending: dict[str, Callable] = {}
        self._running: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def submit(self, kind: str, job: Callable[[Callable[[], bool]], None]) -> None:
        """Queue ``job`` as the latest of ``kind``, stopping a running job of that kind."""
        with self._cond:
            self._pending.pop(kind, None)
            self._pending[kind] = job
            if self._running == kind:
                self._stop.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="simsgd-explore", daemon=True)
                self._thread.start()

    def stop(self) -> bool:
        """Stop the running job and drop the queued ones; whether a job was running."""
        with self._cond:
            self._pending.clear()
            self._stop.set()
            return self._running is not None

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits."""
        with self._cond:
            return self._thread is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job runs or waits (True), or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._thread is None, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._thread = self._running = None
                    self._cond.notify_all()
                    return
                kind = next(iter(self._pending))
                job = self._pending.pop(kind)
                self._running, self._stop = kind, threading.Event()
                stop = self._stop
            try:
                job(stop.is_set)
            except Exception:  # the thread must outlive a failing job; the error is kept
                self.errors.append(traceback.format_exc())
            with self._cond:
                self._running = None
