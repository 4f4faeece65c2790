"""The compressor interface: step (7b) of Algorithm 2 for any compressor.

A compressor is any object with the members of :class:`Compressor`. It is pure, in the
manner of optax: its state is explicit (:meth:`Compressor.init` makes it, :meth:`Compressor.compress`
returns the next one) and nothing is mutated, so one object serves every replica, both
engines (NumPy, torch eager and compiled) and the DDP hook
(:func:`simsgd.distributed.hook_for`). It is written against :class:`simsgd.ops.ArrayOps`:
the node axis is axis -3 of ``deltas`` and a node average is ``ops.node_mean`` — a mean over
that axis in simulation, an ``all_reduce`` across processes in torch.distributed — so a
compressor states its communication where it happens, as Algorithm 1 does.

Algorithm 2 around it (:func:`simsgd.algorithm.step`) is fixed: Δ_t^{(i)} = g_t^{(i)} + e_t^{(i)}
(7a), then ``compress``, then e_{t+1}^{(i)} = Δ_t^{(i)} − Δ̂_t^{(i)} (local error feedback, the
paper's) or Δ_t^{(i)} − Δ̂_t (global, PyTorch's hook) when the compressor keeps an error memory,
then the base optimiser on Δ̂_t (7c).

Register a compressor under a name with :func:`simsgd.registry.register` (then
``simulate(problem, method="name")``), or pass the object itself (``method=MyCompressor()``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

from .ops import Array, ArrayOps

__all__ = ["Compression", "Compressor", "Draws", "missing_members"]


class Compression(NamedTuple):
    """What one step of a compressor produced.

    Attributes
    ----------
    global_hat : (..., m, n)
        Δ̂_t, the node-averaged update every node applies.
    local_hat : (..., N, m, n) or None
        Δ̂_t^{(i)}, what node i's message stands for (its local error is Δ_t^{(i)} − Δ̂_t^{(i)});
        None when not asked for (``want_local=False``) or when there is no error memory.
    restart : bool or bool array (...)
        Whether this step restarted (every replica alike, or per replica).
    degenerate : bool array (...) or None
        Where a QR met a rank-deficient P relative to its inputs (see :mod:`simsgd.orthogonalize`).
    degenerate_own_scale : bool array (...) or None
        The same relative to P's own size.
    """

    global_hat: Array
    local_hat: Array | None
    restart: Any = False
    degenerate: Array | None = None
    degenerate_own_scale: Array | None = None


@runtime_checkable
class Draws(Protocol):
    """The random numbers a compressor may ask for at one step (counter-based: a pure function of
    (seed, replica, t, node), so a replica's numbers do not depend on R or on the backend).
    """

    def shared(self, kind: str, shape: tuple, like: Array) -> Array:
        """Draws the same on every node: ``(..., *shape)`` in ``like``'s library and dtype.
        ``kind`` is "normal", "uniform" (on [0, 1)) or "rademacher".
        """
        ...

    def local(self, kind: str, shape: tuple, like: Array) -> Array:
        """Each held node's own draws: ``(..., N_local, *shape)``."""
        ...


@runtime_checkable
class Compressor(Protocol):
    """Step (7b) of Algorithm 2: N nodes' Δ_t^{(i)} in, Δ̂_t (and each node's Δ̂_t^{(i)}) out.

    Attributes
    ----------
    name : str
        What traces and tables call it.
    error_feedback : bool
        Whether Algorithm 2 keeps an error memory e^{(i)} for it (False: the memory stays 0, as
        for uncompressed averaging and GaLore).
    period : int or None
        Its restarts repeat every ``period`` steps (a compiled engine fuses blocks of that many
        steps); None when it never restarts or its restarts are not periodic.
    """

    name: str
    error_feedback: bool
    period: int | None

    def basis_shape(self, shape: tuple[int, int]) -> tuple[int, int] | None:
        """(n, r) of the warm-start basis Q_{−1} it needs for X of ``shape`` (m, n), or None.

        The engine draws Q_{−1} from the run's seed (or takes ``q_init``) and hands it to :meth:`init`.
        """
        ...

    def init(self, q0: Array | None) -> Any:
        """The state before step 0, from Q_{−1} (..., n, r) or None."""
        ...

    def restart_at(self, t: int) -> bool | None:
        """Whether step t restarts, when t alone decides; None when the run's state decides."""
        ...

    def floats(self, t: int, shape: tuple[int, int], restart: bool) -> float:
        """Floats one node sends at step t (``restart``: whether the step restarts)."""
        ...

    def compress(
        self,
        state: Any,
        deltas: Array,
        t: int,
        *,
        errors: Array,
        ops: ArrayOps,
        draws: Draws | None,
        want_local: bool,
    ) -> tuple[Compression, Any]:
        """Step (7b) at step t.

        Parameters
        ----------
        state
            The compressor's state after step t − 1 (:meth:`init`'s at t = 0).
        deltas : (..., N, m, n)
            Δ_t^{(i)} = g_t^{(i)} + e_t^{(i)} of the nodes held here.
        t : int
        errors : (..., N, m, n)
            e_t^{(i)}, for rules that decide a restart from the error memory.
        ops : ArrayOps
            The array library; ``ops.node_mean`` is the communication.
        draws : Draws or None
            Random numbers for randomised compressors (None: the caller has none to give).
        want_local : bool
            Whether Δ̂_t^{(i)} is needed (local error feedback).

        Returns
        -------
        Compression, state
        """
        ...


def missing_members(obj) -> list[str]:
    """The members of :class:`Compressor` that ``obj`` lacks (empty: it is one)."""
    members = [name for name in vars(Compressor) if not name.startswith("_")] + list(
        Compressor.__annotations__
    )
    return sorted({name for name in members if not hasattr(obj, name)})
