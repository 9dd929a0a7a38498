"""Plain PyTorch reference of ``masked_weight``: the test oracle and last-resort fallback.

:func:`gradient_decay_scale` is the one Python definition of the backward's per-channel factor;
the reference, the Python fallback and the Triton backend all take it from here (C++:
``gradient_decay_scale`` in csrc/ops/common/masked_weight.h).

Dtype rule of the per-channel factor (mask or gradient-decay scale), alike in every backend: a
float64 tensor gets its factor computed and applied in float64 (:func:`factor_dtype`); a float32,
float16 or bfloat16 tensor gets it computed in float32 and rounded to its own dtype.
"""
from __future__ import annotations

import torch


def mask_view_shape(weight: torch.Tensor, dim: int) -> list[int]:
    """Shape that broadcasts a 1-D mask of length ``weight.size(dim)`` along ``dim``."""
    shape = [1] * weight.dim()
    shape[dim] = weight.size(dim)
    return shape


def factor_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype that the per-channel factor of a tensor of ``dtype`` is computed in: float64 for
    float64, float32 for every other dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def gradient_decay_scale(mask: torch.Tensor, beta: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[C] ``mask + beta * (1 - mask)`` for a mask [C] of any floating or bool dtype: 1 for kept
    channels, ``beta`` for pruned ones. Computed in ``factor_dtype(dtype)``, ``dtype`` being the
    dtype of the tensor it scales: float64 for a float64 tensor, float32 otherwise."""
    m = mask.to(factor_dtype(dtype))
    return m + beta * (1.0 - m)


def masked_weight_forward(weight: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``weight * mask`` with ``mask`` [weight.size(dim)] broadcast along ``dim`` (the mask
    rounded to ``weight.dtype``: exact for float64)."""
    return weight * mask.to(weight.dtype).view(mask_view_shape(weight, dim))


def masked_weight_backward(
    grad: torch.Tensor, mask: torch.Tensor, beta: float, dim: int
) -> torch.Tensor:
    """Gradient-decay backward: ``grad * gradient_decay_scale(mask, beta, grad.dtype)`` broadcast
    along ``dim`` (the factor in float64 for float64 grads, else in float32 rounded to
    ``grad.dtype`` first, as every backend does)."""
    scale = gradient_decay_scale(mask, beta, grad.dtype).to(grad.dtype)
    return grad * scale.view(mask_view_shape(grad, dim))
