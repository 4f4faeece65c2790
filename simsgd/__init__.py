"""simsgd: PowerSGD and PowerSGD+ (Xie, Chen & Yuan) put to the test.

The NumPy core needs no torch; the torch.distributed backend lives in ``simsgd.distributed``.
"""

from . import check, problems
from .algorithm import Config
from .compression import Compression, Compressor
from .compressors import ssp_compress, svd_compress
from .engine import simulate
from .orthogonalize import DegenerateQRError, orthogonalize
from .registry import register
from .sweep import sweep
from .trace import Trace

__all__ = [
    "ssp_compress",
    "svd_compress",
    "simulate",
    "problems",
    "orthogonalize",
    "Config",
    "Trace",
    "DegenerateQRError",
    "Compressor",
    "Compression",
    "register",
    "sweep",
    "check",
]
__version__ = "0.1.0"  # the one version source (pyproject.toml reads it)
