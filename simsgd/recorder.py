"""What a run records, step by step: one set of per-step values for every engine.

:func:`step_values` computes a step's recorded values from the state after it; the eager loop
(:class:`Recorder.record_step`) and the compiled blocks (:mod:`simsgd.compiled`, which stack them
over a block) both call it, and :meth:`Recorder.record_block` stores them. So every engine
records the same fields the same way.
"""

from __future__ import annotations

import inspect

import numpy as np

from .algorithm import State, StepInfo, floats_per_node
from .ops import NUMPY, array_ops
from .run import Run
from .trace import Diverged, Trace

__all__ = ["RECORD_FIELDS", "Recorder", "step_values", "residual_terms", "check_finite", "raise_non_finite"]

RECORD_FIELDS = ("grad_norm_sq", "loss", "error_norm_sq", "momentum_norm_sq")
"""The per-step fields of a :class:`Trace` that ``record=`` may select."""


def residual_terms(delta_hat, delta_mean, ops=NUMPY):
    """||Δ̂_t − Δ̄_t||² and ||Δ̄_t||² (R,), the numerator and denominator of
    ``Trace.restart_residual`` (Lemma 2's 1 − δ' of the restart compressor).
    """
    return ops.sqnorm(delta_hat - delta_mean), ops.sqnorm(delta_mean)


def check_finite(what, t, replica_ids, values, ops=NUMPY):
    """Raise :class:`Diverged` naming the replicas (axis 0 of ``values``) that hold a NaN or inf."""
    if ops.all_finite(values):  # one flat reduction on the hot path; per replica only on failure
        return
    values = ops.asnumpy(values)
    raise_non_finite(what, t, replica_ids, ~np.isfinite(values).reshape(len(values), -1).all(axis=1))


def raise_non_finite(what, t, replica_ids, bad):
    """Raise :class:`Diverged` naming the replicas where ``bad`` (R,) is true."""
    ids = replica_ids[np.flatnonzero(bad)]
    shown = ", ".join(map(str, ids[:5])) + (", …" if ids.size > 5 else "")
    raise Diverged(
        f"non-finite {what} at step t={t} in {ids.size} replica(s): {shown}", t, ids, len(replica_ids)
    )


def takes_grad(problem) -> bool:
    """Whether ``problem.stochastic_grads`` takes ``grad=`` (∇f(X), computed by the caller)."""
    try:
        return "grad" in inspect.signature(problem.stochastic_grads).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


def step_values(problem, record, state: State, info: StepInfo, ops, *, error=True, x=None, residual=None):
    """The recorded values of step t, from the state after it (X_{t+1}, e_{t+1}) and its info.

    Parameters
    ----------
    problem, record
        The oracle and the :data:`RECORD_FIELDS` to record.
    state, info
        From :func:`simsgd.algorithm.step`.
    ops : ArrayOps
    error : bool
        Compute ||(1/N) Σ_i e_{t+1}^{(i)}||² here (False: the caller takes the node mean itself).
    x : array, optional
        X_{t+1} for the oracle (e.g. a NumPy copy for a NumPy-only oracle); default ``state.x``.
    residual : array (..., m, n), optional
        Δ̄_t at a restart step: records :func:`residual_terms` of Δ̂_t against it.

    Returns
    -------
    dict
        (R,) arrays in the run's library: the recorded fields, "degenerate" and
        "degenerate_own_scale" (bool, where the step met a rank-deficient P), "residual_num" and
        "residual_den" (restart steps), and "grad" (∇f(X_{t+1}), for the next oracle call).
    """
    x = state.x if x is None else x
    values = {}
    if "grad_norm_sq" in record:
        g = problem.grad(x)
        values["grad"], values["grad_norm_sq"] = g, array_ops(g).sqnorm(g)
    if "loss" in record:
        values["loss"] = problem.loss(x)
    if "momentum_norm_sq" in record:
        values["momentum_norm_sq"] = ops.sqnorm(info.momentum)
    if "error_norm_sq" in record and error:
        values["error_norm_sq"] = ops.sqnorm(ops.node_mean(state.error))
    for name in ("degenerate", "degenerate_own_scale"):
        if getattr(info, name) is not None:
            values[name] = getattr(info, name)
    if residual is not None:
        values["residual_num"], values["residual_den"] = residual_terms(info.delta_hat, residual, ops)
    return values


class Recorder:
    """The per-step record of a run, filled in step by step and returned as a :class:`Trace`.

    Shared by every engine. The values are computed in the run's array library (``ops``) by
    :func:`step_values` and moved to NumPy one (R,) row at a time.

    Parameters
    ----------
    problem, run
        The oracle and the checked run (:func:`simsgd.run.prepare`).
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
        self._grad, self._oracle_takes_grad = None, "grad_norm_sq" in self.record and takes_grad(problem)
        x0 = run.x if host_oracle else ops.from_numpy(run.x)
        if "grad_norm_sq" in self.record:
            g = problem.grad(x0)
            self._keep_grad(x0, g)
            self._set("grad_norm_sq", 0, array_ops(g).sqnorm(g))
        if "loss" in self.record:
            self._set("loss", 0, problem.loss(x0))
        m, n = run.shape
        # A schedule fixes each step's restart and floats now; a state-dependent rule (None)
        # leaves them to the step (record_restart).
        schedule = [run.config.restart_at(t) for t in range(steps)]
        self.restarts = np.array([bool(s) for s in schedule], dtype=bool)
        self.floats = np.array(
            [
                np.nan if s is None else floats_per_node(run.config, t, m, n, s)
                for t, s in enumerate(schedule)
            ],
            dtype=np.float64,
        )
        self.dynamic = np.array([s is None for s in schedule], dtype=bool)
        self.degenerate_count = np.zeros(R, dtype=np.int64)
        self.degenerate_per_step = np.zeros(steps, dtype=np.int64)
        self.degenerate_own_scale = np.zeros(R, dtype=np.int64)
        self.restart_residual = np.full((R, int((self.restarts | self.dynamic).sum())), np.nan)
        self._restart_index = np.cumsum(self.restarts | self.dynamic) - 1
        self._masks = {}  # step -> which replicas restarted, for a state-dependent rule

    def _set(self, name, column, value):
        """Step ``column`` of field ``name`` from ``value`` (R,) in any array library."""
        self.fields[name][:, column] = array_ops(value).asnumpy(value)

    def _keep_grad(self, x, g):
        self._grad = (x, g) if self._oracle_takes_grad else None

    def grad_at(self, x):
        """∇f(``x``) if ``x`` is the X last recorded (the same array) and the oracle takes
        ``grad=``, else None: the oracle of the next step need not compute it again.
        """
        return self._grad[1] if self._grad is not None and self._grad[0] is x else None

    def record_step(self, t, state_before, grads, state, info):
        """Record step t from the state before it, its gradients g_t^{(i)}, the state after it
        (X_{t+1}, e_{t+1}) and its :class:`StepInfo`.

        Raises
        ------
        FloatingPointError
            A non-finite X_{t+1}, naming the replicas.
        """
        ops = self.ops
        check_finite("iterate X_{t+1}", t, self.run.replica_ids, state.x, ops)
        x = ops.asnumpy(state.x) if self.host_oracle else state.x
        per_replica = not isinstance(info.restart, bool)
        restarted = ops.any(info.restart) if per_replica else info.restart
        # Δ̄_t, for the restart compressor's ||Δ̂ − Δ̄||²/||Δ̄||² (Lemma 2's 1 − δ')
        residual = ops.node_mean(grads + state_before.error) if restarted else None
        values = step_values(
            self.problem, self.record, state, info, ops, error=self.error_block == 1, x=x, residual=residual
        )
        if "grad" in values:
            self._keep_grad(x, values.pop("grad"))
        if per_replica:
            self.record_restart(t, ops.asnumpy(info.restart))
        self.record_block(
            t, {k: array_ops(v).asnumpy(v)[None] for k, v in values.items()}, steps=1, checked=True
        )
        if "error_norm_sq" in self.record and self.error_block > 1:
            self._errors.append(state.error)
            if len(self._errors) == self.error_block or t + 1 == self.run.steps:
                # (K, R, N_local, m, n) -> (K, R, m, n)
                means = ops.node_mean(ops.stack(self._errors))
                first = t + 1 - len(self._errors)
                self.fields["error_norm_sq"][:, first + 1 : t + 2] = ops.asnumpy(ops.sqnorm(means)).T
                self._errors = []

    def record_restart(self, t, mask):
        """Step t's per-replica restart ``mask`` (R,) of a state-dependent rule: its floats (the
        mean over replicas) and whether any replica restarted.
        """
        m, n = self.run.shape
        compressor = self.run.config.compressor
        restarted, kept = compressor.floats(t, (m, n), True), compressor.floats(t, (m, n), False)
        self.floats[t] = float(np.mean(np.where(mask, restarted, kept)))
        self.restarts[t] = bool(mask.any())
        self._masks[t] = mask

    def record_block(self, t, rows, steps, checked=False):
        """Record steps t, …, t+K−1 (K = ``steps``) from per-step rows ((K, R) NumPy arrays).

        ``rows`` holds :func:`step_values`' entries (without "grad"; "residual_num" and
        "residual_den" one row per restart step of the block) and, unless ``checked``, "grads_ok"
        and "x_ok" (K, R) bool: g_t and X_{t+1} finite.

        Raises
        ------
        FloatingPointError
            At the first step with a non-finite gradient or iterate, naming the replicas,
            as the eager loop would.
        """
        if not checked and not (rows["grads_ok"].all() and rows["x_ok"].all()):
            for k, (grads_ok, x_ok) in enumerate(zip(rows["grads_ok"], rows["x_ok"])):
                if not grads_ok.all():
                    raise_non_finite("stochastic gradient", t + k, self.run.replica_ids, ~grads_ok)
                if not x_ok.all():
                    raise_non_finite("iterate X_{t+1}", t + k, self.run.replica_ids, ~x_ok)
        if "degenerate" in rows:
            self.degenerate_count += rows["degenerate"].sum(axis=0)
            self.degenerate_per_step[t : t + steps] = rows["degenerate"].sum(axis=1)
        if "degenerate_own_scale" in rows:
            self.degenerate_own_scale += rows["degenerate_own_scale"].sum(axis=0)
        for name in self.record:
            if name in rows:
                self.fields[name][:, t + 1 : t + 1 + steps] = rows[name].T
        if "residual_num" in rows:
            restarts = [s for s in range(t, t + steps) if self.restarts[s]]
            for s, num, den in zip(restarts, rows["residual_num"], rows["residual_den"]):
                self._set_residual(s, num, den)

    def _set_residual(self, t, num, den):
        """The residual of restart step t from :func:`residual_terms` (NumPy (R,) arrays; NaN for the
        replicas a state-dependent rule did not restart).
        """
        value = np.where(den > 0, num / np.where(den > 0, den, 1), 0)
        self.restart_residual[:, self._restart_index[t]] = np.where(self._masks.get(t, True), value, np.nan)

    def trace(self, x, q, lr) -> Trace:
        """The :class:`Trace` with X_T (R, m, n) and Q_{T-1} (R, n, r) or None, in any array library."""
        run = self.run
        config = dict(
            run.config.describe(),
            nodes=run.nodes,
            steps=run.steps,
            seed=run.seed,
            dtype=run.dtype.name,
            lr=None if callable(lr) else float(lr),
            problem=type(self.problem).__name__,
        )
        used = self.restarts | ~self.dynamic  # a state-dependent rule's columns only where it restarted
        residual = self.restart_residual[:, used[self.restarts | self.dynamic]]
        return Trace(
            *self.fields.values(),
            self.floats,
            self.restarts,
            self.degenerate_count,
            self.degenerate_per_step,
            array_ops(x).asnumpy(x),
            None if q is None else array_ops(q).asnumpy(q),
            config,
            self.degenerate_own_scale,
            residual,
        )
