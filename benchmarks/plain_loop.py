"""Algorithm 2 as a plain per-replica, per-node Python loop (MSGD, local error feedback).

A direct transcription of the paper, independent of simsgd's vectorised code: the
baseline of ``bench_engine.py`` and a reference the tests compare the engine against.
Only the oracle and the random streams are shared, so both see the same gradients.
"""

from __future__ import annotations

import numpy as np

from simsgd.streams import NodeStreams, initial_q


def run_replica(problem, replica, *, method, nodes, rank, restart_period, lr, momentum, steps, seed):
    """X_T of one replica. ``method`` is "powersgd" or "powersgd+"."""
    m, n = problem.shape
    x = np.array(problem.x0, dtype=np.float64)
    q = initial_q(seed, [replica], n, rank)[0]
    errors = [np.zeros((m, n)) for _ in range(nodes)]
    mom = np.zeros((m, n))
    basis = None
    streams = NodeStreams(seed, [replica], np.arange(nodes))
    for t in range(steps):
        grads = problem.stochastic_grads(x[None], nodes, streams.at(t))[0]
        deltas = [grads[i] + errors[i] for i in range(nodes)]  # (7a)
        if method == "powersgd+" and t % restart_period == 0:  # SVD-COMP
            basis = np.linalg.svd(sum(deltas) / nodes)[0][:, :rank]
        else:  # SSP-COMP
            p = sum(d @ q for d in deltas) / nodes
            p_tilde, r = np.linalg.qr(p)
            tol = max(m, rank) * np.finfo(float).eps * np.abs(p).max() * np.sqrt(m * rank)
            if basis is None or np.abs(np.diag(r)).min() > tol:  # degenerate: keep P̃_{t-1}
                basis = p_tilde
        q_nodes = [d.T @ basis for d in deltas]
        q = sum(q_nodes) / nodes
        errors = [d - basis @ qi.T for d, qi in zip(deltas, q_nodes)]
        mom = momentum * mom + basis @ q.T  # (7c)
        x = x - lr * mom
    return x
