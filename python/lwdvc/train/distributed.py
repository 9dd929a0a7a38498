"""Data-parallel context: torchrun's environment, the gloo/nccl process group and small collectives."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext"]


@dataclass
class DistContext:
    """Rank, world size and helpers that are no-ops in a single process.

    Use :meth:`from_env`: under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group
    (gloo on CPU, nccl when CUDA is available), otherwise it describes a single process.
    """

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @classmethod
    def from_env(cls) -> DistContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank = int(os.environ.get("RANK", "0"))
        owns = False
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            owns = True
        return cls(rank=rank, world=world, owns_group=owns)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a float tensor over ranks (returns a new tensor)."""
        values = values.detach().clone()
        if self.world > 1:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (a one-element list in a single process)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
