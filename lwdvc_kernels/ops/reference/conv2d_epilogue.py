"""Plain PyTorch reference of ``conv2d_epilogue``: the test oracle and last-resort fallback."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format


def activate(x: torch.Tensor, activation: str, negative_slope: float) -> torch.Tensor:
    """``none`` | ``relu`` | ``leaky_relu`` (with ``negative_slope``)."""
    if activation == "relu":
        return F.relu(x)
    if activation == "leaky_relu":
        return F.leaky_relu(x, negative_slope)
    return x


def conv2d_epilogue_reference(input, weight, bias, residual, stride, padding, dilation, groups, activation,
                              negative_slope, upscale) -> torch.Tensor:
    """``pixel_shuffle(act(conv2d(input, weight, bias)), upscale) + residual`` in eager PyTorch.

    Args:
        input: [N, Cin, H, W]; weight: [Cout, Cin/groups, kh, kw]; bias: [Cout] or None;
        residual: [N, Cout/upscale^2, Ho*upscale, Wo*upscale] or None.

    Returns:
        [N, Cout/upscale^2, Ho*upscale, Wo*upscale], in the input's memory format.
    """
    y = activate(F.conv2d(input, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups),
                 activation, negative_slope)
    if upscale > 1:
        y = F.pixel_shuffle(y, upscale)
    if residual is not None:
        y = y + residual
    return y.contiguous(memory_format=suggest_memory_format(input))
