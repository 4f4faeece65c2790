"""The scale model's measured constants: per-message latency and bandwidth efficiency from the
bandwidth benchmark's communication-alone timings, and the hook's compute per matrix shape.

Communication (gloo's ring all-reduce, N nodes, link rate B): one message of b bytes takes
2(N − 1)·α + 2(N − 1)/N · 8b/(ηB), so a step of M messages and V bytes takes
M·2(N − 1)·α + 2(N − 1)/N · 8V/(ηB). :func:`fit_comm` fits α (seconds per hop) and 1/η by
least squares on the shaped cells' medians, relative errors weighted alike; the unshaped
veth's rate B₀ is then fitted on the unshaped cells with α fixed.

Compute (:func:`fit_compute`): from :mod:`benchmarks.compression_cost`'s file, the
per-bucket overhead h₀ of each kind of step (from the 4-layer stack against one layer) and
per-matrix costs f(m, n) = t(m, n) − h₀; then f ≈ c₀ + c₁·mn (power and fixed-basis steps,
r fixed) or c₀ + c₁·mn + c₂·mn·min(m, n) (restarts: the SVD), non-negative least squares on
relative errors. Measured shapes use their measured f; others the fit.
"""

import itertools
import math

import numpy as np

__all__ = ["fit_comm", "fit_compute", "ComputeModel"]


def _nnls(a, y):
    """Non-negative least squares of a @ c ≈ y for a few columns (every subset tried)."""
    best, best_c = math.inf, np.zeros(a.shape[1])
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            c, *_ = np.linalg.lstsq(a[:, cols], y, rcond=None)
            if np.all(c >= 0):
                err = float(np.sum((a[:, cols] @ c - y) ** 2))
                if err < best:
                    best, best_c = err, np.zeros(a.shape[1])
                    best_c[list(cols)] = c
    return best_c


def _comm_rows(measured):
    """(N, mbit, method, measured median s, hops per step, bits per step × 2(N−1)/N)."""
    rows = []
    for nodes, cells in measured.items():
        n = int(nodes)
        for mbit, cell in cells.items():
            for method, v in cell["methods"].items():
                hops = 2 * (n - 1) * v["messages"]
                bits = 2 * (n - 1) / n * 8 * v["recorded_bytes"]
                rows.append((n, int(mbit), method, float(np.median(v["comm"])), hops, bits))
    return rows


def fit_comm(measured):
    """α, η and the unshaped rate from the bandwidth benchmark's ``measured`` (its JSON's field).

    Returns
    -------
    dict
        ``alpha`` (s per hop), ``eta``, ``unshaped_mbit``, and ``cells``: per cell the measured
        and modelled seconds per step and the relative residual (model / measured − 1).
    """
    rows = _comm_rows(measured)
    shaped = [r for r in rows if r[1]]
    if len(shaped) < 2:
        raise ValueError("the bandwidth results need at least two shaped cells to fit α and η")
    t = np.array([r[3] for r in shaped])
    a = np.array([[r[4], r[5] / (r[1] * 1e6)] for r in shaped]) / t[:, None]
    alpha, inv_eta = _nnls(a, np.ones(len(shaped)))
    eta = 1.0 / inv_eta if inv_eta > 0 else math.inf
    unshaped = [r for r in rows if not r[1]]
    rate = math.inf
    if unshaped:
        rest = np.array([r[3] - alpha * r[4] for r in unshaped]) / np.array([r[3] for r in unshaped])
        x = np.array([r[5] for r in unshaped]) / np.array([r[3] for r in unshaped])
        inv = float(x @ rest / (x @ x))
        rate = 1.0 / inv / 1e6 if inv > 0 else math.inf
    cells = []
    for n, mbit, method, measured_s, hops, bits in rows:
        b = mbit * 1e6 * eta if mbit else rate * 1e6
        model = alpha * hops + bits / b
        cells.append(dict(nodes=n, mbit=mbit, method=method, measured=measured_s, model=model,
                          residual=model / measured_s - 1))  # fmt: skip
    return dict(alpha=float(alpha), eta=float(eta), unshaped_mbit=float(rate), cells=cells)


class ComputeModel:
    """The hook's compute per step: ``bucket(kind)`` + Σ ``matrix(kind, m, n)`` (seconds).

    Parameters
    ----------
    record : dict
        :mod:`benchmarks.compression_cost`'s JSON.
    """

    KINDS = ("power", "restart", "fixed")

    def __init__(self, record):
        shapes = record["shapes"]
        self.device = record.get("device_name", "?")
        load = record.get("load_average")
        self.load = f"load average {load[0]:.1f} when measured" if load else "load not recorded"
        self.rank = next(iter(shapes.values()))["rank"]
        single = {(v["m"], v["n"]): v for v in shapes.values() if v.get("layers", 1) == 1}
        stack = next(v for v in shapes.values() if v.get("layers", 1) > 1)
        one = single[(stack["m"], stack["n"])]
        k = stack["layers"]
        self.overhead = {
            kind: max(0.0, one[kind] - (stack[kind] - one[kind]) / (k - 1)) for kind in self.KINDS
        }
        self.measured = {
            kind: {s: max(0.0, v[kind] - self.overhead[kind]) for s, v in single.items()}
            for kind in self.KINDS
        }
        self.coef, self.fit_residuals = {}, {}
        for kind in self.KINDS:
            pts = list(self.measured[kind].items())
            y = np.array([max(f, 1e-7) for _, f in pts])
            cols = [np.ones(len(pts)), np.array([m * n for (m, n), _ in pts], float)]
            if kind == "restart":
                cols.append(np.array([m * n * min(m, n) for (m, n), _ in pts], float))
            a = np.stack(cols, axis=1)
            self.coef[kind] = _nnls(a / y[:, None], np.ones(len(pts)))
            self.fit_residuals[kind] = {
                f"{m}x{n}": float(self._fit(kind, m, n) / max(f, 1e-7) - 1) for (m, n), f in pts
            }

    def _fit(self, kind, m, n):
        c = self.coef[kind]
        value = c[0] + c[1] * m * n
        if kind == "restart":
            value += c[2] * m * n * min(m, n)
        return float(value)

    def matrix(self, kind, m, n):
        """Per-matrix seconds of a step of ``kind`` for an m × n matrix (measured, else fitted)."""
        if (m, n) in self.measured[kind]:
            return self.measured[kind][(m, n)]
        return self._fit(kind, m, n)

    def bucket(self, kind):
        """Per-bucket seconds of a step of ``kind``."""
        return self.overhead[kind]


def fit_compute(record):
    """:class:`ComputeModel` of a :mod:`benchmarks.compression_cost` record."""
    return ComputeModel(record)
