"""The options of the PowerSGD+ communication hook, in one frozen, validated record.

Kept apart from :mod:`.hook` so that the option names (PyTorch's ``PowerSGDState`` names
where they exist), their defaults, their ranges and their saved form are written once.
"""

from dataclasses import asdict, dataclass, fields

import torch

from .._checks import check_choice, check_int, check_real
from . import restart as _restart

__all__ = ["HookOptions", "NONFINITE_POLICIES", "RESTART_METHODS", "BETWEEN_RESTARTS", "COMPUTE_DTYPES"]

NONFINITE_POLICIES = ("raise", "zero")
RESTART_METHODS = _restart.RESTART_METHODS
BETWEEN_RESTARTS = ("power", "fixed")
COMPUTE_DTYPES = (None, torch.float32, torch.float64)

_INTS = {
    "matrix_approximation_rank": (1,),
    "start_powerSGD_iter": (0,),
    "random_seed": (0, 2**32 - 1),
    "restart_oversampling": (0,),
    "restart_power_steps": (1,),
}
_NON_NEGATIVE = ("min_compression_rate", "orthogonalization_epsilon")
_CHOICES = {
    "nonfinite": NONFINITE_POLICIES,
    "restart_method": RESTART_METHODS,
    "between_restarts": BETWEEN_RESTARTS,
}
_BOOLS = ("use_error_feedback", "warm_start", "batch_tensors_with_same_shape", "minimal_restart")


@dataclass(frozen=True)
class HookOptions:
    """What :class:`~simsgd.distributed.hook.PowerSGDPlusState` is built with, checked on creation.

    Attributes
    ----------
    matrix_approximation_rank : int ≥ 1
        r; a matrix m×n is compressed with rank min(m, n, r).
    start_powerSGD_iter : int ≥ 0
        Plain all-reduce before this iteration. Unlike PyTorch's (≥ 2 with error feedback
        or warm start), 0 and 1 are allowed: the memories follow DDP's bucket rebuild.
    min_compression_rate : float ≥ 0
        A matrix is compressed only if (m + n) r · rate < m n.
    use_error_feedback, warm_start : bool
    orthogonalization_epsilon : float ≥ 0
        Added to column norms in Gram–Schmidt (rank ≤ 2); QR is used for rank > 2.
    random_seed : int in [0, 2³² − 1]
        Seeds the NumPy ``RandomState`` that draws one seed per random Q (as PyTorch).
    batch_tensors_with_same_shape : bool
    restart_period : int ≥ 1 or None
        τ of PowerSGD+; None is plain PowerSGD.
    nonfinite : {"raise", "zero"}
        Policy for a NaN or infinite gradient (:mod:`.hook`'s docstring).
    restart_method : {"svd", "randomized"}
        How a restart finds P̃ (:mod:`.hook`'s docstring; the simulator's ``restart`` names).
    restart_oversampling : int ≥ 0
        p, extra columns of the randomized range finder (also used by the SVD fallback).
    restart_power_steps : int ≥ 1
        K, power steps of the randomized range finder (also used by the SVD fallback).
    minimal_restart : bool
        Compute a ``"svd"`` restart's Q locally from Δ̄ instead of all-reducing it. No effect
        without ``restart_period``, so PyTorch parity is untouched.
    compute_dtype : torch.float32, torch.float64 or None
        Compression dtype; None: float32 for float16/bfloat16 buckets, else the bucket's.
    between_restarts : {"power", "fixed"}
        "power": PowerSGD+ (a power step every iteration); "fixed": P̃ kept between restarts
        (GaLore-style; needs ``restart_period`` and ``warm_start``).

    Raises
    ------
    ValueError
        An option out of its range, named with the range.
    """

    matrix_approximation_rank: int = 1
    start_powerSGD_iter: int = 1_000
    min_compression_rate: float = 2
    use_error_feedback: bool = True
    warm_start: bool = True
    orthogonalization_epsilon: float = 0
    random_seed: int = 0
    batch_tensors_with_same_shape: bool = False
    restart_period: int | None = None
    nonfinite: str = "raise"
    restart_method: str = "svd"
    restart_oversampling: int = 4
    restart_power_steps: int = 1
    minimal_restart: bool = True
    compute_dtype: torch.dtype | None = None
    between_restarts: str = "power"

    def __post_init__(self):
        checked = {name: check_int(name, getattr(self, name), *bounds) for name, bounds in _INTS.items()}
        checked |= {name: check_real(name, getattr(self, name), 0.0) for name in _NON_NEGATIVE}
        checked |= {name: check_choice(name, getattr(self, name), known) for name, known in _CHOICES.items()}
        checked |= {name: bool(getattr(self, name)) for name in _BOOLS}
        if self.restart_period is not None:
            checked["restart_period"] = check_int("restart_period", self.restart_period, 1)
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(
                f"compute_dtype must be None, torch.float32 or torch.float64, got {self.compute_dtype!r}"
            )
        if self.between_restarts == "fixed" and (self.restart_period is None or not self.warm_start):
            raise ValueError(
                "between_restarts='fixed' needs restart_period (an int ≥ 1) and warm_start=True, "
                f"got restart_period={self.restart_period!r}, warm_start={self.warm_start}"
            )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def saved(self) -> dict:
        """The options as a state dict holds them (``compute_dtype`` as its name)."""
        return {**asdict(self), "compute_dtype": str(self.compute_dtype)}
