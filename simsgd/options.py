"""The option values of :func:`simsgd.simulate` and :class:`simsgd.algorithm.Config`, in one place.

Each option is a ``Literal`` type for annotations and type checkers, and a tuple of its
values (``typing.get_args`` of the type) for run-time checks and ``--help`` texts.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "Method",
    "ErrorFeedback",
    "Orthogonalization",
    "DegenerateQR",
    "OptimizerName",
    "Restart",
    "FloatDtype",
    "METHODS",
    "ERROR_FEEDBACKS",
    "ORTHOGONALIZATIONS",
    "DEGENERATE_QR",
    "OPTIMIZERS",
    "RESTARTS",
]

Method = Literal[
    "powersgd", "powersgd+", "full", "galore", "power-iteration", "topk", "randomk", "qsgd", "sign"
]
"""The built-in compressors (:mod:`simsgd.registry`): PowerSGD (SSP-COMP every step), PowerSGD+
(SVD-COMP when t mod τ = 0), uncompressed averaging, two baselines of Table 2 — GaLore (P̃ from an
SVD of the averaged Δ when t mod τ = 0, kept fixed in between, nodes send P̃ᵀΔ^{(i)}, never error
feedback) and PowerSGD with K = ``power_steps`` power-iteration steps (8) per iteration — and the
field's standard compressors of :mod:`simsgd.baselines` (top-k, random-k, QSGD, scaled sign). A
name registered with :func:`simsgd.registry.register`, or a Compressor object, works too."""

ErrorFeedback = Literal["local", "global", "none"]
"""e^{(i)} ← Δ^{(i)} − P̃ Q^{(i)ᵀ} (the paper), e^{(i)} ← Δ^{(i)} − Δ̂ (PyTorch's hook), none."""

Orthogonalization = Literal["householder", "lapack", "gram-schmidt"]
"""QR(·) of Algorithm 1; see :mod:`simsgd.orthogonalize`."""

DegenerateQR = Literal["previous", "native", "zero", "raise"]
"""What QR(P) gives when P is rank-deficient; see :mod:`simsgd.orthogonalize`."""

OptimizerName = Literal["sgd", "msgd", "adam", "adamw"]
"""The base optimiser of step (7c); see :mod:`simsgd.optimizers`."""

Restart = Literal["svd", "randomized", "random", "power"]
"""PowerSGD+'s restart compressors (Remark 2; :func:`simsgd.compressors.restart_step`): the paper's
exact top-r SVD of the node average; a Halko–Martinsson–Tropp range finder; a fresh Gaussian
basis; K power steps from a random start."""

FloatDtype = Literal["float32", "float64"]

METHODS: tuple[str, ...] = get_args(Method)
ERROR_FEEDBACKS: tuple[str, ...] = get_args(ErrorFeedback)
ORTHOGONALIZATIONS: tuple[str, ...] = get_args(Orthogonalization)
DEGENERATE_QR: tuple[str, ...] = get_args(DegenerateQR)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
RESTARTS: tuple[str, ...] = get_args(Restart)
