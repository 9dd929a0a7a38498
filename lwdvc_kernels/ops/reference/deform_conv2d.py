"""Plain PyTorch reference of ``deform_conv2d`` (DCNv1): the test oracle, differentiable.

Every tap of every output pixel samples the input bilinearly at its offset position (zeros
outside the input, as torchvision), the samples form a column matrix and one grouped matrix
product with the weight gives the output. Memory grows with N * Cin * kh * kw * Ho * Wo: an
oracle for test sizes, not a kernel.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch._prims_common import suggest_memory_format


def bilinear_zero_padded(image: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Samples ``image`` [N, C, H, W] at positions ``y``, ``x`` [N, C, *S] (per channel), bilinearly,
    with zeros outside the image; returns [N, C, *S]."""
    n, c, h, w = image.shape
    flat = image.reshape(n, c, h * w)
    y0, x0 = torch.floor(y), torch.floor(x)
    ly, lx = y - y0, x - x0
    out = torch.zeros_like(y)
    for dy, wy in ((0, 1 - ly), (1, ly)):
        for dx, wx in ((0, 1 - lx), (1, lx)):
            yy, xx = (y0 + dy).long(), (x0 + dx).long()
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).reshape(n, c, -1)
            value = flat.gather(2, index).reshape(y.shape)
            out = out + torch.where(inside, value * wy * wx, torch.zeros_like(value))
    return out


def deform_conv2d_reference(
    input: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, bias: torch.Tensor | None,
    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int, offset_groups: int,
    offset_group_sizes: Sequence[int] | None = None,
) -> torch.Tensor:
    """DCNv1 in plain PyTorch, for validated arguments.

    Args:
        input: [N, Cin, H, W]; weight: [Cout, Cin/groups, kh, kw];
        offset: [N, 2*offset_groups*kh*kw, Ho, Wo] (channel g*2*kh*kw + 2*(i*kw + j) is dy of tap
            (i, j) of offset group g, the next one dx); bias: [Cout] or None.
        offset_group_sizes: consecutive input channels per offset group, or None (equal split).

    Returns:
        [N, Cout, Ho, Wo] in the input's dtype and memory format (float16 / bfloat16 computed in
        float32 and rounded once).
    """
    compute = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    x, w, off = (t.to(compute) for t in (input, weight, offset))
    n, cin = x.shape[:2]
    cout, _, kh, kw = w.shape
    out_h, out_w = off.shape[2:]
    sizes = list(offset_group_sizes) if offset_group_sizes is not None else [cin // offset_groups] * offset_groups
    owner = torch.repeat_interleave(torch.arange(offset_groups, device=x.device),
                                    torch.tensor(sizes, device=x.device))
    off = off.reshape(n, offset_groups, kh * kw, 2, out_h, out_w).index_select(1, owner)  # [N, Cin, K, 2, Ho, Wo]
    arange = {"device": x.device, "dtype": compute}
    tap_y = (torch.arange(kh, **arange) * dilation[0]).repeat_interleave(kw)  # [K]
    tap_x = (torch.arange(kw, **arange) * dilation[1]).repeat(kh)
    row = torch.arange(out_h, **arange) * stride[0] - padding[0]
    col = torch.arange(out_w, **arange) * stride[1] - padding[1]
    y = tap_y[:, None, None] + row[None, :, None] + off[:, :, :, 0]  # [N, Cin, K, Ho, Wo]
    xs = tap_x[:, None, None] + col[None, None, :] + off[:, :, :, 1]
    columns = bilinear_zero_padded(x, y, xs).reshape(n, groups, (cin // groups) * kh * kw, out_h * out_w)
    out = torch.einsum("gok,ngkp->ngop", w.reshape(groups, cout // groups, -1), columns)
    out = out.reshape(n, cout, out_h, out_w)
    if bias is not None:
        out = out + bias.to(compute).view(1, -1, 1, 1)
    return out.to(input.dtype).contiguous(memory_format=suggest_memory_format(input))
