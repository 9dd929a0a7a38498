"""Frame pairs with known motion, for supervised pre-training of a motion estimator.

A real frame is the reference; a smooth random flow field (a global affine move plus a
low-frequency random field) warps it into the "current" frame, so the flow that maps the
reference onto the current frame is known exactly at every pixel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lwdvc.models.layers import flow_warp

__all__ = ["random_flow", "synthetic_pair", "endpoint_error"]


def random_flow(batch: int, height: int, width: int, max_shift: float = 6.0, local: float = 2.0,
                grid: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Smooth random flow fields in pixels.

    Each sample gets a random translation (uniform in ``[-max_shift, max_shift]`` per axis), a
    small rotation and zoom about the centre (up to 3 degrees / 5 %), and a local field drawn on
    a ``grid x grid`` lattice with standard deviation ``local`` pixels, upsampled bicubically.

    Returns:
        [batch, 2, height, width] float32 (channel 0 horizontal, channel 1 vertical).
    """
    def uniform(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32) - (height - 1) / 2,
                            torch.arange(width, dtype=torch.float32) - (width - 1) / 2, indexing="ij")
    shift = uniform(batch, 2) * max_shift
    angle = uniform(batch) * math.radians(3.0)
    zoom = uniform(batch) * 0.05
    cos, sin = torch.cos(angle) * (1 + zoom), torch.sin(angle) * (1 + zoom)
    dx = (cos - 1).view(-1, 1, 1) * xs - sin.view(-1, 1, 1) * ys + shift[:, 0].view(-1, 1, 1)
    dy = sin.view(-1, 1, 1) * xs + (cos - 1).view(-1, 1, 1) * ys + shift[:, 1].view(-1, 1, 1)
    coarse = torch.randn(batch, 2, grid, grid, generator=generator) * local
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return torch.stack([dx, dy], 1) + field


def synthetic_pair(reference: torch.Tensor, generator: torch.Generator | None = None,
                   max_shift: float = 6.0, local: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A current frame made from ``reference`` by a random flow.

    Args:
        reference: [N, 3, H, W] frames in [0, 1].

    Returns:
        (current [N, 3, H, W] = flow_warp(reference, flow), flow [N, 2, H, W]).
    """
    n, _, h, w = reference.shape
    flow = random_flow(n, h, w, max_shift=max_shift, local=local, generator=generator).to(reference)
    return flow_warp(reference, flow), flow


def endpoint_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean end-point error (pixels) per sample: [N, 2, H, W] x2 -> [N]."""
    return (predicted - target).square().sum(1).add(1e-9).sqrt().mean(dim=(1, 2))
