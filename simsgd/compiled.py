"""The torch engine's compiled loop: blocks of steps fused by ``torch.compile``.

The same :func:`simsgd.algorithm.step`, oracle and :func:`simsgd.recorder.step_values` as the
eager loop, traced for K consecutive steps into one graph (see :func:`compiled_loop`).

Needs torch; ``import simsgd`` does not import this module.
"""

from __future__ import annotations

import numpy as np
import torch

from . import algorithm
from .fused import problem_key
from .loop import StreamDraws, compressor_streams, run_traced
from .optimizers import AdamState
from .recorder import step_values
from .run import resolve_lr
from .streams import TorchNodeStreams
from .torch_ops import TorchOps

__all__ = ["compiled_loop"]


class _CompiledOps(TorchOps):
    """TorchOps without data-dependent Python branches (each would break the compiled graph):
    ``any`` answers True, so the degenerate-QR replacement is always applied through ``where``
    (the same numbers: the mask is false where P is not degenerate).
    """

    @staticmethod
    def any(mask) -> bool:
        return True


_FUSED: dict = {}  # problem_key(problem) -> {options: compiled block}


def _fused_block(problem, config, nodes, record, block, device, qr):
    """The compiled block of :func:`compiled_loop`, built once per problem (equal problems share
    it: :func:`simsgd.fused.problem_key`) and options.

    Reusing it lets later runs (other seeds, replicas, T) skip dynamo's tracing; the
    streams are arguments, not closures, for that reason.
    """
    key = (config, nodes, record, block, str(device), qr)
    cache = _FUSED.setdefault(problem_key(problem), {})
    if key in cache:
        return cache[key]
    cops = _CompiledOps(device, qr)

    def body(state, streams, shared, local, t0, lrs):
        steps = []
        for k in range(block):
            x = state.x
            grads = cops.asarray(problem.stochastic_grads(x, nodes, streams.at(t0 + k)), like=x)
            before = state
            draws = StreamDraws(shared, local, t0 + k)
            state, info = algorithm.step(state, grads, k, lrs[k], config, cops, draws=draws)
            residual = cops.node_mean(grads + before.error) if info.restart else None
            values = step_values(problem, record, state, info, cops, residual=residual)
            values.pop("grad", None)
            values["grads_ok"] = torch.isfinite(grads).flatten(1).all(1)
            values["x_ok"] = torch.isfinite(state.x).flatten(1).all(1)
            steps.append(values)
        rows = {}
        for name in dict.fromkeys(name for values in steps for name in values):
            per_step = [values.get(name) for values in steps]
            if name.startswith("degenerate"):  # restart steps have no QR: count 0
                none = torch.zeros(state.x.shape[0], dtype=torch.bool, device=state.x.device)
                per_step = [none if v is None else v for v in per_step]
            rows[name] = torch.stack([v for v in per_step if v is not None])
        return state, rows

    # Inductor's CPU vectoriser works along the innermost axis, here of length 2–16 (masked
    # vectors): plain scalar C++ ran 1.5–2.1× faster in development runs (docs/torch-engine.md).
    cache[key] = torch.compile(body, dynamic=False, options={"cpp.vec_isa_ok": False})
    return cache[key]


def compiled_loop(problem, run, lr, ops, streams, recorder, progress=None, block=None):
    """:func:`simsgd.loop.run_loop` with blocks of steps fused into one ``torch.compile`` call.

    A block runs oracle, :func:`simsgd.algorithm.step` and the trace's values for ``block``
    consecutive steps (default the compressor's restart period, else 10) and returns the
    per-step rows, which are then checked for finiteness (naming the step and replicas, as the
    eager loop does) and recorded. Blocks start at multiples of the period, so t enters
    ``algorithm.step`` (only through the restart schedule) as the offset in the block and every
    block is the same graph. Step 0 (initialisation) and the last partial block run eagerly;
    :func:`simsgd.loop.run_loop` drives both. A compressor's random draws (a lighter restart's
    sketch, random-k, QSGD) come from the torch streams inside the graph: the same bits as the
    eager engines' for uniform and Rademacher draws, to rounding for normal ones.

    Adam's step count enters the blocks as a float64 tensor (an int would be specialised, one
    graph per value).

    Raises
    ------
    ValueError
        ``degenerate_qr="raise"`` (a data-dependent exception cannot be compiled), or a restart
        schedule that is not periodic with the block's length, or decided by the run's state.
    """
    config = run.config
    if config.degenerate_qr == "raise":
        raise ValueError("compile=True does not support degenerate_qr='raise'; use compile=False")
    compressor = config.compressor
    if block is None:
        block = compressor.period or 10
    schedule = [compressor.restart_at(t) for t in range(run.steps)]
    if any(s is None or s != schedule[t % block] for t, s in enumerate(schedule)):
        raise ValueError(
            f"compile=True needs a restart schedule periodic in t with period {block}; "
            f"{compressor.name}'s is not (use compile=False)"
        )
    fused = _fused_block(problem, config, run.nodes, recorder.record, block, ops.device, ops.qr_kind)
    shared, local = compressor_streams(run, np.arange(run.nodes), TorchNodeStreams, device=ops.device)

    def fused_block(state, t):
        x = state.x
        if isinstance(state.opt, AdamState) and not isinstance(state.opt.count, torch.Tensor):
            count = torch.tensor(float(state.opt.count), dtype=torch.float64, device=x.device)
            state = state._replace(opt=state.opt._replace(count=count))
        lrs = torch.tensor([resolve_lr(lr, t + k) for k in range(block)], dtype=x.dtype, device=x.device)
        state, rows = fused(state, streams, shared, local, torch.tensor(t, device=x.device), lrs)
        return state, {name: ops.asnumpy(v) for name, v in rows.items()}

    return run_traced(
        problem, run, lr, streams, recorder, ops=ops, progress=progress, blocks=(block, fused_block)
    )
