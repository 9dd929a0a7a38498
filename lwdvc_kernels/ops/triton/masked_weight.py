"""Triton kernel of masked_weight / masked_weight_backward (imported only when asked for).

Runs on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1`` (tests).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from lwdvc_kernels.ops.reference.masked_weight import gradient_decay_scale

BLOCK = 1024


@triton.jit
def _scale_channels_kernel(x_ptr, factor_ptr, out_ptr, numel, inner, channels, BLOCK: tl.constexpr):
    """out[i] = x[i] * factor[(i // inner) % channels] for a contiguous x."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = offsets < numel
    channel = (offsets // inner) % channels
    factor = tl.load(factor_ptr + channel, mask=valid, other=0.0)
    x = tl.load(x_ptr + offsets, mask=valid, other=0.0).to(tl.float32)
    tl.store(out_ptr + offsets, (x * factor).to(out_ptr.dtype.element_ty), mask=valid)


def scale_channels_triton(x: torch.Tensor, factor: torch.Tensor, dim: int) -> torch.Tensor:
    """``x * factor`` broadcast along ``dim``; factor [x.size(dim)] is rounded to x.dtype first."""
    x = x.contiguous()
    out = torch.empty_like(x)
    factor = factor.to(x.dtype).to(torch.float32).contiguous()
    inner = 1
    for size in x.shape[dim + 1:]:
        inner *= size
    numel = x.numel()
    _scale_channels_kernel[(triton.cdiv(numel, BLOCK),)](x, factor, out, numel, inner, x.size(dim), BLOCK=BLOCK)
    return out


def masked_weight_triton(weight: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``weight * mask`` broadcast along ``dim`` (validated arguments, wrapped dim)."""
    return scale_channels_triton(weight, mask.to(torch.float32), dim)


def masked_weight_backward_triton(grad: torch.Tensor, mask: torch.Tensor, beta: float, dim: int) -> torch.Tensor:
    """The gradient-decay backward ``grad * gradient_decay_scale(mask, beta)`` along ``dim``."""
    return scale_channels_triton(grad, gradient_decay_scale(mask, beta), dim)
