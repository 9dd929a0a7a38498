"""Argument checks of ``deform_conv2d`` for the Python backends; the messages match
csrc/ops/common/deform_conv2d_checks.h."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from lwdvc_kernels.ops.fused_validation import _check_like, conv_output_size
from lwdvc_kernels.ops.validation import check_floating


def check_deform_conv2d_args(
    input: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, bias: torch.Tensor | None,
    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int, offset_groups: int,
) -> tuple[int, int, int, int]:
    """Validates deform_conv2d arguments; returns the output shape (N, Cout, Ho, Wo)."""
    op = "deform_conv2d"
    check_floating(op, "input", input)
    for name, t in (("weight", weight), ("offset", offset)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    if input.dim() != 4:
        raise ValueError(f"{op}: input must be 4-D [N, C, H, W], got shape {list(input.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"{op}: weight must be 4-D [Cout, Cin/groups, kh, kw], got shape {list(weight.shape)}")
    if offset.dim() != 4:
        raise ValueError(f"{op}: offset must be 4-D [N, 2*offset_groups*kh*kw, Ho, Wo], got shape {list(offset.shape)}")
    _check_like(op, "weight", weight, input)
    _check_like(op, "offset", offset, input)
    if len(stride) != 2 or len(padding) != 2 or len(dilation) != 2:
        raise ValueError(f"{op}: stride, padding and dilation must have two entries each")
    if min(stride) <= 0 or min(dilation) <= 0 or min(padding) < 0:
        raise ValueError(f"{op}: stride and dilation must be positive and padding non-negative")
    batch, cin, cout = input.size(0), input.size(1), weight.size(0)
    if groups <= 0 or cin % groups or cout % groups:
        raise ValueError(f"{op}: groups {groups} must divide input channels {cin} and output channels {cout}")
    if weight.size(1) * groups != cin:
        raise ValueError(
            f"{op}: weight {list(weight.shape)} with groups {groups} expects {weight.size(1) * groups} input "
            f"channels, input has {cin} (shape {list(input.shape)})"
        )
    if offset_groups <= 0 or cin % offset_groups:
        raise ValueError(f"{op}: offset_groups {offset_groups} must be positive and divide the input channels {cin}")
    kh, kw = weight.size(2), weight.size(3)
    out_h = conv_output_size(input.size(2), kh, stride[0], padding[0], dilation[0])
    out_w = conv_output_size(input.size(3), kw, stride[1], padding[1], dilation[1])
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"{op}: input {list(input.shape)} is smaller than the kernel {list(weight.shape)}")
    expected = [batch, 2 * offset_groups * kh * kw, out_h, out_w]
    if list(offset.shape) != expected:
        raise ValueError(
            f"{op}: offset must have shape {expected} (2 * offset_groups * kh * kw channels), got {list(offset.shape)}"
        )
    if bias is not None:
        _check_like(op, "bias", bias, input)
        if bias.dim() != 1 or bias.size(0) != cout:
            raise ValueError(f"{op}: bias must have shape [{cout}], got {list(bias.shape)}")
    return batch, cout, out_h, out_w
