"""The replicas-innermost compiled engine: ``simulate(..., backend="lanes", compile=True)``.

Every array of a run is a :class:`simsgd.lanes.Lanes` array (each entry a length-R tensor), so one
step — the oracle, :func:`simsgd.algorithm.step` and the trace's values
(:func:`simsgd.recorder.step_values`) — is a sequence of pointwise operations on length-R vectors.
The step is traced once into a graph of torch operations (``make_fx``: the Python of the Lanes
arrays runs at trace time only) and compiled by inductor, which fuses it into one loop over R
with the state in registers; the loop below drives the compiled step from Python, one call per
step, and records the rows of 16 steps at a time.

Compiled once per (problem, options, N, recorded fields, whether the step restarts, dtype,
device): the replica count R is a symbolic dimension, the replicas' seeds and the step t are
tensor inputs, and η_t is a 0-d tensor, so a new T, R, seed or learning rate reuses the graphs.
A run compiles two graphs (a restart step and
an SSP step; one for methods without restarts); step 0 runs eagerly, the same function untraced.

Needs torch; ``import simsgd`` does not import this module.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import weakref

import torch
import torch.utils._pytree as pytree
from torch.fx.experimental.proxy_tensor import make_fx

from . import algorithm
from ._progress import Progress
from .lanes import Lanes, LanesOps, LanesStreams, all_finite_per_replica
from .loop import LOCAL_STREAM, SHARED_STREAM, StreamDraws
from .methods import PowerState
from .optimizers import AdamState
from .recorder import step_values
from .run import resolve_lr

__all__ = ["fused_loop", "compile_options", "bytes_per_replica_step", "problem_key"]


def compile_options(device: torch.device) -> dict:
    """Inductor's options for a fused step on ``device``.

    A step is hundreds of pointwise operations per replica. Inductor inlines a pointwise result
    into each of its consumers and traces the inlined code again for every one; on this DAG that
    took minutes. Realising every intermediate that is read twice or computes anything keeps the
    compile linear in the size of the step and costs nothing at run time: an intermediate used
    only inside the fused loop stays a local variable. ``max_fusion_size`` lets one loop take the
    whole step. On CPU the loop is scalar C++: inductor's vectorised loop (8 replicas a
    turn on AVX2) holds each of ~600 intermediates in two vector registers and ran at half the
    speed (development runs, AMD EPYC, see docs/torch-engine.md).
    """
    options = {"realize_reads_threshold": 1, "realize_opcount_threshold": 1, "max_fusion_size": 2**20}
    return dict(options, **{"cpp.vec_isa_ok": False}) if device.type == "cpu" else options


def _check(config):
    if config.degenerate_qr == "raise":
        raise ValueError("backend='lanes' with compile=True does not support degenerate_qr='raise'")


def _canonical(state: algorithm.State, lanes: torch.Tensor) -> algorithm.State:
    """``state`` with one structure for every step, so that one graph takes them all: Q_{t−1}'s
    negligibility mask (None after a restart, which :func:`simsgd.compressors.ssp_step` reads as
    "no replica negligible") all false, Adam's step count a float64 0-d tensor (an int would be
    compiled in), and every entry a length-R tensor (``lanes``: R true values).
    """
    compressor, opt = state.compressor, state.opt
    if isinstance(compressor, PowerState) and compressor.q_negligible is None:
        compressor = compressor._replace(q_negligible=Lanes.of(~lanes))
    if isinstance(opt, AdamState) and not isinstance(opt.count, torch.Tensor):
        opt = opt._replace(count=torch.tensor(float(opt.count), dtype=torch.float64, device=lanes.device))
    state = state._replace(compressor=compressor, opt=opt)

    def full(leaf):
        if isinstance(leaf, Lanes):
            return Lanes(_entries_over(leaf, lanes))
        return leaf

    return pytree.tree_map(full, state, is_leaf=lambda v: isinstance(v, Lanes))


def _entries_over(x: Lanes, lanes):
    """``x``'s entries with every 0-d one broadcast to length R (``torch.where``: no literal size)."""
    out = x.entries.copy()
    for index, e in enumerate(out.flat):
        if e.ndim == 0:
            out.flat[index] = torch.where(lanes, e, e)
    return out


class _Step:
    """One step of a run as a function of (state, replica keys, t, η_t): eager, or traced and compiled."""

    def __init__(self, problem, run, record, streams: LanesStreams, ops: LanesOps):
        self.problem, self.run, self.record, self.streams = problem, run, record, streams
        self.ops, self.traced_ops = ops, LanesOps(ops.device, traced=True)
        self.shared = streams.with_nodes([SHARED_STREAM])
        self.local = streams.with_nodes(LOCAL_STREAM + streams.node_ids)

    def __call__(self, state, keys, t, lr, step_index, ops):
        """Step t (an int, or a 0-d tensor when traced; ``step_index``: the int t that
        :func:`simsgd.algorithm.step` sees): (the next state, its recorded rows as (R,) tensors).
        """
        problem, run = self.problem, self.run
        lanes = keys == keys
        x = state.x
        draws = self.streams.with_keys(keys).at(t)
        grads = ops.asarray(problem.stochastic_grads(x, run.nodes, draws), like=x)
        draws = StreamDraws(self.shared.with_keys(keys), self.local.with_keys(keys), t)
        new, info = algorithm.step(state, grads, step_index, lr, run.config, ops, draws=draws)
        residual = ops.node_mean(grads + state.error) if info.restart else None
        values = step_values(problem, self.record, new, info, ops, residual=residual)
        values.pop("grad", None)
        rows = {name: torch.where(lanes, *(2 * [v.entries[()]])) for name, v in values.items()}
        rows["grads_ok"], rows["x_ok"] = all_finite_per_replica(grads), all_finite_per_replica(new.x)
        return _canonical(new, lanes), rows


_GRAPHS: dict = {}  # problem_key(problem) -> {options: (compiled step, row names, state spec, bytes)}
_TOKENS = weakref.WeakKeyDictionary()  # a problem that does not pickle -> its own key
_COUNT = itertools.count()


def problem_key(problem):
    """A key equal for problems that compute alike: the type and a hash of the pickled attributes,
    so that a fresh ``Psi2x2(5.0)`` per call (as studies write it) reuses the compiled graphs; a
    problem whose attributes do not pickle is its own key.
    """
    try:
        return type(problem), hashlib.sha256(pickle.dumps(vars(problem))).hexdigest()
    except (TypeError, AttributeError, pickle.PicklingError):
        return type(problem), _TOKENS.setdefault(problem, next(_COUNT))


def _trace(flat, example):
    """``flat`` traced at the tensors ``example`` into a graph of inductor's ATen operations, with
    R symbolic (one graph for any R).
    """
    from torch._inductor.decomposition import select_decomp_table

    return make_fx(flat, tracing_mode="symbolic", decomposition_table=select_decomp_table())(*example)


def _inductor(graph, device):
    """``graph`` compiled by inductor: a callable of the same tensors, for any R.

    The graph goes to inductor's ``compile_fx_inner`` (with its on-disk cache) directly:
    ``torch.compile`` would have dynamo trace the ~700 operations of a step again, which took
    longer than inductor itself, and its fused loop ran ~1.5× slower (development runs).
    """
    from torch._guards import TracingContext, detect_fake_mode, tracing
    from torch._inductor.compile_fx import compile_fx_inner

    fakes = [node.meta["val"] for node in graph.graph.nodes if node.op == "placeholder"]
    with (
        tracing(TracingContext(detect_fake_mode(fakes))),
        torch._inductor.config.patch(compile_options(device)),
    ):
        compiled = compile_fx_inner(graph, fakes)
    return lambda *inputs: compiled(list(inputs))


def _lane_bytes(graph) -> int:
    """Bytes a call of ``graph`` reads and writes per replica: its inputs and outputs of length R."""
    outputs = graph.graph.output_node().args[0]
    values = [n.meta["val"] for n in graph.graph.nodes if n.op == "placeholder"]
    values += [n.meta["val"] for n in outputs]
    return sum(v.element_size() for v in values if isinstance(v, torch.Tensor) and v.ndim == 1)


def _compiled(step: _Step, state, keys, t, lr, step_index, restart):
    """The compiled graph of ``step`` for states shaped as ``state`` and this restart decision
    (traced at step ``step_index``; t enters :func:`simsgd.algorithm.step` only through the
    restart schedule, so the graph serves every step that decides alike).
    """
    leaves, spec = pytree.tree_flatten(state)
    run = step.run
    key = (run.config, run.nodes, step.record, restart, run.dtype, keys.device.type, spec)
    cache = _GRAPHS.setdefault(problem_key(step.problem), {})
    if key not in cache:
        out = {}

        def flat(keys, t, lr, *leaves):
            state = pytree.tree_unflatten(list(leaves), spec)
            new, rows = step(state, keys, t, lr, step_index, step.traced_ops)
            new_leaves, out["spec"] = pytree.tree_flatten(new)
            out["names"] = list(rows)
            return (*new_leaves, *rows.values())

        try:
            graph = _trace(flat, (keys, t, lr, *leaves))
            fn = _inductor(graph, keys.device)
        except Exception as err:  # e.g. a Python branch on a value of the run in an oracle
            raise ValueError(
                f"backend='lanes' with compile=True cannot compile a step of this run ({type(err).__name__}: "
                f"{err}); use compile=False"
            ) from err
        if out["spec"] != spec:  # _canonical keeps one structure: the next step takes these leaves
            raise AssertionError(f"a step changed the state's structure: {spec} -> {out['spec']}")
        cache[key] = (fn, out["names"], out["spec"], _lane_bytes(graph))
    return cache[key]


def bytes_per_replica_step(problem) -> dict:
    """Bytes each compiled step of ``problem``'s runs so far reads and writes per replica (its
    inputs and outputs of length R: the state, the replica keys and the recorded rows), by
    whether the step restarts; the fused loop keeps everything else in registers.
    """
    return {key[3]: entry[3] for key, entry in _GRAPHS.get(problem_key(problem), {}).items()}


RECORD_EVERY = 16
"""Steps whose rows are recorded at once: the trace's (R, T+1) fields take a block of columns
(one cache line per replica) rather than a strided column per step."""


def fused_loop(problem, run, lr, ops, streams, recorder, progress=None):
    """Run ``run`` with each step compiled into one fused loop over the replicas (see the module).

    Parameters as a backend's ``compiled_loop`` (:class:`simsgd.backends.Backend`).

    Raises
    ------
    ValueError
        ``degenerate_qr="raise"``, a restart decided by the run's state (the two branches would be
        one graph's), or a step that cannot be traced.
    FloatingPointError
        :class:`simsgd.trace.Diverged`, naming the step and replicas, as the eager engines do.
    """
    config = run.config
    _check(config)
    step = _Step(problem, run, recorder.record, streams, ops)
    keys = streams.replica_keys
    x = ops.from_numpy(run.x)
    q = None if run.q is None else ops.from_numpy(run.q)
    grads_like = Lanes(x[..., None, :, :].entries.repeat(run.nodes, axis=0)) * 0
    state = algorithm.init(x, q, grads_like, config)
    bar = Progress(run.steps, progress, label="simulate")
    t_in = torch.zeros((), dtype=torch.int64, device=keys.device)  # t and η_t: filled in each step
    lr_in = torch.zeros((), dtype=x.dtype, device=keys.device)
    graphs, leaves, spec = {}, None, None  # the state between compiled steps: its leaves only
    pending, first = [], 0
    for t in range(run.steps):
        restart = config.restart_at(t)
        if restart is None:
            raise ValueError(
                f"backend='lanes' with compile=True needs restarts decided by t; {config.compressor.name}'s "
                "depend on the run's state (use compile=False)"
            )
        eta = resolve_lr(lr, t)
        if t == 0:  # the initial state (Q_{−1} only, no P̃): once, eagerly
            state, rows = step(state, keys, t, eta, t, ops)
            leaves, spec = pytree.tree_flatten(state)
        else:
            t_in.fill_(t)
            lr_in.fill_(eta)
            if restart not in graphs:
                state = pytree.tree_unflatten(leaves, spec)
                graphs[restart] = _compiled(step, state, keys, t_in, lr_in, t, restart)
            fn, names = graphs[restart][:2]
            outputs = fn(keys, t_in, lr_in, *leaves)
            leaves, rows = outputs[: len(leaves)], dict(zip(names, outputs[len(leaves) :]))
        pending.append(rows)
        if len(pending) == RECORD_EVERY or t + 1 == run.steps:
            recorder.record_block(first, _stacked(pending), len(pending))
            pending, first = [], t + 1
        bar.update(t + 1)
    state = pytree.tree_unflatten(list(leaves), spec)
    return recorder.trace(state.x, state.q, lr)


def _stacked(steps: list[dict]) -> dict:
    """Per-step rows as (K, R) NumPy arrays: a restart step has no degenerate-QR rows (0 there),
    and only restart steps have residual rows (one row each, as :meth:`Recorder.record_block` reads).
    """
    out = {}
    for name in dict.fromkeys(name for rows in steps for name in rows):
        per_step = [rows.get(name) for rows in steps]
        if name.startswith("degenerate"):
            none = torch.zeros_like(steps[0]["x_ok"])
            per_step = [none if v is None else v for v in per_step]
        out[name] = torch.stack([v for v in per_step if v is not None]).cpu().numpy()
    return out
