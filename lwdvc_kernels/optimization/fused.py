"""Fused inference layers that :func:`lwdvc_kernels.optimization.optimize` puts in place of patterns.

* :class:`FusedConv2d`: conv + bias + activation + PixelShuffle store + residual add, through
  ``lwdvc_kernels.ops.conv2d_epilogue`` (one pass over the conv output).
* :class:`FusedGDN`: GDN/IGDN through ``lwdvc_kernels.ops.gdn`` with the effective parameters
  computed once (they are constants at inference).

Both are inference-only: parameters are buffers, no autograd.
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels import ops
from lwdvc_kernels.nn import GDN, MaskedConv2d

__all__ = ["FusedConv2d", "FusedGDN", "conv_is_fusable"]


def conv_is_fusable(conv: nn.Module) -> bool:
    """True for an ``nn.Conv2d`` (or the engine's ``MaskedConv2d``) with zero padding given as numbers."""
    if type(conv) not in (nn.Conv2d, MaskedConv2d):
        return False
    return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


class FusedConv2d(nn.Module):
    """``pixel_shuffle(act(conv(x)), upscale) + residual`` in one op.

    Args:
        conv: the ``nn.Conv2d`` (or ``MaskedConv2d``, whose mask is folded into the weight).
        activation: ``"none"``, ``"relu"`` or ``"leaky_relu"``.
        negative_slope: LeakyReLU slope.
        upscale: PixelShuffle factor (1: none).
        backend: ``ops.conv2d_epilogue`` backend (``"auto"``, ``"reference"``, ``"triton"``).

    Shape:
        x [N, Cin, H, W], residual [N, Cout/r^2, Ho*r, Wo*r] or None -> [N, Cout/r^2, Ho*r, Wo*r].
    """

    def __init__(self, conv: nn.Conv2d, activation: str = "none", negative_slope: float = 0.01,
                 upscale: int = 1, backend: str = "auto") -> None:
        super().__init__()
        if not conv_is_fusable(conv):
            raise TypeError(f"FusedConv2d: cannot fuse {conv!r} (needs Conv2d with zero, numeric padding)")
        weight = conv.weight.detach()
        if isinstance(conv, MaskedConv2d):
            weight = weight * conv.mask.to(weight.dtype)
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        self.stride, self.padding, self.dilation = tuple(conv.stride), tuple(conv.padding), tuple(conv.dilation)
        self.groups = conv.groups
        self.activation, self.negative_slope, self.upscale = activation, float(negative_slope), int(upscale)
        self.backend = backend

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return ops.conv2d_epilogue(
            x, self.weight, self.bias, residual, stride=self.stride, padding=self.padding, dilation=self.dilation,
            groups=self.groups, activation=self.activation, negative_slope=self.negative_slope,
            upscale=self.upscale, backend=self.backend)

    def extra_repr(self) -> str:
        cout, cin = self.weight.shape[:2]
        return (f"{cin * self.groups}, {cout}, kernel={tuple(self.weight.shape[2:])}, stride={self.stride}, "
                f"padding={self.padding}, activation={self.activation}, upscale={self.upscale}")


class FusedGDN(nn.Module):
    """GDN / IGDN with constant effective parameters through the fused op.

    Args:
        gdn: the engine's :class:`lwdvc_kernels.nn.GDN` / ``IGDN``.
        backend: ``ops.gdn`` backend.

    Shape:
        [N, C, H, W] -> [N, C, H, W].
    """

    def __init__(self, gdn: GDN, backend: str = "auto") -> None:
        super().__init__()
        with torch.no_grad():
            self.register_buffer("beta", gdn.effective_beta().detach().clone())
            self.register_buffer("gamma", gdn.effective_gamma().detach().clone())
        self.inverse = bool(gdn.inverse)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.gdn(x, self.beta, self.gamma, self.inverse, backend=self.backend)

    def extra_repr(self) -> str:
        return f"{self.beta.numel()}, inverse={self.inverse}"
