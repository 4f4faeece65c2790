"""The torch engine: :func:`simsgd.simulate` with ``backend="torch"`` on CPU or CUDA.

The same :func:`simsgd.algorithm.step` runs over :class:`TorchOps` (the node axis averaged
locally, as :class:`~simsgd.ops.NumpyOps` does), the oracles are the problems' own
(written once against :func:`simsgd.ops.array_ops`), the draws are
:class:`~simsgd.streams.TorchNodeStreams` (bit for bit the NumPy engine's), and the run is
driven by :func:`simsgd.engine.run_loop` and recorded by :class:`simsgd.engine.Recorder`.
``compile=True`` runs blocks of steps through ``torch.compile`` (see :func:`compiled_loop`).

Needs torch; ``import simsgd`` does not import this module.
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np
import torch

from . import algorithm
from .engine import Recorder, residual_terms, resolve_lr, run_traced
from .optimizers import AdamState
from .streams import TorchNodeStreams

__all__ = ["TorchOps", "TORCH", "check_device", "simulate_torch"]


def check_device(device) -> torch.device:
    """``device`` as a torch.device: "cpu", or "cuda"/"cuda:k" when CUDA is present.

    Raises
    ------
    ValueError
        Not a CPU or CUDA device, or CUDA asked for where there is none.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} needs CUDA, and torch.cuda.is_available() is False here")
    return dev


class TorchOps:
    """Algorithm 2's array operations on torch tensors; the node axis (-3) is averaged locally.

    Parameters
    ----------
    device : str or torch.device
        Where :meth:`from_numpy` puts arrays.

    Notes
    -----
    ``node_mean`` adds the node slices in order 0, 1, …, N−1 as NumPy's does, and the
    rank-1 QR is the same closed form, so most numbers equal the NumPy engine's; torch's
    LAPACK calls, ``sqrt`` and reductions may differ in the last bit. The SVD of a restart step
    is a closed form for 2×2 (:func:`top_left_singular_vectors_2x2`) and may return singular
    vectors of the opposite sign (then Q_t has the opposite sign; P̃ Qᵀ, X_t and the
    trace do not depend on it).
    """

    name = "torch"

    def __init__(self, device="cpu"):
        self.device = torch.device(device)

    @staticmethod
    def node_mean(x):
        """(1/N) Σ_i x^{(i)}: mean over the node axis, ``(..., N, a, b) -> (..., a, b)``."""
        total = x[..., 0, :, :]
        for i in range(1, x.shape[-3]):
            total = total + x[..., i, :, :]
        return total / x.shape[-3]

    @staticmethod
    def matmul(a, b):
        """Batched ``a @ b``; for small contractions a sum of broadcast outer products
        (elementwise kernels that fuse under ``torch.compile`` and avoid per-matrix GEMMs).
        """
        k = a.shape[-1]
        if k > 8 or a.shape[-2] * b.shape[-1] > 64:
            return a @ b
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for j in range(1, k):
            out = out + a[..., :, j : j + 1] * b[..., j : j + 1, :]
        return out

    @staticmethod
    def qr(p):
        """Householder QR. Returns ``(Q, diag(R))``.

        On CUDA batched ``linalg.qr`` runs matrix by matrix, so there it is CholeskyQR2
        (two Cholesky passes, orthogonal to rounding for the well-conditioned P of
        Algorithm 1; a rank-deficient P gives a zero pivot and is caught as degenerate).
        """
        if p.device.type == "cuda":
            return cholesky_qr2(p)
        q, r = torch.linalg.qr(p)
        return q, torch.diagonal(r, dim1=-2, dim2=-1)

    @staticmethod
    def svd(p):
        """Reduced SVD's left singular vectors and singular values: (..., m, k), (..., k)."""
        u, s, _ = torch.linalg.svd(p, full_matrices=False)
        return u, s

    @staticmethod
    def top_left_singular_vectors(d, rank):
        """First ``rank`` left singular vectors of ``d`` (..., m, n) -> (..., m, rank).

        2×2: closed form (LAPACK's batched SVD of 10⁵ 2×2 matrices costs more than a whole
        τ = 10 cycle); otherwise ``torch.linalg.svd``.
        """
        if d.shape[-2:] == (2, 2):
            return top_left_singular_vectors_2x2(d)[..., :rank]
        return torch.linalg.svd(d, full_matrices=False)[0][..., :rank]

    @staticmethod
    def sqnorm(x):
        """Squared Frobenius norm over the last two axes."""
        return (x * x).sum(dim=(-2, -1))

    @staticmethod
    def maxabs(x):
        """Max |x_ij| over the last two axes."""
        return x.abs().amax(dim=(-2, -1))

    @staticmethod
    def col_sum(x, keep=True):
        """Sum over the row axis (-2): per-column sums, shape (..., 1, k)."""
        return x.sum(dim=-2, keepdim=keep)

    @staticmethod
    def expand_mask(mask, like):
        """Broadcast a batch mask of shape (...) to ``like``'s (..., a, b)."""
        return mask[..., None, None]

    @staticmethod
    def amin_last(x):
        """Minimum over the last axis."""
        return x.amin(dim=-1)

    @staticmethod
    def copy(x):
        return x.clone()

    @staticmethod
    def where(mask, a, b):
        return torch.where(mask, a, b)

    @staticmethod
    def zeros_like(x):
        return torch.zeros_like(x)

    @staticmethod
    def any(mask) -> bool:
        return bool(torch.any(mask))

    @staticmethod
    def asnumpy(x):
        return x.detach().cpu().numpy()

    @staticmethod
    def node_layout(x):
        """``x`` as it is (NumpyOps lays out per-node arrays for its loops; torch needs not)."""
        return x

    def from_numpy(self, a):
        """A NumPy array as a tensor on this ops' device."""
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @staticmethod
    def asarray(a, like):
        """``a`` (array, tensor or scalar) as a tensor of ``like``'s dtype and device."""
        return torch.as_tensor(a, dtype=like.dtype, device=like.device)

    @staticmethod
    def all_finite(x) -> bool:
        return bool(torch.isfinite(x).all())

    @staticmethod
    def stack(arrays):
        return torch.stack(arrays)

    abs = staticmethod(torch.abs)
    clip = staticmethod(torch.clip)
    einsum = staticmethod(torch.einsum)
    ones_like = staticmethod(torch.ones_like)

    @staticmethod
    def eps(x) -> float:
        return float(torch.finfo(x.dtype).eps)

    @staticmethod
    def ignore_division_warnings():
        # torch does not warn on 0/0; the NaN is caught by the engine's finiteness check.
        return contextlib.nullcontext()


TORCH = TorchOps()
"""The CPU instance (:func:`simsgd.ops.array_ops` of a tensor; the oracles use only its
device-independent methods)."""


def top_left_singular_vectors_2x2(d):
    """Left singular vectors of 2×2 matrices in closed form: (..., 2, 2) -> (..., 2, 2).

    u₁ is the top eigenvector of S = D Dᵀ = [[a, b], [b, c]], taken as the longer of the two
    eigenvector candidates (b, λ₁ − a) and (λ₁ − c, b), which keeps it exact when S is
    diagonal; u₂ = (−u₁₂, u₁₁). When D Dᵀ ∝ I (both candidates zero) u₁ = e₁. Computed on
    D / max|D_ij| so that neither overflows nor underflows.
    """
    scale = d.abs().amax(dim=(-2, -1), keepdim=True)
    d = d / torch.where(scale == 0, 1, scale)
    a = d[..., 0, 0] ** 2 + d[..., 0, 1] ** 2
    c = d[..., 1, 0] ** 2 + d[..., 1, 1] ** 2
    b = d[..., 0, 0] * d[..., 1, 0] + d[..., 0, 1] * d[..., 1, 1]
    half = (a - c) / 2
    lam = (a + c) / 2 + torch.sqrt(half * half + b * b)
    v1x, v1y, v2x, v2y = b, lam - a, lam - c, b
    n1, n2 = v1x * v1x + v1y * v1y, v2x * v2x + v2y * v2y
    first = n1 > n2
    x = torch.where(first, v1x, v2x)
    y = torch.where(first, v1y, v2y)
    norm = torch.sqrt(torch.where(first, n1, n2))
    zero = norm == 0
    safe = torch.where(zero, 1, norm)
    ux = torch.where(zero, 1, x / safe)
    uy = torch.where(zero, 0, y / safe)
    return torch.stack((torch.stack((ux, -uy), -1), torch.stack((uy, ux), -1)), -2)


def cholesky_qr2(p):
    """Thin QR of tall (..., m, r) by CholeskyQR2. Returns ``(Q, diag(R))``; a rank-deficient P
    (Cholesky fails) gives Q = 0 and a zero pivot there.
    """
    r_total = None
    q = p
    for _ in range(2):
        gram = q.mT @ q
        chol, info = torch.linalg.cholesky_ex(gram)
        bad = info != 0
        chol = torch.where(bad[..., None, None], torch.eye(p.shape[-1], dtype=p.dtype, device=p.device), chol)
        q = torch.linalg.solve_triangular(chol.mT, q, upper=True, left=False)
        q = torch.where(bad[..., None, None], 0, q)
        r = chol.mT
        r_total = r if r_total is None else r @ r_total
        r_total = torch.where(bad[..., None, None], 0, r_total)
    return q, torch.diagonal(r_total, dim1=-2, dim2=-1)


def simulate_torch(problem, run, lr, device="cpu", compile=False, record=None, progress=None):
    """:func:`simsgd.simulate` on torch: the checked ``run`` (:func:`simsgd.engine.prepare`).

    Returns
    -------
    Trace
        NumPy arrays, the same fields as the NumPy engine's.
    """
    ops = TorchOps(check_device(device))
    streams = TorchNodeStreams(run.seed, run.replica_ids, np.arange(run.nodes), ops.device)
    recorder = Recorder(problem, run, ops, record=record)
    if compile:
        return compiled_loop(problem, run, lr, ops, streams, recorder, progress)
    return run_traced(problem, run, lr, streams, recorder, ops=ops, progress=progress)


class _CompiledOps(TorchOps):
    """TorchOps without data-dependent Python branches (each would break the compiled graph):
    ``any`` answers True, so the degenerate-QR replacement is always applied through ``where``
    (the same numbers: the mask is false where P is not degenerate).
    """

    @staticmethod
    def any(mask) -> bool:
        return True


_FUSED = weakref.WeakKeyDictionary()  # problem -> {options: compiled block}


def _fused_block(problem, config, nodes, record, block, device):
    """The compiled block of :func:`compiled_loop`, built once per problem and options.

    Reusing it lets later runs (other seeds, replicas, T) skip dynamo's tracing; the
    streams are an argument, not a closure, for that reason.
    """
    key = (config, nodes, record, block, str(device))
    cache = _FUSED.setdefault(problem, {})
    if key in cache:
        return cache[key]
    cops = _CompiledOps(device)

    def body(state, streams, t0, lrs):
        rows = {name: [] for name in ("grads_ok", "x_ok", "degenerate", "degenerate_own_scale", *record)}
        for k in range(block):
            x = state.x
            grads = cops.asarray(problem.stochastic_grads(x, nodes, streams.at(t0 + k)), like=x)
            rows["grads_ok"].append(torch.isfinite(grads).flatten(1).all(1))
            error = state.error
            state, info = algorithm.step(state, grads, k, lrs[k], config, cops)
            if info.svd_step:  # as run_loop records it
                num, den = residual_terms(info.delta_hat, cops.node_mean(grads + error), cops)
                rows.setdefault("residual_num", []).append(num)
                rows.setdefault("residual_den", []).append(den)
            x = state.x
            rows["x_ok"].append(torch.isfinite(x).flatten(1).all(1))
            if config.method not in ("full", "galore"):  # SVD steps have no QR: count 0
                none = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
                rows["degenerate"].append(none if info.degenerate is None else info.degenerate)
                own = info.degenerate_own_scale
                rows["degenerate_own_scale"].append(none if own is None else own)
            if "grad_norm_sq" in record:
                rows["grad_norm_sq"].append(cops.sqnorm(problem.grad(x)))
            if "loss" in record:
                rows["loss"].append(problem.loss(x))
            if "momentum_norm_sq" in record:
                rows["momentum_norm_sq"].append(cops.sqnorm(info.momentum))
            if "error_norm_sq" in record:
                rows["error_norm_sq"].append(cops.sqnorm(cops.node_mean(state.error)))
        return state, {name: torch.stack(v) for name, v in rows.items() if v}

    # Inductor's CPU vectoriser works along the innermost axis, here of length 2–16 (masked
    # vectors): plain scalar C++ ran 1.5–2.1× faster in development runs (docs/torch-engine.md).
    cache[key] = torch.compile(body, dynamic=False, options={"cpp.vec_isa_ok": False})
    return cache[key]


def compiled_loop(problem, run, lr, ops, streams, recorder, progress=None, block=None):
    """:func:`simsgd.engine.run_loop` with blocks of steps fused into one ``torch.compile`` call.

    A block runs oracle, :func:`simsgd.algorithm.step` and the trace's reductions for
    ``block`` consecutive steps (default τ for PowerSGD+/GaLore, else 10) and returns the
    per-step rows, which are then checked for finiteness (naming the step and replicas, as
    the eager loop does) and recorded. Blocks start at multiples of τ, so t enters
    ``algorithm.step`` (only through the restart rule t mod τ) as the offset in the block
    and every block is the same graph. Step 0 (initialisation) and the last partial block
    run eagerly; :func:`simsgd.engine.run_loop` drives both.

    Adam's step count enters the blocks as a float64 tensor (an int would be specialised, one
    graph per value).

    Raises
    ------
    ValueError
        ``degenerate_qr="raise"`` (a data-dependent exception cannot be compiled) or a restart
        other than ``"svd"`` (its random sketch is drawn outside the graph).
    """
    config = run.config
    if config.degenerate_qr == "raise":
        raise ValueError("compile=True does not support degenerate_qr='raise'; use compile=False")
    if config.method == "powersgd+" and config.restart != "svd":
        raise ValueError(f"compile=True supports restart='svd' only, got restart={config.restart!r}")
    if block is None:
        block = config.restart_period if config.method in ("powersgd+", "galore") else 10
    fused = _fused_block(problem, config, run.nodes, recorder.record, block, ops.device)

    def fused_block(state, t):
        x = state.x
        if isinstance(state.opt, AdamState) and not isinstance(state.opt.count, torch.Tensor):
            count = torch.tensor(float(state.opt.count), dtype=torch.float64, device=x.device)
            state = state._replace(opt=state.opt._replace(count=count))
        lrs = torch.tensor([resolve_lr(lr, t + k) for k in range(block)], dtype=x.dtype, device=x.device)
        state, rows = fused(state, streams, torch.tensor(t, device=x.device), lrs)
        return state, {name: ops.asnumpy(v) for name, v in rows.items()}

    return run_traced(
        problem, run, lr, streams, recorder, ops=ops, progress=progress, blocks=(block, fused_block)
    )
