"""The simulated multi-node engine: Algorithm 2 vectorised over replicas and nodes."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from . import algorithm
from ._checks import check_choice, check_float_dtype, check_int, check_memory, check_real, check_seed
from ._progress import Progress
from .compressors import restart_sketch_shape
from .ops import NUMPY, array_ops
from .options import (
    DEGENERATE_QR,
    OPTIMIZERS,
    ORTHOGONALIZATIONS,
    RESTARTS,
    DegenerateQR,
    ErrorFeedback,
    FloatDtype,
    Method,
    OptimizerName,
    Orthogonalization,
    Restart,
)
from .problems.base import Problem
from .streams import NodeStreams, initial_q
from .trace import Trace

__all__ = [
    "simulate",
    "make_config",
    "resolve_lr",
    "check_problem",
    "prepare",
    "checked_grads",
    "Recorder",
    "Run",
    "Diverged",
    "memory_estimate",
    "restart_sketch",
    "RESTART_STREAM",
    "run_loop",
    "run_traced",
    "BACKENDS",
    "RECORD_FIELDS",
    "Engine",
    "default_engine",
    "residual_terms",
]

BACKENDS = ("numpy", "torch")
RECORD_FIELDS = ("grad_norm_sq", "loss", "error_norm_sq", "momentum_norm_sq")
"""The per-step fields of a :class:`Trace` that ``record=`` may select."""


class Engine(NamedTuple):
    """Where :func:`simulate` runs when its call names no ``backend``: see :func:`default_engine`."""

    backend: Literal["numpy", "torch"] = "numpy"
    device: str = "cpu"


_ENGINE: ContextVar[Engine | None] = ContextVar("simsgd_engine", default=None)


def default_engine(backend: Literal["numpy", "torch"] = "numpy", device: str = "cpu"):
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
    _check_backend(backend, device, False, None)
    return _engine_context(Engine(backend, device))


@contextlib.contextmanager
def _engine_context(engine: Engine) -> Iterator[Engine]:
    token = _ENGINE.set(engine)
    try:
        yield engine
    finally:
        _ENGINE.reset(token)


class Diverged(FloatingPointError):
    """A non-finite gradient or iterate: a result of the run (e.g. η too large), not a bad input.

    Attributes
    ----------
    step : int
        The step t at which the values stopped being finite.
    replica_ids : ndarray of int
        The replicas (global indices) holding a NaN or inf at that step.
    replicas : int
        How many replicas the run had.
    """

    def __init__(self, message, step, replica_ids, replicas):
        super().__init__(message)
        self.step, self.replica_ids, self.replicas = step, replica_ids, replicas


def make_config(
    *,
    method,
    rank,
    restart_period,
    optimizer,
    momentum,
    betas=(0.9, 0.999),
    adam_eps=1e-8,
    error_feedback="local",
    orthogonalization="householder",
    orthogonalization_epsilon=0.0,
    degenerate_qr="previous",
    shape=None,
    power_steps=1,
    weight_decay=0.0,
    restart="svd",
    restart_oversampling=5,
    restart_power_steps=1,
) -> algorithm.Config:
    """Check every option of Algorithm 2 and return its :class:`~simsgd.algorithm.Config`."""
    check_choice("method", method, algorithm.METHODS)
    if shape is not None:
        check_int("rank", rank, 1, min(shape))
    else:
        check_int("rank", rank, 1)
    check_int("restart_period", restart_period, 1)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_real("momentum", momentum, 0.0, 1.0, high_open=True)
    if len(tuple(betas)) != 2:
        raise ValueError(f"betas must be a pair (β1, β2) in [0, 1), got {betas!r}")
    for name, b in zip(("betas[0]", "betas[1]"), betas):
        check_real(name, b, 0.0, 1.0, high_open=True)
    check_real("adam_eps", adam_eps, 0.0, low_open=True)
    check_choice("error_feedback", error_feedback, algorithm.ERROR_FEEDBACKS)
    check_choice("orthogonalization", orthogonalization, ORTHOGONALIZATIONS)
    check_real("orthogonalization_epsilon", orthogonalization_epsilon, 0.0)
    check_choice("degenerate_qr", degenerate_qr, DEGENERATE_QR)
    power_steps = check_int("power_steps", power_steps, 1)
    check_real("weight_decay", weight_decay, 0.0)
    if optimizer == "adam" and weight_decay != 0:
        raise ValueError(
            "weight_decay must be 0 for optimizer='adam'; use optimizer='adamw' for decoupled decay"
        )
    check_choice("restart", restart, RESTARTS)
    check_int("restart_oversampling", restart_oversampling, 0)
    check_int("restart_power_steps", restart_power_steps, 0 if restart == "randomized" else 1)
    return algorithm.Config(
        method,
        int(rank),
        int(restart_period),
        optimizer,
        float(momentum),
        tuple(float(b) for b in betas),
        float(adam_eps),
        error_feedback,
        orthogonalization,
        float(orthogonalization_epsilon),
        degenerate_qr,
        power_steps,
        float(weight_decay),
        restart,
        int(restart_oversampling),
        int(restart_power_steps),
    )


def resolve_lr(lr, t: int) -> float:
    """η_t from a constant or a callable ``lr(t)``; must be finite and > 0."""
    value = lr(t) if callable(lr) else lr
    name = f"lr({t})" if callable(lr) else "lr"
    return check_real(name, value, 0.0, low_open=True)


def check_problem(problem):
    """The problem's (m, n) after checking it has the oracle protocol."""
    for attr in ("shape", "x0", "loss", "grad", "stochastic_grads"):
        if not hasattr(problem, attr):
            raise ValueError(f"problem must have attribute {attr!r} (see simsgd.problems)")
    shape = tuple(int(s) for s in problem.shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"problem.shape must be (m, n) with m, n ≥ 1, got {problem.shape!r}")
    return shape


def _initial_q(q_init, seed, replica_ids, n, rank, dtype):
    if q_init is None:
        return initial_q(seed, replica_ids, n, rank).astype(dtype)
    q = np.asarray(q_init, dtype=dtype)
    R = len(replica_ids)
    if q.shape == (n, rank):
        q = np.broadcast_to(q, (R, n, rank)).copy()
    if q.shape != (R, n, rank) or not np.all(np.isfinite(q)):
        raise ValueError(
            f"q_init must be a finite array of shape ({n}, {rank}) or ({R}, {n}, {rank}), "
            f"got shape {np.shape(q_init)}"
        )
    return q


def _check_finite(what, t, replica_ids, values, ops=NUMPY):
    """Raise :class:`Diverged` naming the replicas (axis 0 of ``values``) that hold a NaN or inf."""
    if ops.all_finite(values):  # one flat reduction on the hot path; per replica only on failure
        return
    values = ops.asnumpy(values)
    _raise_non_finite(what, t, replica_ids, ~np.isfinite(values).reshape(len(values), -1).all(axis=1))


def _raise_non_finite(what, t, replica_ids, bad):
    """Raise :class:`Diverged` naming the replicas where ``bad`` (R,) is true."""
    ids = replica_ids[np.flatnonzero(bad)]
    shown = ", ".join(map(str, ids[:5])) + (", …" if ids.size > 5 else "")
    raise Diverged(
        f"non-finite {what} at step t={t} in {ids.size} replica(s): {shown}", t, ids, len(replica_ids)
    )


def memory_estimate(replicas, steps, nodes, shape, rank=1, dtype="float64") -> float:
    """Bytes :func:`simulate` needs, roughly, before it allocates them (a float: sizes may be huge).

    The record is 4 float64 arrays of (R, T+1) and about 64 bytes per step (the floats sent,
    restart and degenerate-QR counts, and the Python list they are built from); a step holds
    about 8 arrays of (R, N, m, n) (gradients, Δ, errors, Δ̂^{(i)}, NumPy's temporaries) and 8
    of (R, m, n) or (R, n, r), plus a fixed 256 KiB of small temporaries (a first call's
    imports, about 0.3 MB more, are not counted). Checked against tracemalloc's peak of a
    warm run in the tests (peak ≤ estimate ≤ 3·peak).
    """
    m, n = shape
    itemsize = np.dtype(dtype).itemsize
    per_replica = 4 * 8 * (float(steps) + 1) + itemsize * (
        8 * float(nodes) * m * n + 8 * (m * n + (m + n) * rank)
    )
    return float(replicas) * per_replica + 64.0 * float(steps) + 2.0**18


def simulate(
    problem: Problem,
    method: Method = "powersgd+",
    nodes: int = 4,
    rank: int = 1,
    restart_period: int = 10,
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
    backend: Literal["numpy", "torch"] | None = None,
    device: str | None = None,
    compile: bool = False,
    record: Iterable[str] | str | None = None,
) -> Trace:
    """Run Algorithm 2 on ``replicas`` independent copies of an N-node system.

    Parameters
    ----------
    problem : problem object
        See :mod:`simsgd.problems`.
    method : {"powersgd", "powersgd+", "full", "galore", "power-iteration"}
        SSP-COMP every step; SVD-COMP when t mod τ = 0 and SSP-COMP otherwise; or
        uncompressed averaging; or the baselines of :data:`simsgd.algorithm.METHODS`.
    nodes : int, N ≥ 1
    rank : int, 1 ≤ r ≤ min(m, n)
    restart_period : int, τ ≥ 1 (PowerSGD+ and GaLore only)
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
    backend : {"numpy", "torch"}, optional
        The array library (see :mod:`simsgd.torch_engine`; needs torch and an oracle
        written with :func:`simsgd.ops.array_ops`, as the built-in problems are). Both
        draw the same ξ; trajectories agree to rounding. Default: that of the enclosing
        :func:`default_engine`, else "numpy".
    device : {"cpu", "cuda", "cuda:k"}, optional
        Torch only. Default: the enclosing :func:`default_engine`'s when ``backend`` is
        not given, else "cpu".
    compile : bool
        Torch only: run blocks of steps through ``torch.compile`` (the first call compiles,
        tens of seconds on CPU).
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
    run = prepare(
        problem,
        method=method,
        nodes=nodes,
        rank=rank,
        restart_period=restart_period,
        optimizer=optimizer,
        momentum=momentum,
        steps=steps,
        replicas=replicas,
        seed=seed,
        q_init=q_init,
        dtype=dtype,
        error_feedback=error_feedback,
        orthogonalization=orthogonalization,
        orthogonalization_epsilon=orthogonalization_epsilon,
        degenerate_qr=degenerate_qr,
        betas=betas,
        adam_eps=adam_eps,
        x0=x0,
        replica_ids=replica_ids,
        lr=lr,
        power_steps=power_steps,
        weight_decay=weight_decay,
        restart=restart,
        restart_oversampling=restart_oversampling,
        restart_power_steps=restart_power_steps,
    )
    if backend is None:  # the enclosing default_engine's (its device too, unless one is named)
        engine = _ENGINE.get() or Engine()
        backend, device = engine.backend, engine.device if device is None else device
    device = "cpu" if device is None else device
    record = _check_backend(backend, device, compile, record)
    if backend == "torch":
        from .torch_engine import simulate_torch

        return simulate_torch(problem, run, lr, device, compile, record, progress)
    streams = NodeStreams(run.seed, run.replica_ids, np.arange(run.nodes))
    return run_traced(problem, run, lr, streams, Recorder(problem, run, record=record), progress=progress)


def run_traced(problem, run, lr, streams, recorder, *, ops=NUMPY, progress=None, blocks=None) -> Trace:
    """:func:`run_loop` with the checked oracle of ``streams`` (:func:`checked_grads`), returning
    ``recorder``'s :class:`Trace`: the run of every in-process engine (NumPy, torch eager and
    compiled; ``blocks`` as :func:`run_loop`'s).
    """
    state = run_loop(
        run,
        lr,
        lambda x, t: checked_grads(problem, x, run, streams.at(t), recorder.grad_at(x)),
        ops=ops,
        recorder=recorder,
        progress=progress,
        blocks=blocks,
    )
    return recorder.trace(state.x, state.q, lr)


def _check_backend(backend, device, compile, record):
    """Check the backend options (before any computation); returns ``record`` as a tuple."""
    check_choice("backend", backend, BACKENDS)
    if not isinstance(compile, bool):
        raise ValueError(f"compile must be True or False, got {compile!r}")
    if backend == "numpy" and (device != "cpu" or compile):
        raise ValueError(f"device={device!r} and compile={compile} need backend='torch'")
    if backend == "torch":
        try:
            from .torch_engine import check_device
        except ImportError:
            raise ValueError("backend='torch' needs torch (pip install '.[torch]')") from None
        check_device(device)
    record = RECORD_FIELDS if record is None else (record,) if isinstance(record, str) else tuple(record)
    for name in record:
        check_choice("record", name, RECORD_FIELDS)
    return record


def run_loop(
    run, lr, oracle, *, ops=NUMPY, recorder=None, progress=None, label="simulate", on_step=None, blocks=None
):
    """Algorithm 2's driver loop: the one loop every engine runs.

    Parameters
    ----------
    run : Run
        From :func:`prepare`.
    lr : float or callable
        η_t.
    oracle : callable (x, t) -> grads
        The checked g_t^{(i)} of the nodes held here, (R, N_local, m, n) in ``ops``' arrays.
    ops : ops object
        :data:`~simsgd.ops.NUMPY`, :class:`simsgd.torch_engine.TorchOps` or a distributed one.
    recorder : Recorder, optional
    progress : bool or None
        Progress bar on stderr, named ``label`` (None: only on a terminal).
    on_step : callable (t, state, grads, lr_t, new_state, info), optional
        Called after each single step, before recording (e.g. to compare with another engine).
    blocks : (K, callable), optional
        ``fn(state, t) -> (state, rows)`` runs steps t, …, t+K−1 at once (a fused, compiled
        block; ``rows`` for :meth:`Recorder.record_block`); used wherever 0 < t ≡ 0 (mod K)
        and t + K ≤ T, single steps elsewhere.

    Returns
    -------
    algorithm.State
        After T steps.
    """
    bar = Progress(run.steps, progress, label=label)
    x = ops.from_numpy(run.x)
    q = None if run.q is None else ops.from_numpy(run.q)
    state, t = None, 0
    while t < run.steps:
        if blocks is not None and state is not None and t % blocks[0] == 0 and t + blocks[0] <= run.steps:
            state, rows = blocks[1](state, t)
            if recorder is not None:
                recorder.record_block(t, rows)
            t += blocks[0]
        else:
            grads = oracle(x, t)
            if state is None:
                state = algorithm.init(x, q, grads, run.config)
            eta = resolve_lr(lr, t)
            sketch = restart_sketch(run, t)
            sketch = None if sketch is None else ops.from_numpy(sketch)
            new_state, info = algorithm.step(state, grads, t, eta, run.config, ops, sketch=sketch)
            if on_step is not None:
                on_step(t, state, grads, eta, new_state, info)
            if recorder is not None:
                if info.svd_step:  # ||Δ̂ − Δ̄||²/||Δ̄||² of the restart compressor (Lemma 2's 1 − δ')
                    recorder.record_residual(t, info.delta_hat, ops.node_mean(grads + state.error))
                recorder.record_step(t, new_state, info)
            state = new_state
            t += 1
        x = state.x
        bar.update(t)
    return state


class Run(NamedTuple):
    """The checked options of one run of Algorithm 2 (see :func:`prepare`).

    x : (R, m, n) X_0 per replica;  q : (R, n, r) Q_{-1}, or None for ``"full"``.
    """

    config: algorithm.Config
    nodes: int
    steps: int
    seed: int
    dtype: np.dtype
    replica_ids: np.ndarray
    shape: tuple
    x: np.ndarray
    q: np.ndarray | None


def prepare(
    problem,
    *,
    method,
    nodes,
    rank,
    restart_period,
    optimizer,
    momentum,
    steps,
    replicas,
    seed,
    q_init,
    dtype,
    error_feedback,
    orthogonalization,
    orthogonalization_epsilon,
    degenerate_qr,
    betas,
    adam_eps,
    x0,
    replica_ids,
    lr,
    power_steps=1,
    weight_decay=0.0,
    restart="svd",
    restart_oversampling=5,
    restart_power_steps=1,
) -> Run:
    """Check the options of :func:`simulate` and build X_0 and Q_{-1}; shared by every engine.

    Raises
    ------
    ValueError
        An option outside its range.
    """
    dtype = check_float_dtype("dtype", dtype)  # first: nothing is computed with a dtype we refuse
    m, n = check_problem(problem)
    config = make_config(
        method=method,
        rank=rank,
        restart_period=restart_period,
        optimizer=optimizer,
        momentum=momentum,
        betas=betas,
        adam_eps=adam_eps,
        error_feedback=error_feedback,
        orthogonalization=orthogonalization,
        orthogonalization_epsilon=orthogonalization_epsilon,
        degenerate_qr=degenerate_qr,
        shape=(m, n),
        power_steps=power_steps,
        weight_decay=weight_decay,
        restart=restart,
        restart_oversampling=restart_oversampling,
        restart_power_steps=restart_power_steps,
    )
    nodes = check_int("nodes", nodes, 1)
    fixed = getattr(problem, "nodes", None)  # per-node σ_i or per-node data fix N
    if fixed is not None and nodes != fixed:
        raise ValueError(
            f"nodes must equal problem.nodes = {fixed} (the problem is built for it), got {nodes}"
        )
    steps = check_int("steps", steps, 1)
    seed = check_seed("seed", seed)
    if replica_ids is None:
        R = check_int("replicas", replicas, 1)
    else:
        replica_ids = np.asarray(replica_ids)
        if (
            replica_ids.ndim != 1
            or replica_ids.size < 1
            or not np.issubdtype(replica_ids.dtype, np.integer)
            or replica_ids.min() < 0
            or replica_ids.max() >= 2**63
        ):
            raise ValueError("replica_ids must be a non-empty 1-D array of integers in [0, 2⁶³)")
        R = replica_ids.size
    if not callable(lr):
        resolve_lr(lr, 0)
    check_memory(  # before anything of size R is allocated
        f"simulate with {R} replicas, {steps} steps, {nodes} nodes and X of shape {m}×{n}",
        memory_estimate(R, steps, nodes, (m, n), config.rank, dtype),
        "fewer replicas or steps (or run the replicas in batches with replica_ids)",
    )
    if replica_ids is None:
        replica_ids = np.arange(R)

    x = _checked_x0(problem.x0 if x0 is None else x0, (m, n), R, dtype)
    x = np.broadcast_to(x, (R, m, n)).copy()
    q = _initial_q(q_init, seed, replica_ids, n, config.rank, dtype) if method != "full" else None
    return Run(config, nodes, steps, seed, dtype, replica_ids, (m, n), x, q)


def residual_terms(delta_hat, delta_mean, ops=NUMPY):
    """||Δ̂_t − Δ̄_t||² and ||Δ̄_t||² (R,), the numerator and denominator of
    ``Trace.restart_residual`` (Lemma 2's 1 − δ' of the restart compressor).
    """
    return ops.sqnorm(delta_hat - delta_mean), ops.sqnorm(delta_mean)


def _checked_x0(x0, shape, R, dtype):
    """X_0 as ``dtype``: shape (m, n) or (R, m, n), every entry finite in that dtype."""
    m, n = shape
    with np.errstate(over="ignore"):  # a float64 X_0 beyond float32's range is reported below
        x = np.asarray(x0, dtype=dtype)
    if x.shape not in ((m, n), (R, m, n)):
        raise ValueError(f"x0 must be an array of shape ({m}, {n}) or ({R}, {m}, {n}), got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(np.asarray(x0, np.float64)[index])
        raise ValueError(
            f"x0 must be finite in {dtype.name}: x0{list(index)} = {value!r} "
            f"({int(bad.sum())} non-finite entr{'y' if bad.sum() == 1 else 'ies'})"
        )
    return x


RESTART_STREAM = 2**40
"""Node id of the restart sketches' stream: one draw per replica shared by every node,
apart from every oracle's stream (node ids < N)."""


def restart_sketch(run: Run, t: int):
    """The random matrix a randomised PowerSGD+ restart at step t uses, (R, a, b), or None.

    Drawn from the counter-based streams at (seed, replica, t, :data:`RESTART_STREAM`), so
    every node of a distributed run draws the same matrix as the simulator.
    """
    cfg = run.config
    if cfg.restart == "svd" or not cfg.is_svd_step(t) or cfg.method != "powersgd+":
        return None
    shape = restart_sketch_shape(cfg, *run.shape)
    return (
        NodeStreams(run.seed, run.replica_ids, [RESTART_STREAM]).at(t).normal(shape)[:, 0].astype(run.dtype)
    )


def _takes_grad(problem) -> bool:
    """Whether ``problem.stochastic_grads`` takes ``grad=`` (∇f(X), computed by the caller)."""
    try:
        return "grad" in inspect.signature(problem.stochastic_grads).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


def checked_grads(problem, x, run: Run, draws, grad=None):
    """The oracle's g_t^{(i)} for the nodes ``draws.node_ids``, checked: (R, N_local, m, n),
    in ``x``'s array library. ``grad``: ∇f(x), passed on to an oracle that takes it.

    Raises
    ------
    ValueError
        Wrong shape.  FloatingPointError: a non-finite gradient, naming the replicas.
    """
    shape = (run.replica_ids.size, draws.node_ids.size) + run.shape
    if grad is None:
        grads = problem.stochastic_grads(x, run.nodes, draws)
    else:
        grads = problem.stochastic_grads(x, run.nodes, draws, grad=grad)
    if not hasattr(grads, "shape") or grads.shape != shape:
        raise ValueError(
            f"problem.stochastic_grads must return shape (R, N, m, n) = "
            f"{shape}, got {getattr(grads, 'shape', type(grads))}"
        )
    ops = array_ops(x)
    grads = ops.node_layout(ops.asarray(grads, like=x))
    _check_finite("stochastic gradient", draws.step, run.replica_ids, grads, ops)
    return grads


class Recorder:
    """The per-step record of a run, filled in step by step and returned as a :class:`Trace`.

    Shared by every engine, so all record the same fields the same way. The fields are
    computed in the run's array library (``ops``) and moved to NumPy one (R,) row at a time.

    Parameters
    ----------
    problem, run
        As :func:`run_loop`.
    ops : ops object
        The arrays of the run (default NumPy).
    record : tuple of str
        The fields of :data:`RECORD_FIELDS` to record; the others are None in the trace.
    error_block : int ≥ 1
        ||(1/N) Σ_i e^{(i)}||² needs a node mean Algorithm 2 itself does not take; with
        ``error_block`` > 1 it is taken once per block of that many steps, stacked (one
        collective per block in the distributed runner).
    host_oracle : bool
        Call ``problem.grad``/``loss`` on NumPy copies of X (for a NumPy-only oracle).
    """

    def __init__(self, problem, run: Run, ops=NUMPY, record=RECORD_FIELDS, error_block=1, host_oracle=False):
        self.problem, self.run, self.ops, self.record = problem, run, ops, tuple(record)
        self.error_block, self.host_oracle, self._errors = error_block, host_oracle, []
        R, steps = run.replica_ids.size, run.steps
        # Stored (R, T+1), as the trace returns them: a step writes a strided column, which
        # costs less than transposing (T+1, R) rows at the end (a copy into fresh pages).
        self.fields = {
            name: np.zeros((R, steps + 1)) if name in self.record else None for name in RECORD_FIELDS
        }
        # The last recorded (X, ∇f(X)), handed to an oracle that takes grad= (grad_at).
        self._grad, self._oracle_takes_grad = None, "grad_norm_sq" in self.record and _takes_grad(problem)
        x0 = run.x if host_oracle else ops.from_numpy(run.x)
        self._record_x(0, x0)
        m, n = run.shape
        self.floats = np.array(
            [algorithm.floats_per_node(run.config, t, m, n) for t in range(steps)], dtype=np.int64
        )
        self.restarts = np.array([run.config.is_svd_step(t) for t in range(steps)], dtype=bool)
        self.degenerate_count = np.zeros(R, dtype=np.int64)
        self.degenerate_per_step = np.zeros(steps, dtype=np.int64)
        self.degenerate_own_scale = np.zeros(R, dtype=np.int64)
        self.restart_residual = np.full((R, int(self.restarts.sum())), np.nan)
        self._restart_index = np.cumsum(self.restarts) - 1

    def _set(self, name, column, value):
        """Step ``column`` of field ``name`` from ``value`` (R,) in any array library."""
        self.fields[name][:, column] = array_ops(value).asnumpy(value)

    def _record_x(self, column, x):
        if "grad_norm_sq" in self.record:
            g = self.problem.grad(x)
            self._grad = (x, g) if self._oracle_takes_grad else None
            self._set("grad_norm_sq", column, array_ops(g).sqnorm(g))
        if "loss" in self.record:
            self._set("loss", column, self.problem.loss(x))

    def grad_at(self, x):
        """∇f(``x``) if ``x`` is the X last recorded (the same array) and the oracle takes
        ``grad=``, else None: the oracle of the next step need not compute it again.
        """
        return self._grad[1] if self._grad is not None and self._grad[0] is x else None

    def record_step(self, t, state, info):
        """Record step t from the state after it (X_{t+1}, e_{t+1}) and its :class:`StepInfo`.

        Raises
        ------
        FloatingPointError
            A non-finite X_{t+1}, naming the replicas.
        """
        ops, x = self.ops, state.x
        _check_finite("iterate X_{t+1}", t, self.run.replica_ids, x, ops)
        if info.degenerate is not None:
            degenerate = ops.asnumpy(info.degenerate)
            self.degenerate_count += degenerate
            self.degenerate_per_step[t] = degenerate.sum()
        if info.degenerate_own_scale is not None:
            self.degenerate_own_scale += ops.asnumpy(info.degenerate_own_scale)
        self._record_x(t + 1, ops.asnumpy(x) if self.host_oracle else x)
        if "momentum_norm_sq" in self.record:
            self._set("momentum_norm_sq", t + 1, ops.sqnorm(info.momentum))
        if "error_norm_sq" in self.record:
            self._errors.append(state.error)
            if len(self._errors) == self.error_block or t + 1 == self.run.steps:
                # (K, R, N_local, m, n) -> (K, R, m, n)
                errors = self._errors
                means = ops.node_mean(errors[0][None] if len(errors) == 1 else ops.stack(errors))
                first = t + 1 - len(self._errors)
                self.fields["error_norm_sq"][:, first + 1 : t + 2] = ops.asnumpy(ops.sqnorm(means)).T
                self._errors = []

    def record_residual(self, t, delta_hat, delta_mean):
        """Record ||Δ̂_t − Δ̄_t||² / ||Δ̄_t||² at restart step t (Δ̂_t, Δ̄_t: (R, m, n); 0/0 → 0)."""
        num, den = residual_terms(delta_hat, delta_mean, self.ops)
        self._set_residual(t, self.ops.asnumpy(num), self.ops.asnumpy(den))

    def _set_residual(self, t, num, den):
        """The residual of restart step t from :func:`residual_terms` (NumPy (R,) arrays)."""
        self.restart_residual[:, self._restart_index[t]] = np.where(
            den > 0, num / np.where(den > 0, den, 1), 0
        )

    def record_block(self, t, rows):
        """Record steps t, …, t+K−1 from per-step rows computed in one fused call.

        ``rows`` maps "grads_ok" and "x_ok" (K, R) bool (g_t and X_{t+1} finite), "degenerate"
        (K, R) bool (if any), the recorded fields (K, R) and, if the block has restart steps,
        "residual_num" and "residual_den" (one row per restart, :func:`residual_terms`) to
        NumPy arrays.

        Raises
        ------
        FloatingPointError
            At the first step with a non-finite gradient or iterate, naming the replicas,
            as :meth:`record_step` and :func:`checked_grads` would.
        """
        if not (rows["grads_ok"].all() and rows["x_ok"].all()):
            for k, (grads_ok, x_ok) in enumerate(zip(rows["grads_ok"], rows["x_ok"])):
                if not grads_ok.all():
                    _raise_non_finite("stochastic gradient", t + k, self.run.replica_ids, ~grads_ok)
                if not x_ok.all():
                    _raise_non_finite("iterate X_{t+1}", t + k, self.run.replica_ids, ~x_ok)
        steps = len(rows["x_ok"])
        if "degenerate" in rows:
            self.degenerate_count += rows["degenerate"].sum(axis=0)
            self.degenerate_per_step[t : t + steps] = rows["degenerate"].sum(axis=1)
            self.degenerate_own_scale += rows["degenerate_own_scale"].sum(axis=0)
        for name in self.record:
            self.fields[name][:, t + 1 : t + 1 + steps] = rows[name].T
        restarts = [t + k for k in range(steps) if self.restarts[t + k]]
        for i, step in enumerate(restarts):
            self._set_residual(step, rows["residual_num"][i], rows["residual_den"][i])

    def trace(self, x, q, lr) -> Trace:
        """The :class:`Trace` with X_T (R, m, n) and Q_{T-1} (R, n, r) or None, in any array library."""
        run = self.run
        cfg = dict(
            run.config.__dict__,
            nodes=run.nodes,
            steps=run.steps,
            seed=run.seed,
            dtype=run.dtype.name,
            lr=None if callable(lr) else float(lr),
            problem=type(self.problem).__name__,
        )
        return Trace(
            *self.fields.values(),
            self.floats,
            self.restarts,
            self.degenerate_count,
            self.degenerate_per_step,
            array_ops(x).asnumpy(x),
            None if q is None else array_ops(q).asnumpy(q),
            cfg,
            self.degenerate_own_scale,
            self.restart_residual,
        )
