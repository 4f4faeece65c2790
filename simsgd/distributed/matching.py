"""How closely the torch.distributed runner reproduces :func:`simsgd.simulate`: the measures.

``rel_diff``/``trace_diff`` compare arrays and traces; ``forced_step_diff`` runs one
:class:`~simsgd.distributed.ops.TorchOps` step at a time from the simulator's own state
(teacher forcing), so that rounding differences cannot compound; ``matching_problems``
are the problems the matching tests and ``python -m simsgd.distributed.compare`` use.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import algorithm
from ..loop import StreamDraws, checked_grads, compressor_streams, run_loop
from ..problems import HeterogeneousQuadratic, Psi2x2
from ..streams import NodeStreams
from .ops import TorchOps
from .runner import prepare_distributed

__all__ = ["rel_diff", "trace_diff", "forced_step_diff", "matching_problems", "ReversedNodes", "TRACE_FIELDS"]

TRACE_FIELDS = (
    "grad_norm_sq",
    "loss",
    "error_norm_sq",
    "momentum_norm_sq",
    "floats_sent",
    "restart_steps",
    "degenerate_count",
    "degenerate_per_step",
    "x",
    "q",
)


def rel_diff(a, b) -> float:
    """max|a − b| / max|b| (0 when both are 0; inf when only ``b`` is 0 or shapes differ)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale, diff = np.max(np.abs(b), initial=0.0), np.max(np.abs(a - b), initial=0.0)
    return 0.0 if diff == 0 else float(diff / scale) if scale > 0 else float("inf")


def trace_diff(trace, ref, steps=None) -> dict:
    """Per field, :func:`rel_diff` of two traces.

    With ``steps`` < T only the per-step fields over steps 0..``steps`` are compared (X_T,
    Q_{T-1} and the per-replica totals belong to the end of the run).
    """
    out = {}
    partial = steps is not None and steps < ref.steps
    for name in TRACE_FIELDS:
        a, b = getattr(trace, name), getattr(ref, name)
        if partial and name in ("x", "q", "degenerate_count"):
            continue
        if a is None or b is None:
            out[name] = 0.0 if a is b else float("inf")
            continue
        if partial:
            a, b = a[..., : steps + 1], b[..., : steps + 1]
        out[name] = rel_diff(a, b)
    return out


def _align_signs(q, ref):
    """Flip the columns of ``q`` (..., n, r) to the signs of ``ref``'s (an SVD's sign freedom)."""
    signs = np.where(np.sum(q * ref, axis=-2, keepdims=True) < 0, -1.0, 1.0)
    return q * signs


def forced_step_diff(problem, group=None, **options) -> dict:
    """Largest per-step :func:`rel_diff` of a TorchOps step started from the simulator's state.

    Every process runs the NumPy simulation of all N nodes; at each step, node
    ``rank`` takes its slice of the simulator's state, runs one
    :func:`simsgd.algorithm.step` with :class:`~simsgd.distributed.ops.TorchOps` (all-reduce
    over the group), and compares X_{t+1}, Q_t, its own e_{t+1}, Δ̂_t and m_t with the
    simulator's (Q_t up to column signs on SVD steps).

    Returns
    -------
    dict
        Field name -> the largest relative difference over all steps.
    """
    import torch.distributed as dist

    run, lr = prepare_distributed(problem, options, group)
    node, ops = dist.get_rank(group), TorchOps(group)
    streams = NodeStreams(run.seed, run.replica_ids, np.arange(run.nodes))
    draw_streams = compressor_streams(run, [node])
    worst = dict.fromkeys(("x", "q", "error", "delta_hat", "momentum"), 0.0)

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    def compare(t, state, grads, eta, new, info):  # one TorchOps step from the simulator's state
        mine = algorithm.State(
            tensor(state.x),
            _map(tensor, state.compressor),
            tensor(state.error[:, node : node + 1]),
            _map(tensor, state.opt),
        )
        draws = StreamDraws(*draw_streams, t)
        out, info_t = algorithm.step(mine, tensor(grads[:, node : node + 1]), t, eta, run.config, ops, draws)
        q_t = None if out.q is None else out.q.numpy()
        if q_t is not None and info.restart:
            q_t = _align_signs(q_t, new.q)
        for name, a, b in (
            ("x", out.x.numpy(), new.x),
            ("q", q_t, new.q),
            ("error", out.error.numpy(), new.error[:, node : node + 1]),
            ("delta_hat", info_t.delta_hat.numpy(), info.delta_hat),
            ("momentum", info_t.momentum.numpy(), info.momentum),
        ):
            if b is not None:
                worst[name] = max(worst[name], rel_diff(a, b))

    run_loop(
        run, lr, lambda x, t: checked_grads(problem, x, run, streams.at(t)), on_step=compare, progress=False
    )
    return worst


def _map(fn, opt):
    """Apply ``fn`` to every array of an optimiser state (a tuple, an array, or a NamedTuple)."""
    if isinstance(opt, np.ndarray):
        return fn(opt)
    if isinstance(opt, tuple):
        items = [_map(fn, v) if isinstance(v, (np.ndarray, tuple)) else v for v in opt]
        return type(opt)(*items) if hasattr(opt, "_fields") else tuple(items)
    return opt


class ReversedNodes:
    """``problem`` with node i's gradient placed at position N−1−i: the same run, with the
    N terms of every node mean added in reverse order.
    """

    def __init__(self, problem):
        self._problem = problem

    def __getattr__(self, name):
        return getattr(self._problem, name)

    def stochastic_grads(self, x, nodes, rng):
        return self._problem.stochastic_grads(x, nodes, rng)[:, ::-1]


def matching_problems(nodes=4):
    """The problems of the matching test: ψ in the paper's and the aligned basis, a quadratic."""
    return {
        "psi-paper": Psi2x2(basis="paper"),
        "psi-aligned": Psi2x2(basis="aligned"),
        "quadratic": HeterogeneousQuadratic(m=6, n=5, nodes=nodes, seed=2),
    }
