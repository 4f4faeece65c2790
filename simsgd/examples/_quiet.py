"""Run :func:`simsgd.distributed.launch.launch` with children that stay quiet on Ctrl-C.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, so each spawned
child used to raise ``KeyboardInterrupt`` wherever it was, often while still importing
torch, and print a traceback. Here SIGINT is ignored while a helper thread starts the
children: an ignored signal stays ignored across ``exec``, and Python then installs no
``KeyboardInterrupt`` handler, so the children never see Ctrl-C. Once they are all
started, this process takes SIGINT back: on Ctrl-C it stops the children (SIGTERM, which
ends them without a word), waits for the helper thread, and raises ``KeyboardInterrupt``
for the CLI to report in one line. (A Ctrl-C in the fraction of a second the children take
to start is lost.)
"""

import multiprocessing
import signal
import threading
import time

__all__ = ["launch_quietly"]


def launch_quietly(launch, fn, world_size, *args, every=None, poll=0.2, **kwargs):
    """``launch(fn, world_size, *args, **kwargs)`` with Ctrl-C handled by this process alone.

    Parameters
    ----------
    launch : callable
        :func:`simsgd.distributed.launch.launch` (passed in, so that callers and tests can
        substitute it).
    fn, world_size, *args, **kwargs
        As for ``launch``.
    every : callable or None
        Called in the main thread about every ``poll`` seconds while the run lasts (e.g. to
        sample the load average).
    poll : float
        Seconds between checks.

    Returns
    -------
    list
        ``launch``'s return value.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, after the children were stopped.
    BaseException
        Whatever ``launch`` raised.
    """
    box = {}

    def target():
        try:
            box["value"] = launch(fn, world_size, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box["error"] = exc

    if threading.current_thread() is not threading.main_thread():
        return launch(fn, world_size, *args, **kwargs)
    before = len(multiprocessing.active_children())
    thread = threading.Thread(target=target, name="launch", daemon=True)
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the children
    try:
        thread.start()
        end = time.monotonic() + 60.0
        while thread.is_alive() and len(multiprocessing.active_children()) < before + world_size:
            if time.monotonic() > end:
                break
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, handler)
    try:
        while thread.is_alive():
            thread.join(poll)
            if every is not None:
                every()
    except KeyboardInterrupt:
        _stop_children()
        thread.join(30)
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


def _stop_children(grace=5.0):
    """SIGTERM this process's multiprocessing children (only those), then SIGKILL stragglers."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    end = time.monotonic() + grace
    for child in children:
        child.join(max(0.0, end - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join()
