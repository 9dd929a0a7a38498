"""Argument checks of ``deform_conv2d``, the one place they live (see ``validation``)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from lwdvc_kernels.ops.fused_validation import _check_like, check_conv2d_bias, check_conv2d_geometry


def check_deform_conv2d_args(
    input: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, bias: torch.Tensor | None,
    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int, offset_groups: int,
    offset_group_sizes: Sequence[int] | None = None,
) -> tuple[int, int, int, int]:
    """Validates deform_conv2d arguments; returns the output shape (N, Cout, Ho, Wo)."""
    op = "deform_conv2d"
    batch, cout, out_h, out_w = check_conv2d_geometry(op, input, weight, stride, padding, dilation, groups)
    if not isinstance(offset, torch.Tensor):
        raise TypeError(f"{op}: offset must be a tensor, got {type(offset).__name__}")
    if offset.dim() != 4:
        raise ValueError(f"{op}: offset must be 4-D [N, 2*offset_groups*kh*kw, Ho, Wo], got shape {list(offset.shape)}")
    _check_like(op, "offset", offset, input)
    cin = input.size(1)
    if offset_group_sizes is not None:
        sizes = [int(v) for v in offset_group_sizes]
        if len(sizes) != offset_groups or min(sizes, default=0) < 0 or sum(sizes) != cin:
            raise ValueError(
                f"{op}: offset_group_sizes {sizes} must have offset_groups = {offset_groups} non-negative entries "
                f"summing to the input channels {cin}"
            )
    elif offset_groups <= 0 or cin % offset_groups:
        raise ValueError(f"{op}: offset_groups {offset_groups} must be positive and divide the input channels {cin}")
    expected = [batch, 2 * offset_groups * weight.size(2) * weight.size(3), out_h, out_w]
    if list(offset.shape) != expected:
        raise ValueError(
            f"{op}: offset must have shape {expected} (2 * offset_groups * kh * kw channels), got {list(offset.shape)}"
        )
    check_conv2d_bias(op, bias, input, cout)
    return batch, cout, out_h, out_w
