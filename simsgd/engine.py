"""The simulated multi-node engine: :func:`simulate`, Algorithm 2 vectorised over replicas and nodes.

It checks the options (:class:`simsgd.algorithm.Config`, :func:`simsgd.run.prepare`), picks the
backend (:mod:`simsgd.backends`) and runs the one driver loop (:mod:`simsgd.loop`), eager or
compiled, recording a :class:`~simsgd.trace.Trace` (:mod:`simsgd.recorder`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from . import backends
from ._checks import check_choice
from .algorithm import Config
from .compression import Compressor
from .loop import run_traced
from .options import (
    DegenerateQR,
    ErrorFeedback,
    FloatDtype,
    Method,
    OptimizerName,
    Orthogonalization,
    Restart,
)
from .problems.base import Problem
from .recorder import RECORD_FIELDS, Recorder
from .restarts import RestartRule
from .run import memory_estimate, prepare
from .trace import Diverged, Trace

__all__ = ["simulate", "Engine", "default_engine", "Diverged", "memory_estimate", "RECORD_FIELDS"]


class Engine(NamedTuple):
    """Where :func:`simulate` runs when its call names no ``backend``: see :func:`default_engine`."""

    backend: str = "numpy"
    device: str = "cpu"


_ENGINE: ContextVar[Engine | None] = ContextVar("simsgd_engine", default=None)


def default_engine(backend: str = "numpy", device: str = "cpu"):
    """A context in which :func:`simulate` calls that name no ``backend`` run on this one.

    What a study's ``--backend``/``--device`` set, so that every ``simulate`` call below the
    command line uses them without each study passing them down. A call naming its own
    ``backend`` keeps it. The options are checked now, before the block runs.

    Raises
    ------
    ValueError
        An unknown backend, torch missing, or a device that is not there.

    Examples
    --------
    >>> with default_engine("torch"):  # doctest: +SKIP
    ...     trace = simulate(problem)  # on torch, CPU
    """
    backends.get(backend).check_device(device)
    return _engine_context(Engine(backend, device))


@contextlib.contextmanager
def _engine_context(engine: Engine) -> Iterator[Engine]:
    token = _ENGINE.set(engine)
    try:
        yield engine
    finally:
        _ENGINE.reset(token)


def simulate(
    problem: Problem,
    method: Method | str | Compressor = "powersgd+",
    nodes: int = 4,
    rank: int = 1,
    restart_period: int | RestartRule = 10,
    optimizer: OptimizerName = "msgd",
    lr: float | Callable[[int], float] = 1e-3,
    momentum: float = 0.9,
    steps: int = 1000,
    replicas: int = 1000,
    seed: int = 0,
    q_init: ArrayLike | None = None,
    dtype: FloatDtype = "float64",
    *,
    error_feedback: ErrorFeedback = "local",
    orthogonalization: Orthogonalization = "householder",
    orthogonalization_epsilon: float = 0.0,
    degenerate_qr: DegenerateQR = "previous",
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    x0: ArrayLike | None = None,
    replica_ids: ArrayLike | None = None,
    progress: bool | None = None,
    power_steps: int = 1,
    weight_decay: float = 0.0,
    restart: Restart = "svd",
    restart_oversampling: int = 5,
    restart_power_steps: int = 1,
    backend: str | None = None,
    device: str | None = None,
    compile: bool = False,
    record: Iterable[str] | str | None = None,
) -> Trace:
    """Run Algorithm 2 on ``replicas`` independent copies of an N-node system.

    Parameters
    ----------
    problem : problem object
        See :mod:`simsgd.problems`.
    method : str or Compressor
        A registered name (:func:`simsgd.registry.names`): "powersgd" (SSP-COMP every step),
        "powersgd+" (the restart compressor when the rule says so, t mod τ = 0 by default, and
        SSP-COMP otherwise), "full" (uncompressed averaging), "galore", "power-iteration" (K =
        ``power_steps`` power steps), the baselines "topk", "randomk", "qsgd", "sign"
        (:mod:`simsgd.baselines`, sized by ``rank``), or a name you registered; or a
        :class:`~simsgd.compression.Compressor` object (its own options then apply).
    nodes : int, N ≥ 1
    rank : int, 1 ≤ r ≤ min(m, n)
    restart_period : int τ ≥ 1, or a RestartRule
        When PowerSGD+ and GaLore restart: every τ steps (t mod τ = 0), or any rule of
        :mod:`simsgd.restarts` (e.g. ``Geometric(10)``, the state-dependent ``ErrorGrowth()``).
    optimizer : {"sgd", "msgd", "adam", "adamw"}
    lr : float > 0 or callable t -> float
        η_t.
    momentum : float in [0, 1)
        μ of MSGD (7c).
    steps : int, T ≥ 1
    replicas : int, R ≥ 1 (ignored when ``replica_ids`` is given)
    seed : int ≥ 0
        Replica k's trajectory depends only on (seed, k), not on R.
    q_init : array (n, r) or (R, n, r), optional
        Q_{-1}; default standard normal per replica.
    dtype : {"float32", "float64"}
    error_feedback : {"local", "global", "none"}
        e^{(i)} ← Δ^{(i)} − P̃ Q^{(i)ᵀ} (paper), e^{(i)} ← Δ^{(i)} − Δ̂ (PyTorch's hook), or no
        error feedback.
    orthogonalization : {"householder", "lapack", "gram-schmidt"}
    orthogonalization_epsilon : float ≥ 0 (Gram–Schmidt only)
    degenerate_qr : {"previous", "native", "zero", "raise"}
        Convention when P is rank-deficient; see :mod:`simsgd.orthogonalize`.
    betas, adam_eps : Adam's (β1, β2) and ε.
    x0 : array (m, n) or (R, m, n), optional
        Overrides ``problem.x0``.
    replica_ids : array of int, optional
        Global indices of the replicas to run (default ``range(replicas)``).
    progress : bool or None
        Progress bar on stderr; None shows it only on a terminal.
    power_steps : int, K ≥ 1
        Power-iteration steps per iteration of ``method="power-iteration"``.
    weight_decay : float, λ ≥ 0
        Decoupled weight decay, X ← (1 − ηλ) X − η·step ("sgd", "msgd", "adamw"; "adam" takes 0).
    restart : {"svd", "randomized", "random", "power"}
        PowerSGD+'s restart compressor (Remark 2): exact top-r SVD of the node average (the
        paper's), a Halko–Martinsson–Tropp range finder, a fresh Gaussian basis, or power
        iteration from a random start; see :func:`simsgd.compressors.restart_step`.
    restart_oversampling : int, p ≥ 0
        Extra sketch columns of ``"randomized"``.
    restart_power_steps : int, K ≥ 0 ("randomized"), ≥ 1 ("power")
        Power steps of ``"randomized"`` and ``"power"``.
    backend : {"numpy", "torch"} or a registered name, optional
        The array library (:mod:`simsgd.backends`; torch needs an oracle written with
        :func:`simsgd.ops.array_ops`, as the built-in problems are — a NumPy-only oracle is
        refused with one line). Both draw the same ξ; trajectories agree to rounding.
        Default: that of the enclosing :func:`default_engine`, else "numpy".
    device : {"cpu", "cuda", "cuda:k"}, optional
        Torch only. Default: the enclosing :func:`default_engine`'s when ``backend`` is
        not given, else "cpu".
    compile : bool
        Torch only: run blocks of steps through ``torch.compile`` (:mod:`simsgd.compiled`; the
        first call compiles, seconds to tens of seconds on CPU).
    record : iterable of str, optional
        The per-step fields of :data:`RECORD_FIELDS` to record (default all); the others
        are None in the trace. Each costs a pass over the replicas per step.

    Returns
    -------
    Trace

    Raises
    ------
    ValueError
        An option outside its range, or an oracle returning the wrong shape.
    FloatingPointError
        :class:`Diverged`: a non-finite gradient or iterate, naming the step and the
        replicas (a result, e.g. of η too large; its ``step`` and ``replica_ids`` say where).
    """
    options = dict(locals())  # every argument, by name: the Config takes its own
    config = Config.from_options(options)
    run = prepare(
        problem,
        config,
        nodes=nodes,
        steps=steps,
        replicas=replicas,
        seed=seed,
        q_init=q_init,
        dtype=dtype,
        x0=x0,
        replica_ids=replica_ids,
        lr=lr,
    )
    if backend is None:  # the enclosing default_engine's (its device too, unless one is named)
        engine = _ENGINE.get() or Engine()
        backend, device = engine.backend, engine.device if device is None else device
    device = "cpu" if device is None else device
    impl, record = _check_backend(backend, device, compile, record)
    ops = impl.ops(impl.check_device(device))
    streams = impl.streams(run.seed, run.replica_ids, np.arange(run.nodes), device)
    recorder = Recorder(problem, run, ops, record=record)
    if compile:
        return impl.compiled_loop(problem, run, lr, ops, streams, recorder, progress)
    return run_traced(problem, run, lr, streams, recorder, ops=ops, progress=progress)


def _check_backend(backend, device, compile, record):
    """Check the backend options (before any computation); returns the backend and ``record`` as a tuple."""
    impl = backends.get(backend)
    if not isinstance(compile, bool):
        raise ValueError(f"compile must be True or False, got {compile!r}")
    if compile and impl.compiled_loop is None:
        raise ValueError(
            f"compile=True needs a backend with a compiled loop (backend='torch'), got {backend!r}"
        )
    impl.check_device(device)
    record = RECORD_FIELDS if record is None else (record,) if isinstance(record, str) else tuple(record)
    for name in record:
        check_choice("record", name, RECORD_FIELDS)
    return impl, record
