"""Plain PyTorch reference of ``masked_weight``: the test oracle and last-resort fallback."""
from __future__ import annotations

import torch


def mask_view_shape(weight: torch.Tensor, dim: int) -> list[int]:
    """Shape that broadcasts a 1-D mask of length ``weight.size(dim)`` along ``dim``."""
    shape = [1] * weight.dim()
    shape[dim] = weight.size(dim)
    return shape


def masked_weight_forward(weight: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``weight * mask`` with ``mask`` [weight.size(dim)] broadcast along ``dim``."""
    return weight * mask.to(weight.dtype).view(mask_view_shape(weight, dim))


def masked_weight_backward(
    grad: torch.Tensor, mask: torch.Tensor, beta: float, dim: int
) -> torch.Tensor:
    """Gradient-decay backward: ``grad * (mask + beta * (1 - mask))`` broadcast along ``dim``."""
    m = mask.to(torch.float32)
    scale = (m + beta * (1.0 - m)).to(grad.dtype).view(mask_view_shape(grad, dim))
    return grad * scale
