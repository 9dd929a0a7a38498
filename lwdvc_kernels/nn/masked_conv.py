"""Autoregressive (PixelCNN-style) masked 2-D convolution.

The mask is a buffer named ``mask`` of the weight's shape [C_out, C_in, kH, kW]. Type "A" zeroes
the centre tap and every tap after it in raster order; type "B" keeps the centre tap. The forward
pass convolves with ``weight * mask`` and never modifies the stored weight, so a weight loaded
unmasked gives the same outputs as a convolution that masks its weight in place.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MaskedConv2d", "raster_mask"]


def raster_mask(weight_shape: torch.Size | tuple[int, ...], mask_type: str) -> torch.Tensor:
    """Build the autoregressive mask for a conv weight.

    Args:
        weight_shape: (C_out, C_in, kH, kW).
        mask_type: "A" (exclude the centre tap) or "B" (include it).

    Returns:
        float32 tensor of ``weight_shape`` with ones on the causal taps.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f'mask_type must be "A" or "B", got {mask_type!r}')
    mask = torch.ones(tuple(weight_shape))
    height, width = mask.shape[-2:]
    centre_row, centre_col = height // 2, width // 2
    first_masked_col = centre_col + (1 if mask_type == "B" else 0)
    mask[:, :, centre_row, first_masked_col:] = 0
    mask[:, :, centre_row + 1 :] = 0
    return mask


class MaskedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is multiplied by a causal mask in every forward pass.

    Args:
        *args: as ``nn.Conv2d``.
        mask_type: "A" or "B" (keyword only).
        **kwargs: as ``nn.Conv2d``.

    Shape:
        input [N, C_in, H, W] -> output [N, C_out, H', W'] as ``nn.Conv2d``.
    """

    def __init__(self, *args, mask_type: str = "A", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mask_type = mask_type
        self.register_buffer("mask", raster_mask(self.weight.shape, mask_type))

    def masked_weight(self) -> torch.Tensor:
        """The weight the convolution uses: ``weight * mask``."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Masked convolution of ``x`` [N, C_in, H, W]."""
        return self._conv_forward(x, self.masked_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_type={self.mask_type!r}"
