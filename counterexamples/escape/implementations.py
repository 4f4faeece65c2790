"""The implementations the escape map compares, and why the paper basis separates them.

In the paper's basis every quantity of Claim 1's lock is symmetric under swapping the two
coordinates (J = [[0, 1], [1, 0]]: JΔJ = Δ for Δ ∈ span(A, B), JC = C). The lock survives in
floating point exactly as long as the rounded arithmetic keeps that symmetry: then P = ΔQ has
two equal entries whenever Q has, P̃ = C to the last bit, and no rounding tilt exists for the
lock's instability to grow. :func:`symmetry_table` measures, on random symmetric inputs, which
building blocks keep it:

* the project's small-matrix product (``NumpyOps.matmul``: each entry a sum of rounded products
  in the order j = 0, 1 — a + b = b + a in floating point) keeps it; so does torch's eager one;
* ``np.matmul`` (OpenBLAS' gemm here, with fused multiply-adds: fl(a·q + fl(b·q)) ≠
  fl(b·q + fl(a·q))) breaks it;
* the closed-form rank-1 Householder P/β and Gram–Schmidt's P/||P|| keep it; LAPACK's Householder
  QR (which treats the first entry apart) breaks it;
* "native" QR(0) on an exactly zero P returns e₁, which is not symmetric.

Two array backends run the engine with another building block, through the public
:func:`simsgd.backends.register` (no change to the engine): ``"numpy-blas"`` (NumPy with
``np.matmul``) and ``"torch-bf16"`` (torch, every array in bfloat16).
"""

from __future__ import annotations

import numpy as np

from simsgd import backends
from simsgd.ops import NUMPY, NumpyOps
from simsgd.orthogonalize import orthogonalize
from simsgd.streams import NodeStreams

__all__ = ["BLAS", "BF16", "register", "symmetry_table", "has_torch"]

BLAS, BF16 = "numpy-blas", "torch-bf16"


class BlasOps(NumpyOps):
    """NumPy's engine with ``np.matmul`` (BLAS gemm) in place of its entry-by-entry product."""

    name = BLAS

    @staticmethod
    def matmul(a, b):
        return np.matmul(a, b)


def has_torch() -> bool:
    """Whether torch imports here (the bfloat16 rows need it)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _bf16_backend():
    import torch

    from simsgd.streams import TorchNodeStreams
    from simsgd.torch_ops import TorchOps, check_device

    class BF16Ops(TorchOps):
        """Torch's engine with X, Q, e, m and every intermediate in bfloat16 (no float32 master copy)."""

        name = BF16

        def from_numpy(self, a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, torch.bfloat16)

    return backends.Backend(BF16, check_device, BF16Ops, TorchNodeStreams)


def register():
    """Register ``"numpy-blas"`` and, where torch is present, ``"torch-bf16"`` (once)."""
    if BLAS not in backends.names():
        backends.register(
            BLAS,
            lambda: backends.Backend(
                BLAS,
                lambda device: device,
                lambda device: BlasOps(),
                lambda s, ids, nodes, device: NodeStreams(s, ids, nodes),
            ),
        )
    if has_torch() and BF16 not in backends.names():
        backends.register(BF16, _bf16_backend)


def _symmetric_inputs(samples, nodes, dtype, rng):
    """Δ^{(i)} = [[a, b], [b, a]] (N nodes) and Q = (c, c), at mixed scales."""
    scale = rng.choice([1e-3, 1.0, 1e3], size=(samples, nodes))
    a = rng.standard_normal((samples, nodes)) * scale
    b = 5 * rng.standard_normal((samples, nodes))
    deltas = np.stack([np.stack([a, b], -1), np.stack([b, a], -1)], -2).astype(dtype)
    c = rng.standard_normal(samples).astype(dtype)
    return deltas, np.stack([c, c], -1)[..., None]


def _torch_case(deltas, q):
    if not has_torch():
        return {}
    import torch

    from simsgd.torch_ops import TorchOps

    ops = TorchOps()
    out = ops.node_mean(ops.matmul(torch.from_numpy(deltas), torch.from_numpy(q)[:, None]))
    return {"P = mean_i Δ^{(i)}Q, TorchOps.matmul (eager)": out.numpy()}


def symmetry_table(samples=20000, nodes=3, seed=0) -> list[dict]:
    """Per building block and precision, the share of random swap-symmetric inputs whose
    output is not symmetric (its two entries differ): 0 keeps the paper-basis lock exact.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for dtype in ("float64", "float32"):
        deltas, q = _symmetric_inputs(samples, nodes, dtype, rng)
        own = NUMPY.node_mean(NUMPY.matmul(deltas, q[:, None]))
        blas = np.matmul(deltas, q[:, None]).mean(axis=1)
        p = np.stack([own[:, 0, 0], own[:, 0, 0]], -1)[..., None]  # a symmetric P
        cases = {
            "P = mean_i Δ^{(i)}Q, NumpyOps.matmul (entry by entry)": own,
            "P = mean_i Δ^{(i)}Q, np.matmul (BLAS gemm)": blas,
            **_torch_case(deltas, q),
            **{
                f"P̃ = QR(P), {method}": orthogonalize(p, method=method, degenerate_qr="native")[0]
                for method in ("householder", "gram-schmidt", "lapack")
            },
        }
        for name, out in cases.items():
            rows.append(
                {
                    "block": name,
                    "dtype": dtype,
                    "samples": samples,
                    "asymmetric_share": float((out[:, 0, 0] != out[:, 1, 0]).mean()),
                }
            )
    return rows
