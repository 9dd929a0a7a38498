"""Triton kernel of masked_weight / masked_weight_backward (imported only when asked for).

Runs on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1`` (tests). The product is
computed in the factor's dtype: float64 for float64 tensors, float32 for the others
(:func:`~lwdvc_kernels.ops.reference.masked_weight.factor_dtype`).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from lwdvc_kernels.ops.reference.masked_weight import factor_dtype, gradient_decay_scale

BLOCK = 1024


@triton.jit
def _scale_channels_kernel(x_ptr, factor_ptr, out_ptr, numel, inner, channels, BLOCK: tl.constexpr):
    """out[i] = x[i] * factor[(i // inner) % channels] for a contiguous x, computed in the
    factor's dtype (float32, or float64 for float64 x)."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = offsets < numel
    channel = (offsets // inner) % channels
    factor = tl.load(factor_ptr + channel, mask=valid, other=0.0)
    x = tl.load(x_ptr + offsets, mask=valid, other=0.0).to(factor_ptr.dtype.element_ty)
    tl.store(out_ptr + offsets, (x * factor).to(out_ptr.dtype.element_ty), mask=valid)


def scale_channels_triton(x: torch.Tensor, factor: torch.Tensor, dim: int) -> torch.Tensor:
    """``x * factor`` broadcast along ``dim``; factor [x.size(dim)] is rounded to x.dtype first,
    the product computed in ``factor_dtype(x.dtype)``."""
    x = x.contiguous()
    out = torch.empty_like(x)
    factor = factor.to(x.dtype).to(factor_dtype(x.dtype)).contiguous()
    inner = 1
    for size in x.shape[dim + 1:]:
        inner *= size
    numel = x.numel()
    _scale_channels_kernel[(triton.cdiv(numel, BLOCK),)](x, factor, out, numel, inner, x.size(dim), BLOCK=BLOCK)
    return out


def masked_weight_triton(weight: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``weight * mask`` broadcast along ``dim`` (validated arguments, wrapped dim)."""
    return scale_channels_triton(weight, mask.to(factor_dtype(weight.dtype)), dim)


def masked_weight_backward_triton(grad: torch.Tensor, mask: torch.Tensor, beta: float, dim: int) -> torch.Tensor:
    """The gradient-decay backward ``grad * gradient_decay_scale(mask, beta, grad.dtype)`` along ``dim``."""
    return scale_channels_triton(grad, gradient_decay_scale(mask, beta, grad.dtype), dim)
