"""Decoders generated from a list of block names: every structure the channel analysis supports,
in random orders, widths and nestings (for the compaction property test).

Blocks (each maps ``[N, c, H, W]`` to ``[N, c', H', W']``): ``res`` (residual of two 3x3 convs),
``conv`` (3x3 conv to new width + LeakyReLU), ``subpel`` (conv + PixelShuffle x2), ``tconv``
(stride-2 transposed conv), ``gdn`` / ``igdn``, ``dw`` (depthwise 3x3 + ReLU), ``concat``
(``cat(x, relu(conv(x)))``), ``se`` (squeeze-excitation gate), ``bn`` (BatchNorm + ReLU),
``grouped`` (3x3 conv with 2 groups), ``warp`` (grid_sample by a flow computed from the features),
``chunk`` (split in halves, recombined by a conv of one half added to the other).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.nn import GDN, IGDN

from .models import ResBlock, SEBlock, SubpelConv, flow_warp

BLOCKS = ("res", "conv", "subpel", "tconv", "gdn", "igdn", "dw", "concat", "se", "bn", "grouped", "warp", "chunk")
#: blocks that double the spatial size (a generated decoder uses at most two)
UPSAMPLING = ("subpel", "tconv")


class _Concat(nn.Module):
    def __init__(self, c: int, extra: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, extra, 3, padding=1)

    def forward(self, x):
        return torch.cat([x, F.relu(self.conv(x))], dim=1)


class _Warp(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.flow = nn.Conv2d(c, 2, 3, padding=1)

    def forward(self, x):
        return flow_warp(x, torch.tanh(self.flow(x)))


class _Chunk(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c // 2, c // 2, 3, padding=1)

    def forward(self, x):
        a, b = torch.chunk(x, 2, dim=1)
        return torch.cat([a + self.conv(F.relu(b)), b], dim=1)


class _Act(nn.Module):
    def __init__(self, layer: nn.Module, act) -> None:
        super().__init__()
        self.layer, self.act = layer, act

    def forward(self, x):
        return self.act(self.layer(x))


def _block(name: str, c: int, width: int) -> tuple[nn.Module, int]:
    """(module, output channels) of block ``name`` on ``c`` input channels; ``width`` is the new
    channel count of blocks that change it."""
    relu = F.relu
    if name == "res":
        return ResBlock(c), c
    if name == "conv":
        return _Act(nn.Conv2d(c, width, 3, padding=1), lambda t: F.leaky_relu(t, 0.1)), width
    if name == "subpel":
        return SubpelConv(c, width), width
    if name == "tconv":
        return _Act(nn.ConvTranspose2d(c, width, 4, stride=2, padding=1), relu), width
    if name == "gdn":
        return GDN(c), c
    if name == "igdn":
        return IGDN(c), c
    if name == "dw":
        return _Act(nn.Conv2d(c, c, 3, padding=1, groups=c), relu), c
    if name == "concat":
        return _Concat(c, max(2, width // 2)), c + max(2, width // 2)
    if name == "se":
        return SEBlock(c, r=2), c
    if name == "bn":
        return _Act(nn.BatchNorm2d(c), relu), c
    if name == "grouped":
        return _Act(nn.Conv2d(c, 2 * (width // 2), 3, padding=1, groups=2), relu), 2 * (width // 2)
    if name == "warp":
        return _Warp(c), c
    if name == "chunk":
        return _Chunk(c), c
    raise ValueError(f"unknown block {name!r}")


class RandomDecoder(nn.Module):
    """``head`` (1x1 conv from ``in_channels``), the blocks in order, ``tail`` (3x3 conv to 3).

    Args:
        blocks: block names (see the module docstring); widths: one new width per block (even).
        in_channels: channels of the input latent [N, in_channels, H, W].
    """

    def __init__(self, blocks: list[str], widths: list[int], in_channels: int = 6, head_width: int = 8) -> None:
        super().__init__()
        if sum(b in UPSAMPLING for b in blocks) > 2:
            raise ValueError("at most two upsampling blocks")
        self.head = nn.Conv2d(in_channels, head_width, 1)
        c, layers = head_width, []
        for name, width in zip(blocks, widths):
            if name in ("grouped", "chunk") and c % 2:  # needs an even channel count
                layers.append(nn.Conv2d(c, c + 1, 1))
                c += 1
            module, c = _block(name, c, width)
            layers.append(module)
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(y)))
