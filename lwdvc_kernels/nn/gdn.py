"""Generalized divisive normalisation (GDN) and its inverse (IGDN).

Parameterisation (Balle et al. 2016, reparameterised form used by learnt codecs):

    beta_eff  = max(beta,  sqrt(beta_min + p)) ** 2 - p        # shape [C]
    gamma_eff = max(gamma, sqrt(p))            ** 2 - p        # shape [C, C]
    norm[i]   = sqrt(beta_eff[i] + sum_j gamma_eff[i, j] * x[j] ** 2)
    GDN:  y = x / norm          IGDN: y = x * norm

with the pedestal ``p = reparam_offset ** 2``. The state_dict holds exactly two parameters,
``beta`` [C] and ``gamma`` [C, C]; the bounds and the pedestal are Python constants (no buffers).

Channel coupling (for pruning): channel ``i`` of the output depends on input channel ``i`` and,
through ``gamma[i, :]``, on every input channel. Removing channel ``k`` from both the input and
the output removes ``beta[k]``, ``gamma[k, :]`` and ``gamma[:, k]``; the remaining channels give
the same result when the removed input channel is zero.

The forward pass has no data-dependent Python control flow, so ``torch.fx`` traces it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GDN", "IGDN", "lower_bound"]


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient also flows where it pushes ``x`` up towards the bound."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp_min(x, bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Elementwise ``max(x, bound)`` with the straight-through gradient used by GDN training.

    Args:
        x: any tensor.
        bound: scalar lower bound.

    Returns:
        Tensor of the shape of ``x``.
    """
    return _LowerBound.apply(x, float(bound))


class GDN(nn.Module):
    """GDN over the channel dimension of an NCHW tensor.

    Args:
        in_channels: number of channels C.
        inverse: False for GDN (divide by the norm), True for IGDN (multiply).
        beta_min: lower bound of the effective ``beta``.
        gamma_init: diagonal value of the initial effective ``gamma``.
        reparam_offset: square root of the pedestal of the reparameterisation.

    Shape:
        input [N, C, H, W] -> output [N, C, H, W].
    """

    def __init__(
        self,
        in_channels: int,
        inverse: bool = False,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
        reparam_offset: float = 2.0**-18,
    ) -> None:
        super().__init__()
        if int(in_channels) <= 0:
            raise ValueError(f"GDN needs a positive channel count, got {in_channels}")
        self.in_channels = int(in_channels)
        self.inverse = bool(inverse)
        self.beta_min = float(beta_min)
        self.gamma_init = float(gamma_init)
        self.reparam_offset = float(reparam_offset)
        self.pedestal = self.reparam_offset**2
        self.beta_bound = (self.beta_min + self.pedestal) ** 0.5
        self.gamma_bound = self.reparam_offset
        self.beta = nn.Parameter(torch.sqrt(torch.ones(in_channels) + self.pedestal))
        gamma = self.gamma_init * torch.eye(in_channels) + self.pedestal
        self.gamma = nn.Parameter(torch.sqrt(gamma))

    def effective_beta(self) -> torch.Tensor:
        """Effective ``beta`` [C] after the bound and the reparameterisation."""
        return lower_bound(self.beta, self.beta_bound) ** 2 - self.pedestal

    def effective_gamma(self) -> torch.Tensor:
        """Effective ``gamma`` [C, C] after the bound and the reparameterisation."""
        return lower_bound(self.gamma, self.gamma_bound) ** 2 - self.pedestal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` [N, C, H, W]; returns [N, C, H, W]."""
        gamma = self.effective_gamma()
        weight = gamma.reshape(gamma.shape[0], gamma.shape[1], 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, weight, self.effective_beta()))
        if self.inverse:
            return x * norm
        return x / norm

    def extra_repr(self) -> str:
        return f"{self.in_channels}, inverse={self.inverse}"


class IGDN(GDN):
    """Inverse GDN: ``GDN(..., inverse=True)``; same parameters and key names."""

    def __init__(
        self,
        in_channels: int,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
        reparam_offset: float = 2.0**-18,
    ) -> None:
        super().__init__(in_channels, True, beta_min, gamma_init, reparam_offset)
