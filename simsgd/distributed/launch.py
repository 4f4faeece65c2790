"""Run a function on N processes of a process group: spawned locally, or under ``torchrun``.

:func:`launch` is what tests, studies and the examples call. Started by ``torchrun`` (its
``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` variables are set) it joins torchrun's group in
this process; otherwise it spawns ``world_size`` local processes that meet at a
``TCPStore`` the parent opens on a free port (port 0, so no race for a port).

Faults: a rank that raises or dies makes :func:`launch` stop the others at once and raise
:class:`RankError` naming the rank and its traceback; ``deadline`` bounds the whole run.
Under torchrun the agent stops the other workers, and a rank blocked in a collective
gives up after the group's ``timeout``.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing as mp
import os
import queue
import time
import traceback

import torch
import torch.distributed as dist

from .._checks import check_choice, check_int, check_real

__all__ = ["launch", "RankError", "under_torchrun"]

BACKENDS = ("gloo", "nccl")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class RankError(RuntimeError):
    """A rank of a launched run raised, died, or the run passed its deadline."""


def under_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (or another env:// launcher)."""
    return all(v in os.environ for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _init(backend, rank, world_size, timeout, store=None):
    if backend == "nccl":
        torch.cuda.set_device(rank % torch.cuda.device_count())
    dist.init_process_group(
        backend, store=store, rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=timeout)
    )


def _child(fn, args, kwargs, rank, world_size, backend, timeout, port, results):
    try:
        store = dist.TCPStore(
            "127.0.0.1", port, world_size, is_master=False, timeout=datetime.timedelta(seconds=timeout)
        )
        _init(backend, rank, world_size, timeout, store)
        value = fn(*args, **kwargs)
        results.put((rank, "ok", value))
        dist.destroy_process_group()
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        results.put((rank, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


@contextlib.contextmanager
def _thread_limits(threads):
    """Set the BLAS/OpenMP thread counts the children inherit (unless already set)."""
    saved = {v: os.environ.get(v) for v in _THREAD_VARIABLES}
    for v in _THREAD_VARIABLES:
        os.environ.setdefault(v, str(threads))
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def _stop(processes, grace=5.0):
    for p in processes:
        if p.is_alive():
            p.terminate()
    end = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, end - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def launch(fn, world_size, *args, backend="gloo", timeout=60.0, deadline=None, threads=1, **kwargs):
    """Run ``fn(*args, **kwargs)`` on every rank of a ``world_size``-process group.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled to the spawned processes); it runs after
        ``dist.init_process_group`` and may call any collective. Its return value must
        pickle.
    world_size : int ≥ 1
        Number of processes (under torchrun: must equal ``WORLD_SIZE``, or be None).
    backend : {"gloo", "nccl"}
        "nccl" puts rank k on GPU k mod (number of GPUs).
    timeout : float > 0
        Seconds a rank waits in a collective (and to meet the others) before giving up.
    deadline : float > 0 or None
        Seconds the whole spawned run may take; past it every rank is stopped.
    threads : int ≥ 1
        OMP/OpenBLAS/MKL threads per spawned process (kept if already set in the
        environment), so that N processes do not oversubscribe the cores.

    Returns
    -------
    list
        ``fn``'s return value on each rank, indexed by rank (under torchrun: gathered
        from all ranks, on every rank).

    Raises
    ------
    RankError
        A rank raised or died (the others are stopped at once), or the deadline passed.
    ValueError
        An argument outside its range.
    """
    check_choice("backend", backend, BACKENDS)
    check_real("timeout", timeout, 0.0, low_open=True)
    if deadline is not None:
        check_real("deadline", deadline, 0.0, low_open=True)
    check_int("threads", threads, 1)
    if under_torchrun():
        return _launch_torchrun(fn, world_size, args, kwargs, backend, timeout)
    world_size = check_int("world_size", world_size, 1)

    ctx = mp.get_context("spawn")
    store = dist.TCPStore(
        "127.0.0.1",
        0,
        world_size + 1,
        is_master=True,
        wait_for_workers=False,
        timeout=datetime.timedelta(seconds=timeout),
    )
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=_child,
            args=(fn, args, kwargs, rank, world_size, backend, timeout, store.port, results),
            daemon=True,
        )
        for rank in range(world_size)
    ]
    with _thread_limits(threads):
        for p in processes:
            p.start()
    try:
        return _collect(processes, results, deadline)
    finally:
        _stop(processes)
        del store


def _collect(processes, results, deadline):
    values, end = {}, None if deadline is None else time.monotonic() + deadline
    while len(values) < len(processes):
        try:
            rank, status, value = results.get(timeout=0.05)
        except queue.Empty:
            dead = [r for r, p in enumerate(processes) if r not in values and p.exitcode is not None]
            if dead:  # its last message may still be in the pipe: wait a little for it
                try:
                    rank, status, value = results.get(timeout=1.0)
                except queue.Empty:
                    raise RankError(
                        f"rank {dead[0]} of {len(processes)} died with exit code "
                        f"{processes[dead[0]].exitcode} before returning; the other ranks "
                        "were stopped"
                    ) from None
                _accept(values, rank, status, value, processes)
                continue
            if end is not None and time.monotonic() > end:
                missing = sorted(set(range(len(processes))) - set(values))
                raise RankError(
                    f"deadline passed with ranks {missing} still running; all ranks were stopped"
                ) from None
            continue
        _accept(values, rank, status, value, processes)
    return [values[r] for r in range(len(processes))]


def _accept(values, rank, status, value, processes):
    if status == "error":
        # A peer's death shows up first as a connection error in the ranks waiting for it:
        # name the dead rank as the cause when there is one.
        time.sleep(0.5)
        dead = [r for r, p in enumerate(processes) if r != rank and p.exitcode not in (None, 0)]
        cause = (
            f"rank {dead[0]} of {len(processes)} died with exit code {processes[dead[0]].exitcode}; then "
            if dead
            else ""
        )
        raise RankError(
            f"{cause}rank {rank} of {len(processes)} raised {value}(the other ranks were stopped)"
        )
    values[rank] = value


def _launch_torchrun(fn, world_size, args, kwargs, backend, timeout):
    env_world = int(os.environ["WORLD_SIZE"])
    if world_size is not None and world_size != env_world:
        raise ValueError(f"world_size must be None or torchrun's WORLD_SIZE = {env_world}, got {world_size}")
    started = not dist.is_initialized()
    if started:
        _init(backend, int(os.environ["RANK"]), env_world, timeout)
    try:
        value = fn(*args, **kwargs)
        gathered = [None] * env_world
        dist.all_gather_object(gathered, value)
        return gathered
    finally:
        if started:
            dist.destroy_process_group()
