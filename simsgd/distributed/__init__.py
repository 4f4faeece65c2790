"""torch.distributed: Algorithm 2 on real processes, and a DDP communication hook.

Needs torch (``pip install ".[torch]"``); ``import simsgd`` does not import it.

``simulate_distributed``      :func:`simsgd.simulate` with one node per process (all_reduce).
``launch``                    run a function on N local gloo/NCCL processes, or under torchrun.
``PowerSGDPlusState``, ``powersgd_plus_hook``   PowerSGD+ as a ``DistributedDataParallel`` hook.
"""

from .backend import simulate_distributed
from .launch import RankError, launch, under_torchrun
from .ops import TorchOps

__all__ = ["simulate_distributed", "launch", "RankError", "under_torchrun", "TorchOps"]
