"""The hook's collectives, replaced for timing: recorded and skipped (compute alone), or replayed.

:func:`collectives_skipped` swaps the ``dist`` module that :mod:`simsgd.distributed.hook`
calls (every collective of the hook, the randomized restart's included) for a stand-in
whose ``all_reduce`` records the message (floats and bytes per float) and returns at once;
everything else goes to ``torch.distributed``. The hook then does all its arithmetic on the local values (the
shapes, hence the cost, are those of the real run). :func:`allreduce_skipped_hook` does
the same for the plain all-reduce (DDP's buckets). :func:`replay` sends the recorded
messages again, alone: the communication without the compute.
"""

import contextlib

import torch
import torch.distributed as dist

import simsgd.distributed.hook as _hook

__all__ = ["Recorder", "collectives_skipped", "skipped_hook", "allreduce_skipped_hook", "replay", "buffers"]

_DTYPES = {2: torch.float16, 4: torch.float32, 8: torch.float64}


class Recorder:
    """The messages of each step while ``on``: ``steps`` = [[(floats, bytes per float), ...], ...].

    The training loop calls :meth:`new_step` before each step.
    """

    def __init__(self):
        self.steps, self.on = [], False

    def new_step(self):
        if self.on:
            self.steps.append([])

    def add(self, tensor):
        if self.on and self.steps:
            self.steps[-1].append((tensor.numel(), tensor.element_size()))


class _Skipped:
    """``torch.distributed`` with an ``all_reduce`` that records and does nothing."""

    def __init__(self, recorder):
        self._recorder = recorder

    def __getattr__(self, name):
        return getattr(dist, name)

    def all_reduce(self, tensor, *args, **kwargs):
        self._recorder.add(tensor)


@contextlib.contextmanager
def collectives_skipped(recorder):
    """Inside the block, the hook's all-reduces are recorded into ``recorder`` and skipped."""
    saved = _hook.dist
    _hook.dist = _Skipped(recorder)
    try:
        yield
    finally:
        _hook.dist = saved


def skipped_hook(state, bucket):
    """``powersgd_plus_hook`` with its collectives skipped; ``state`` = (hook state, Recorder)."""
    hook_state, recorder = state
    with collectives_skipped(recorder):
        return _hook.powersgd_plus_hook(hook_state, bucket)


def allreduce_skipped_hook(recorder, bucket):
    """DDP's all-reduce without the all-reduce: the bucket as it is, its size recorded."""
    buffer = bucket.buffer()
    recorder.add(buffer)
    future = torch.futures.Future()
    future.set_result(buffer)
    return future


def buffers(steps):
    """One tensor per distinct (floats, bytes per float) of the recorded ``steps``."""
    sizes = {message for step in steps for message in step}
    return {(n, b): torch.zeros(n, dtype=_DTYPES[b]) for n, b in sizes}


def replay(steps, tensors):
    """All-reduce the recorded messages of ``steps`` in order (``tensors`` from :func:`buffers`)."""
    for step in steps:
        for message in step:
            dist.all_reduce(tensors[message])
