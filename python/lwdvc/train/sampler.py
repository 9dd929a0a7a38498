"""Deterministic, resumable sampling of training items for any number of data-parallel ranks."""
from __future__ import annotations

import torch

__all__ = ["StepSampler"]


class StepSampler:
    """Dataset indices of every optimisation step as a pure function of the step number.

    Epoch ``e`` visits the dataset in the order ``randperm(length, seed(e))``; the global batch
    of step ``s`` is the ``world * batch_size`` positions that follow step ``s - 1``'s, and rank
    ``r`` takes its contiguous share. Resuming at any step therefore needs only the step number;
    :meth:`position` reports the equivalent (epoch, offset) for checkpoints.

    Args:
        length: dataset size (> 0).
        batch_size: items per rank per step.
        seed: shuffling seed.
        rank, world: this process's data-parallel rank and the number of ranks.
    """

    def __init__(self, length: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if length < 1:
            raise ValueError(f"the training dataset is empty (length {length})")
        if batch_size < 1 or world < 1 or not 0 <= rank < world:
            raise ValueError(f"bad sampler setup: batch_size={batch_size}, rank={rank}, world={world}")
        self.length, self.batch_size, self.seed = int(length), int(batch_size), int(seed)
        self.rank, self.world = int(rank), int(world)
        self._orders: dict[int, torch.Tensor] = {}

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._orders = {epoch: torch.randperm(self.length, generator=generator)}
        return self._orders[epoch]

    def position(self, step: int) -> dict[str, int]:
        """``{"epoch", "offset", "consumed"}`` before step ``step`` (items drawn by all ranks)."""
        consumed = step * self.batch_size * self.world
        return {"epoch": consumed // self.length, "offset": consumed % self.length, "consumed": consumed}

    def indices(self, step: int) -> list[int]:
        """The dataset indices this rank uses at ``step`` (0-based)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        start = (step * self.world + self.rank) * self.batch_size
        out = []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.length)
            out.append(int(self._order(epoch)[offset]))
        return out
