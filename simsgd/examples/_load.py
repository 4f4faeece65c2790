"""How busy the machine is: before a timing run (to refuse or mark it) and during it.

:func:`busy_cores` reads ``/proc/stat`` twice and returns how many cores' worth of time
were spent outside idle in between (all processes, ours included: call it before
starting any work). :class:`LoadSampler` keeps the 1-minute load average sampled during
a run, for the provenance.
"""

import os
import time

__all__ = ["busy_cores", "LoadSampler", "cores"]


def cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]), idle


def busy_cores(seconds=2.0):
    """Cores' worth of CPU time used by all processes over the next ``seconds`` (None off Linux).

    Parameters
    ----------
    seconds : float
        How long to watch.

    Returns
    -------
    float or None
        0 on an idle machine, up to the number of cores.
    """
    try:
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    if total <= 0:
        return 0.0
    return (os.cpu_count() or 1) * (1.0 - (idle1 - idle0) / total)


class LoadSampler:
    """The 1-minute load average, sampled at most every ``period`` seconds.

    Call the instance (e.g. from a wait loop); :meth:`summary` gives min, median and max.
    """

    def __init__(self, period=10.0):
        self.period, self.samples, self._last = period, [], -float("inf")
        self()

    def __call__(self):
        now = time.monotonic()
        if now - self._last >= self.period:
            self._last = now
            self.samples.append(round(os.getloadavg()[0], 2))

    def summary(self):
        """{"min", "median", "max", "samples", "cores"} of the 1-minute load average."""
        self.samples.append(round(os.getloadavg()[0], 2))
        values = sorted(self.samples)
        return {
            "min": values[0],
            "median": values[len(values) // 2],
            "max": values[-1],
            "samples": len(values),
            "cores": cores(),
        }
