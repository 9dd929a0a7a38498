"""Plain PyTorch reference of ``masked_weight``: the test oracle and last-resort fallback.

:func:`gradient_decay_scale` is the one Python definition of the backward's per-channel factor;
the reference, the Python fallback and the Triton backend all take it from here (C++:
``gradient_decay_scale`` in csrc/ops/common/masked_weight.h).
"""
from __future__ import annotations

import torch


def mask_view_shape(weight: torch.Tensor, dim: int) -> list[int]:
    """Shape that broadcasts a 1-D mask of length ``weight.size(dim)`` along ``dim``."""
    shape = [1] * weight.dim()
    shape[dim] = weight.size(dim)
    return shape


def gradient_decay_scale(mask: torch.Tensor, beta: float) -> torch.Tensor:
    """float32 [C]: ``mask + beta * (1 - mask)`` for a mask [C] of any floating or bool dtype:
    1 for kept channels, ``beta`` for pruned ones."""
    m = mask.to(torch.float32)
    return m + beta * (1.0 - m)


def masked_weight_forward(weight: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``weight * mask`` with ``mask`` [weight.size(dim)] broadcast along ``dim``."""
    return weight * mask.to(weight.dtype).view(mask_view_shape(weight, dim))


def masked_weight_backward(
    grad: torch.Tensor, mask: torch.Tensor, beta: float, dim: int
) -> torch.Tensor:
    """Gradient-decay backward: ``grad * gradient_decay_scale(mask, beta)`` broadcast along ``dim``
    (the factor rounded to ``grad.dtype`` first, as every backend does)."""
    return grad * gradient_decay_scale(mask, beta).to(grad.dtype).view(mask_view_shape(grad, dim))
