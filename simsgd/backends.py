"""The array backends :func:`simsgd.simulate` can run on, one record each.

A :class:`Backend` says where its arrays live (``ops(device)``), how its oracle draws
(``streams``: bit for bit the NumPy engine's counter-based draws), which devices it has
(``check_device``) and, optionally, a compiled loop. The torch backends — "torch" (tensors of
shape (R, N, m, n)) and "lanes" (:mod:`simsgd.lanes`: each entry a length-R tensor, compiled by
:mod:`simsgd.fused` into one loop over the replicas per step) — are loaded on first use, so
``import simsgd`` never imports torch. Add a backend with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ._checks import check_choice
from .ops import NUMPY, ArrayOps
from .streams import NodeStreams

__all__ = ["Backend", "register", "get", "names"]


class Backend(NamedTuple):
    """One array backend.

    Attributes
    ----------
    name : str
    check_device : callable (device) -> device
        The checked device (raises ValueError naming ``device`` if it is not there).
    ops : callable (device) -> ArrayOps
        The array operations on that device (all N nodes in axis -3).
    streams : callable (seed, replica_ids, node_ids, device) -> streams
        The oracle's draws (:class:`simsgd.streams.NodeStreams` or its torch twin).
    compiled_loop : callable or None
        ``(problem, run, lr, ops, streams, recorder, progress) -> Trace`` fusing blocks of steps
        (see :mod:`simsgd.compiled`); None where there is none.
    """

    name: str
    check_device: Callable
    ops: Callable[[object], ArrayOps]
    streams: Callable
    compiled_loop: Callable | None = None


def _cpu(device):
    if device != "cpu":
        raise ValueError(f"device={device!r} needs backend='torch' (the NumPy backend runs on 'cpu')")
    return device


def _numpy() -> Backend:
    return Backend(
        "numpy", _cpu, lambda device: NUMPY, lambda seed, ids, nodes, device: NodeStreams(seed, ids, nodes)
    )


def _torch() -> Backend:
    try:
        from .compiled import compiled_loop
        from .streams import TorchNodeStreams
        from .torch_ops import TorchOps, check_device
    except ImportError:
        raise ValueError("backend='torch' needs torch (pip install '.[torch]')") from None
    return Backend("torch", check_device, TorchOps, TorchNodeStreams, compiled_loop)


def _lanes() -> Backend:
    try:
        from .fused import fused_loop
        from .lanes import LanesOps, LanesStreams
        from .torch_ops import check_device
    except ImportError:
        raise ValueError("backend='lanes' needs torch (pip install '.[torch]')") from None
    return Backend("lanes", check_device, LanesOps, LanesStreams, fused_loop)


_LOADERS: dict[str, Callable[[], Backend]] = {"numpy": _numpy, "torch": _torch, "lanes": _lanes}


def register(name: str, loader: Callable[[], Backend]) -> None:
    """Make ``backend=name`` use ``loader()`` (called on first use; may raise ValueError)."""
    if not isinstance(name, str) or not name or name in _LOADERS:
        raise ValueError(f"name must be a new non-empty string, got {name!r} (taken: {names()})")
    _LOADERS[name] = loader


def names() -> tuple[str, ...]:
    return tuple(_LOADERS)


def get(name: str) -> Backend:
    """The backend called ``name``.

    Raises
    ------
    ValueError
        An unknown name, or a backend whose library is missing.
    """
    check_choice("backend", name, names())
    return _LOADERS[name]()
