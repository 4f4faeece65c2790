"""The explorer's settings: :class:`Settings` (one point of the explorer), the built-in problems
(:data:`PROBLEMS`, :data:`SHAPES`), the restart rules (:data:`RULES`), and which settings each
built-in method's run does not depend on (:data:`IGNORED`, what the run cache leaves out).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import registry
from .._checks import check_choice, check_int, check_real
from ..compressors import RESTART_KINDS
from ..problems.psi import check_noise_scale
from ..restarts import ErrorGrowth, Geometric

__all__ = ["PROBLEMS", "SHAPES", "CUSTOM", "RULES", "IGNORED", "Settings", "parse_numbers"]

PROBLEMS = {
    "psi-paper": "ψ 2×2 (eq. 10), paper basis",
    "psi-aligned": "ψ 2×2 (eq. 10), aligned basis",
    "psi-random": "ψ 2×2 (eq. 10), random basis",
    "general": "general counterexample 8×8, k = 2, aligned basis",
    "general-random": "general counterexample 8×8, k = 2, random basis",
    "quadratic": "heterogeneous quadratic 8×6",
}
"""The built-in problems by key, with the label a selector shows."""

SHAPES = {
    "psi-paper": (2, 2),
    "psi-aligned": (2, 2),
    "psi-random": (2, 2),
    "general": (8, 8),
    "general-random": (8, 8),
    "quadratic": (8, 6),
}
"""The shape (m, n) of X in each built-in problem."""

CUSTOM = "custom"
"""The key of a problem object passed in Python (:class:`Explorer`'s ``problem``)."""

RULES = {
    "periodic": "periodic: t mod τ = 0",
    "geometric": "geometric: t = 0, τ, 2τ, 4τ, …",
    "error-growth": "error growth (τ unused)",
}
"""When PowerSGD+ and GaLore restart (:mod:`simsgd.restarts`), by key, with a label."""

IGNORED = {
    "powersgd+": (),
    "galore": ("restart",),
    "powersgd": ("tau", "rule", "restart"),
    "power-iteration": ("tau", "rule", "restart"),
    "topk": ("tau", "rule", "restart"),
    "randomk": ("tau", "rule", "restart"),
    "qsgd": ("rank", "tau", "rule", "restart"),
    "sign": ("rank", "tau", "rule", "restart"),
    "full": ("rank", "tau", "rule", "restart"),
}
"""For each built-in method, the settings its run does not depend on (the run cache leaves them out;
tests/test_explore.py checks that each really changes nothing). A name you register depends on all."""


def parse_numbers(text: str, name: str, kind=float) -> tuple:
    """Comma- or space-separated numbers ("5, 10" → (5.0, 10.0)); ValueError naming ``name``."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        return tuple(kind(p) for p in parts)
    except ValueError:
        raise ValueError(f"{name} must be numbers separated by commas, got {text!r}") from None


@dataclass(frozen=True)
class Settings:
    """One point of the explorer: the problem, Algorithm 2's options and the methods shown.

    Attributes
    ----------
    problem : str
        A key of :data:`PROBLEMS`, or :data:`CUSTOM` for the problem passed to :class:`Explorer`.
    tau, rank, nodes : int
        τ ≥ 1, 1 ≤ r ≤ min(m, n), N ≥ 1.
    sigma : float or tuple of float
        σ (every node) or σ_i per node (then N must equal their number); the quadratic's
        low-rank noise scale (one σ); unused by a custom problem.
    lr, momentum : float
        η and μ of MSGD (7c).
    steps, replicas, seed : int
        T, R and the seed of :func:`simsgd.simulate`.
    methods : tuple of str
        Registered method names (:func:`simsgd.registry.names`).
    restart : str
        PowerSGD+'s restart compressor, a key of :data:`simsgd.compressors.RESTART_KINDS`.
    rule : str
        When to restart, a key of :data:`RULES`.
    """

    problem: str = "psi-aligned"
    tau: int = 10
    rank: int = 1
    nodes: int = 4
    sigma: float | tuple = 5.0
    lr: float = 1e-3
    momentum: float = 0.9
    steps: int = 200
    replicas: int = 64
    seed: int = 0
    methods: tuple = ("powersgd", "powersgd+", "full")
    restart: str = "svd"
    rule: str = "periodic"

    def checked(self) -> Settings:
        """The settings with each checked (ValueError naming the first one out of range)."""
        check_choice("problem", self.problem, (*PROBLEMS, CUSTOM))
        check_int("tau", self.tau, 1)
        check_int("rank", self.rank, 1)
        nodes = check_int("nodes", self.nodes, 1)
        sigma = self.sigma
        if np.ndim(sigma):
            sigma = tuple(check_noise_scale(list(sigma))[1].tolist())
            if len(sigma) != nodes:
                raise ValueError(f"sigma lists one σ_i per node: {len(sigma)} values for N = {nodes}")
            if self.problem == "quadratic":
                raise ValueError("sigma must be one number for the quadratic (its low-rank noise scale)")
        else:
            sigma = check_noise_scale(sigma)[0]
        check_real("lr", self.lr, 0.0, low_open=True)
        check_real("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_int("steps", self.steps, 1)
        check_int("replicas", self.replicas, 1)
        check_int("seed", self.seed, 0)
        if not self.methods:
            raise ValueError("methods must name at least one method")
        for method in self.methods:
            check_choice("methods", method, registry.names())
        check_choice("restart", self.restart, tuple(RESTART_KINDS))
        check_choice("rule", self.rule, tuple(RULES))
        return replace(self, sigma=sigma, methods=tuple(self.methods))

    @property
    def restart_period(self):
        """τ as :func:`simsgd.simulate` takes it: an int (periodic) or a rule of :mod:`simsgd.restarts`."""
        if self.rule == "geometric":
            return Geometric(self.tau)
        if self.rule == "error-growth":
            return ErrorGrowth()
        return self.tau

    def simulate_options(self) -> dict:
        """The options of :func:`simsgd.simulate` every method's run shares (MSGD)."""
        return dict(
            nodes=self.nodes,
            optimizer="msgd",
            lr=self.lr,
            momentum=self.momentum,
            steps=self.steps,
            replicas=self.replicas,
            seed=self.seed,
            restart=self.restart,
        )
