"""Channel importance: L2 norm of all weights that write a channel, normalised per group.

A group's producers (conv/linear output channels, transposed-conv output channels, biases,
affine norms; see :mod:`lwdvc_kernels.masking`) are scored together with the fused
``lwdvc_kernels.ops.channel_norm``. Producers whose channels map onto the group's channels
through an index (a conv before a PixelShuffle writes ``r*r`` channels per group channel) are
normed per channel and their squared norms summed into the group channel they feed.
Scores use the raw (unmasked) weights, so a pruned channel keeps the score of its weights and
can come back when they grow.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from lwdvc_kernels.ops import channel_norm

__all__ = ["raw_tensor", "GroupScorer", "normalise_per_group"]


def raw_tensor(owner: nn.Module, name: str) -> torch.Tensor:
    """The unmasked tensor ``name`` of ``owner`` (the parametrization's original if attached)."""
    if parametrize.is_parametrized(owner, name):
        return owner.parametrizations[name].original
    return getattr(owner, name)


@dataclass
class _IndexedProducer:
    owner: nn.Module
    tensor: str
    dim: int
    positions: torch.Tensor
    units: torch.Tensor


@dataclass
class GroupScorer:
    """Scores the channels of one channel group from its producers' weights.

    Attributes:
        size: number of channels of the group.
        direct: (owner, tensor name, dim) of producers whose channels are the group's channels.
        indexed: producers mapped onto the group's channels through ``units``.
    """

    size: int
    direct: list[tuple[nn.Module, str, int]] = field(default_factory=list)
    indexed: list[_IndexedProducer] = field(default_factory=list)

    @classmethod
    def from_group(cls, root: nn.Module, group) -> GroupScorer:
        """Plan the scoring of ``group`` (a :class:`lwdvc_kernels.compaction.ChannelGroup`) in ``root``."""
        scorer = cls(group.size)
        arange = torch.arange(group.size)
        for member in group.producers():
            owner = root.get_submodule(member.module) if member.module else root
            length = raw_tensor(owner, member.tensor).shape[member.dim]
            identity = (length == group.size and member.positions.numel() == group.size
                        and torch.equal(member.positions.cpu(), arange)
                        and torch.equal(member.units.cpu(), arange))
            if identity:
                scorer.direct.append((owner, member.tensor, member.dim))
            else:
                scorer.indexed.append(_IndexedProducer(owner, member.tensor, member.dim,
                                                       member.positions.cpu(), member.units.cpu()))
        return scorer

    @torch.no_grad()
    def norms(self) -> torch.Tensor:
        """L2 norm of all producer weights of every channel: float32 [size] on the CPU."""
        total = torch.zeros(self.size, dtype=torch.float32)
        if self.direct:
            tensors = [raw_tensor(o, n) for o, n, _ in self.direct]
            dims = [d for _, _, d in self.direct]
            total += channel_norm(tensors, dims).cpu().square()
        for p in self.indexed:
            sq = channel_norm(raw_tensor(p.owner, p.tensor), p.dim).cpu().square()
            total.index_add_(0, p.units, sq[p.positions])
        return total.sqrt()


def normalise_per_group(norms: torch.Tensor) -> torch.Tensor:
    """Divide a group's channel norms by their mean (a mean-1 score; all ones if the mean is 0)."""
    mean = norms.mean()
    if not bool(mean > 0):
        return torch.ones_like(norms)
    return norms / mean
