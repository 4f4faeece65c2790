"""The simulated multi-node engine: Algorithm 2 vectorised over replicas and nodes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import algorithm
from ._checks import check_choice, check_float_dtype, check_int, check_real
from ._progress import Progress
from .ops import NUMPY, array_ops
from .optimizers import OPTIMIZERS
from .orthogonalize import DEGENERATE_QR, ORTHOGONALIZATIONS
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
    "run_loop",
    "BACKENDS",
    "RECORD_FIELDS",
]

BACKENDS = ("numpy", "torch")
RECORD_FIELDS = ("grad_norm_sq", "loss", "error_norm_sq", "momentum_norm_sq")
"""The per-step fields of a :class:`Trace` that ``record=`` may select."""


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
    """Raise FloatingPointError naming the replicas (axis 0 of ``values``) that hold a NaN or inf."""
    if ops.all_finite(values):  # one flat reduction on the hot path; per replica only on failure
        return
    values = ops.asnumpy(values)
    _raise_non_finite(what, t, replica_ids, ~np.isfinite(values).reshape(len(values), -1).all(axis=1))


def _raise_non_finite(what, t, replica_ids, bad):
    """Raise FloatingPointError naming the replicas where ``bad`` (R,) is true."""
    ids = replica_ids[np.flatnonzero(bad)]
    shown = ", ".join(map(str, ids[:5])) + (", …" if ids.size > 5 else "")
    raise FloatingPointError(f"non-finite {what} at step t={t} in {ids.size} replica(s): {shown}")


def simulate(
    problem,
    method="powersgd+",
    nodes=4,
    rank=1,
    restart_period=10,
    optimizer="msgd",
    lr=1e-3,
    momentum=0.9,
    steps=1000,
    replicas=1000,
    seed=0,
    q_init=None,
    dtype="float64",
    *,
    error_feedback="local",
    orthogonalization="householder",
    orthogonalization_epsilon=0.0,
    degenerate_qr="previous",
    betas=(0.9, 0.999),
    adam_eps=1e-8,
    x0=None,
    replica_ids=None,
    progress=None,
    power_steps=1,
    backend="numpy",
    device="cpu",
    compile=False,
    record=None,
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
    optimizer : {"sgd", "msgd", "adam"}
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
    backend : {"numpy", "torch"}
        The array library (see :mod:`simsgd.torch_engine`; needs torch and an oracle
        written with :func:`simsgd.ops.array_ops`, as the built-in problems are). Both
        draw the same ξ; trajectories agree to rounding.
    device : {"cpu", "cuda", "cuda:k"}
        Torch only.
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
        A non-finite gradient or iterate, naming the step and the replicas.
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
    )
    record = _check_backend(backend, device, compile, record)
    if backend == "torch":
        from .torch_engine import simulate_torch

        return simulate_torch(problem, run, lr, device, compile, record, progress)
    streams = NodeStreams(run.seed, run.replica_ids, np.arange(run.nodes))
    recorder = Recorder(problem, run, record=record)
    state = run_loop(
        run,
        lr,
        lambda x, t: checked_grads(problem, x, run, streams.at(t)),
        recorder=recorder,
        progress=progress,
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
            new_state, info = algorithm.step(state, grads, t, eta, run.config, ops)
            if on_step is not None:
                on_step(t, state, grads, eta, new_state, info)
            state = new_state
            if recorder is not None:
                recorder.record_step(t, state, info)
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
) -> Run:
    """Check the options of :func:`simulate` and build X_0 and Q_{-1}; shared by every engine.

    Raises
    ------
    ValueError
        An option outside its range.
    """
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
    )
    nodes = check_int("nodes", nodes, 1)
    steps = check_int("steps", steps, 1)
    seed = check_int("seed", seed, 0)
    dtype = check_float_dtype("dtype", dtype)
    if replica_ids is None:
        replica_ids = np.arange(check_int("replicas", replicas, 1))
    else:
        replica_ids = np.asarray(replica_ids)
        if (
            replica_ids.ndim != 1
            or replica_ids.size < 1
            or not np.issubdtype(replica_ids.dtype, np.integer)
            or replica_ids.min() < 0
        ):
            raise ValueError("replica_ids must be a non-empty 1-D array of integers ≥ 0")
    if not callable(lr):
        resolve_lr(lr, 0)
    R = replica_ids.size

    x = np.asarray(problem.x0 if x0 is None else x0, dtype=dtype)
    if x.shape not in ((m, n), (R, m, n)) or not np.all(np.isfinite(x)):
        raise ValueError(f"x0 must be a finite array of shape ({m}, {n}) or ({R}, {m}, {n}), got {x.shape}")
    x = np.broadcast_to(x, (R, m, n)).copy()
    q = _initial_q(q_init, seed, replica_ids, n, config.rank, dtype) if method != "full" else None
    return Run(config, nodes, steps, seed, dtype, replica_ids, (m, n), x, q)


def checked_grads(problem, x, run: Run, draws):
    """The oracle's g_t^{(i)} for the nodes ``draws.node_ids``, checked: (R, N_local, m, n),
    in ``x``'s array library.

    Raises
    ------
    ValueError
        Wrong shape.  FloatingPointError: a non-finite gradient, naming the replicas.
    """
    shape = (run.replica_ids.size, draws.node_ids.size) + run.shape
    grads = problem.stochastic_grads(x, run.nodes, draws)
    if not hasattr(grads, "shape") or grads.shape != shape:
        raise ValueError(
            f"problem.stochastic_grads must return shape (R, N, m, n) = "
            f"{shape}, got {getattr(grads, 'shape', type(grads))}"
        )
    ops = array_ops(x)
    grads = ops.asarray(grads, like=x)
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
        # Stored (T+1, R): a step writes one contiguous row (a column of (R, T+1) is strided).
        self.fields = {
            name: np.zeros((steps + 1, R)) if name in self.record else None for name in RECORD_FIELDS
        }
        x0 = run.x if host_oracle else ops.from_numpy(run.x)
        self._record_x(0, x0)
        m, n = run.shape
        self.floats = np.array(
            [algorithm.floats_per_node(run.config, t, m, n) for t in range(steps)], dtype=np.int64
        )
        self.restarts = np.array([run.config.is_svd_step(t) for t in range(steps)], dtype=bool)
        self.degenerate_qr = np.zeros(R, dtype=np.int64)
        self.degenerate_per_step = np.zeros(steps, dtype=np.int64)

    def _set(self, name, column, value):
        """Step ``column`` of field ``name`` from ``value`` (R,) in any array library."""
        self.fields[name][column] = array_ops(value).asnumpy(value)

    def _record_x(self, column, x):
        if "grad_norm_sq" in self.record:
            g = self.problem.grad(x)
            self._set("grad_norm_sq", column, array_ops(g).sqnorm(g))
        if "loss" in self.record:
            self._set("loss", column, self.problem.loss(x))

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
            self.degenerate_qr += degenerate
            self.degenerate_per_step[t] = degenerate.sum()
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
                self.fields["error_norm_sq"][first + 1 : t + 2] = ops.asnumpy(ops.sqnorm(means))
                self._errors = []

    def record_block(self, t, rows):
        """Record steps t, …, t+K−1 from per-step rows computed in one fused call.

        ``rows`` maps "grads_ok" and "x_ok" (K, R) bool (g_t and X_{t+1} finite), "degenerate"
        (K, R) bool (if any) and the recorded fields (K, R) to NumPy arrays.

        Raises
        ------
        FloatingPointError
            At the first step with a non-finite gradient or iterate, naming the replicas,
            as :meth:`record_step` and :func:`checked_grads` would.
        """
        for k, (grads_ok, x_ok) in enumerate(zip(rows["grads_ok"], rows["x_ok"])):
            if not grads_ok.all():
                _raise_non_finite("stochastic gradient", t + k, self.run.replica_ids, ~grads_ok)
            if not x_ok.all():
                _raise_non_finite("iterate X_{t+1}", t + k, self.run.replica_ids, ~x_ok)
        steps = len(rows["x_ok"])
        if "degenerate" in rows:
            self.degenerate_qr += rows["degenerate"].sum(axis=0)
            self.degenerate_per_step[t : t + steps] = rows["degenerate"].sum(axis=1)
        for name in self.record:
            self.fields[name][t + 1 : t + 1 + steps] = rows[name]

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
            *(None if f is None else np.ascontiguousarray(f.T) for f in self.fields.values()),
            self.floats,
            self.restarts,
            self.degenerate_qr,
            self.degenerate_per_step,
            array_ops(x).asnumpy(x),
            None if q is None else array_ops(q).asnumpy(q),
            cfg,
        )
