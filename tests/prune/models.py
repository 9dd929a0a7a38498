"""Small hand-made two-module decoders for the pruning and distillation tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.nn import IGDN

from ..compact.models import ResBlock


class Upsampler(nn.Module):
    """latent [N, 8, h, w] -> features [N, c/2, 4h, 4w]: conv, residual, deconv, IGDN, subpel.

    ``gdn=False`` replaces the IGDN by a leaky ReLU (steadier under large learning rates).
    """

    def __init__(self, c: int = 16, gdn: bool = True) -> None:
        super().__init__()
        self.head = nn.Conv2d(8, c, 3, padding=1)
        self.res = ResBlock(c)
        self.up = nn.ConvTranspose2d(c, c, 4, stride=2, padding=1)
        self.igdn = IGDN(c) if gdn else nn.LeakyReLU(0.1)
        self.subpel = nn.Sequential(nn.Conv2d(c, 4 * (c // 2), 3, padding=1), nn.PixelShuffle(2))
        self.out = nn.Conv2d(c // 2, c // 2, 3, padding=1)

    def forward(self, y):
        x = self.res(F.leaky_relu(self.head(y), 0.1))
        x = self.subpel(self.igdn(self.up(x)))
        return self.out(F.leaky_relu(x, 0.1))


class Refiner(nn.Module):
    """Full-resolution features [N, c_in, H, W] -> image [N, 3, H, W]."""

    def __init__(self, c_in: int = 8, c: int = 16) -> None:
        super().__init__()
        self.head = nn.Conv2d(c_in, c, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.1))
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        return self.tail(self.body(F.leaky_relu(self.head(x), 0.1)))


class TwoStageDecoder(nn.Module):
    """latent [N, 8, H/4, W/4] -> image [N, 3, H, W] through two separately traced modules."""

    def __init__(self, c: int = 16, gdn: bool = True) -> None:
        super().__init__()
        self.c = c
        self.upsampler = Upsampler(c, gdn)
        self.refiner = Refiner(c // 2, c)

    def forward(self, y):
        return self.refiner(self.upsampler(y))

    def decoder_modules(self) -> dict[str, nn.Module]:
        return {"upsampler": self.upsampler, "refiner": self.refiner}

    def decoder_example_inputs(self, height: int, width: int) -> dict[str, tuple[torch.Tensor]]:
        gen = torch.Generator().manual_seed(1)
        return {"upsampler": (torch.randn(1, 8, height // 4, width // 4, generator=gen),),
                "refiner": (torch.randn(1, self.c // 2, height, width, generator=gen),)}


def make_decoder(seed: int = 0, c: int = 16, gdn: bool = True) -> TwoStageDecoder:
    """A TwoStageDecoder with seeded default initialisation."""
    torch.manual_seed(seed)
    return TwoStageDecoder(c, gdn)


def latents(batch: int = 4, size: int = 8, seed: int = 0) -> torch.Tensor:
    """Random latents [batch, 8, size, size]."""
    return torch.randn(batch, 8, size, size, generator=torch.Generator().manual_seed(seed))
