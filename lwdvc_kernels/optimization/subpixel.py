"""Rewrite a stride-s transposed convolution as a convolution followed by PixelShuffle(s).

A ``ConvTranspose2d`` with stride s whose output is exactly s times its input (kernel +
output_padding = stride + 2 * padding on each axis) computes, for each of the s*s output
phases (ph, pw), an ordinary convolution of the input: output pixel (s*i + ph, s*j + pw) reads
input pixels (i + dy, j + dx) with transposed-kernel tap (ph + pad - s*dy, pw + pad - s*dx).
Stacking the phases as output channels ``co * s^2 + ph * s + pw`` gives one stride-1 conv with
``Cout * s^2`` outputs and a small kernel (3x3 for the common 5x5 stride-2 layer), whose
PixelShuffle(s) is the transposed conv's output. The conv then runs through the fused conv
epilogue (shuffle store, activation, residual) like any other; oneDNN's transposed convolution
is several times slower than its convolution for few output channels.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["subpixel_conv", "subpixel_slower_reason", "subpixel_unsupported_reason"]

# When the rewrite pays (measured on the project's CPU, channels_last, 2 threads): with at most
# 8 output channels and at most 1.5x the transposed conv's MACs (a 5x5 stride-2 layer: 36 / 25),
# 1.4-2.3x faster (64 -> 3 at 128x224: 4.5 -> 2.1 ms); with 16 output channels, or a 3x3
# stride-2 layer (kernel padded from 2x2 to 3x3: 4x the MACs), 1.1-4x slower.
MAX_OUT_CHANNELS = 8
MAX_MAC_OVERHEAD = 1.5


def subpixel_unsupported_reason(layer: nn.ConvTranspose2d) -> str | None:
    """Why ``layer`` cannot be rewritten exactly (None when it can)."""
    if type(layer) is not nn.ConvTranspose2d:
        return f"{type(layer).__name__} is not a plain ConvTranspose2d"
    if layer.groups != 1 or tuple(layer.dilation) != (1, 1) or layer.padding_mode != "zeros":
        return "groups, dilation or padding mode other than 1, 1, zeros"
    if isinstance(layer.padding, str) or layer.stride[0] != layer.stride[1] or layer.stride[0] < 2:
        return f"stride {tuple(layer.stride)} is not one factor >= 2"
    for k, s, p, op in zip(layer.kernel_size, layer.stride, layer.padding, layer.output_padding):
        if k + op != s + 2 * p:
            return f"output is not stride x input (kernel {k} + output_padding {op} != stride {s} + 2 * padding {p})"
    return None


def subpixel_slower_reason(layer: nn.ConvTranspose2d) -> str | None:
    """Why the rewrite of a rewritable ``layer`` would not be faster (None when it would)."""
    s = layer.stride[0]
    taps = [2 * _half_width(k, s, p) + 1 for k, p in zip(layer.kernel_size, layer.padding)]
    overhead = s * s * taps[0] * taps[1] / (layer.kernel_size[0] * layer.kernel_size[1])
    if layer.out_channels > MAX_OUT_CHANNELS:
        return f"{layer.out_channels} output channels > {MAX_OUT_CHANNELS}"
    if overhead > MAX_MAC_OVERHEAD:
        return f"the sub-pixel conv would need {overhead:.2f}x the MACs (> {MAX_MAC_OVERHEAD})"
    return None


def _half_width(kernel: int, stride: int, padding: int) -> int:
    """Largest |d| of an input offset d that some phase reads (taps ph + padding - stride * d)."""
    lowest = -((kernel - 1 - padding) // stride)  # ceil((padding - kernel + 1) / stride)
    highest = (stride - 1 + padding) // stride
    return max(-lowest, highest)


def subpixel_conv(layer: nn.ConvTranspose2d) -> nn.Conv2d:
    """The stride-1 conv whose PixelShuffle(stride) equals ``layer`` (see the module docstring).

    Shape: the conv maps [N, Cin, H, W] -> [N, Cout * s^2, H, W]; shuffled: [N, Cout, s*H, s*W].

    Raises:
        ValueError: when :func:`subpixel_unsupported_reason` gives a reason.
    """
    reason = subpixel_unsupported_reason(layer)
    if reason is not None:
        raise ValueError(f"subpixel_conv: cannot rewrite {layer!r}: {reason}")
    s = layer.stride[0]
    (kh, kw), (ph_pad, pw_pad) = layer.kernel_size, layer.padding
    half_h, half_w = _half_width(kh, s, ph_pad), _half_width(kw, s, pw_pad)
    weight = layer.weight.detach()  # [Cin, Cout, kh, kw]
    cin, cout = weight.shape[:2]
    phases = weight.new_zeros(cout, s, s, cin, 2 * half_h + 1, 2 * half_w + 1)
    for ph in range(s):
        for dy in range(-half_h, half_h + 1):
            ky = ph + ph_pad - s * dy
            if not 0 <= ky < kh:
                continue
            for pw in range(s):
                for dx in range(-half_w, half_w + 1):
                    kx = pw + pw_pad - s * dx
                    if 0 <= kx < kw:
                        phases[:, ph, pw, :, dy + half_h, dx + half_w] = weight[:, :, ky, kx].t()
    conv = nn.Conv2d(cin, cout * s * s, (2 * half_h + 1, 2 * half_w + 1), padding=(half_h, half_w),
                     bias=layer.bias is not None).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(phases.reshape(cout * s * s, cin, 2 * half_h + 1, 2 * half_w + 1))
        if layer.bias is not None:
            conv.bias.copy_(layer.bias.detach().repeat_interleave(s * s))
    return conv.eval()
