"""Distributed data-parallel training with PyTorch's own engine (DDP, launched by ``torchrun``).

``torchrun --nproc-per-node=P cryogeom train ...`` (nccl on GPUs, gloo on CPUs). Every process
reads the same particle order; each takes its slice of every global batch, so P processes at a
global batch of B take the same steps as one process at batch B (DDP averages the gradients;
BatchNorm layers become SyncBatchNorm so their statistics are those of the global batch).
Rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def single(cls) -> "Distributed":
        return cls()

    @classmethod
    def from_environment(cls) -> "Distributed":
        """Join the process group that ``torchrun`` describes in the environment (or run alone)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls.single()
        import torch.distributed as dist

        use_cuda = torch.cuda.is_available()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        rank = dist.get_rank()
        device = torch.device("cpu")
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        return cls(rank=rank, world_size=dist.get_world_size(), device=device)

    def shard(self, positions: np.ndarray) -> np.ndarray:
        """This process's slice of a global batch (contiguous, equal sizes)."""
        if self.world_size == 1:
            return positions
        per = len(positions) // self.world_size
        return positions[self.rank * per : (self.rank + 1) * per]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None)

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
