"""torch.distributed: Algorithm 2 on real processes, and a DDP communication hook.

Needs torch (``pip install ".[torch]"``); ``import simsgd`` does not import it.

``simulate_distributed``      :func:`simsgd.simulate` with one node per process (all_reduce),
                              or bit for bit the simulator's numbers (``reference=True``).
``simulate_sharded``          a Monte Carlo run with its replicas sharded over the ranks,
                              gathered into one Trace (bit for bit the single-process one).
``launch``                    run a function on N local gloo/NCCL processes, or under torchrun.
``PowerSGDPlusState``, ``powersgd_plus_hook``   PowerSGD+ as a ``DistributedDataParallel`` hook.
``hook_for``                  any :class:`simsgd.compression.Compressor` as a DDP hook.
"""

from .compressor_hook import CompressorHookState, hook_for
from .hook import PowerSGDPlusState, powersgd_plus_hook
from .launch import RankError, launch, under_torchrun
from .ops import ReferenceOps, TorchOps
from .runner import concat_traces, in_lanes, simulate_distributed, simulate_sharded

__all__ = [
    "simulate_distributed",
    "simulate_sharded",
    "concat_traces",
    "in_lanes",
    "launch",
    "RankError",
    "under_torchrun",
    "TorchOps",
    "ReferenceOps",
    "PowerSGDPlusState",
    "powersgd_plus_hook",
    "hook_for",
    "CompressorHookState",
]
