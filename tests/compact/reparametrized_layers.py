"""Layers whose weights are computed in forward from stored parameters, written from the
published descriptions of learnt image codecs (Ballé et al. 2017/2018: GDN with reparametrised,
lower-bounded ``beta`` and ``gamma``) and from PyTorch's parametrization utilities.

None of them is known to the engine: the channel analysis must follow the computed weights back
to the stored tensors by itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows where it pushes ``x`` up (as the codecs do)."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad < 0)
        return pass_through * grad, None


class LowerBound(nn.Module):
    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor(float(bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LowerBound.apply(x, self.bound)


class NonNegative(nn.Module):
    """Stores ``sqrt(max(v + pedestal, pedestal))`` and returns ``bound(stored)^2 - pedestal``."""

    def __init__(self, minimum: float = 0.0, offset: float = 2 ** -18) -> None:
        super().__init__()
        self.register_buffer("pedestal", torch.tensor(offset ** 2))
        self.lower_bound = LowerBound((minimum + offset ** 2) ** 0.5)

    def store(self, value: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.max(value + self.pedestal, self.pedestal))

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return self.lower_bound(stored) ** 2 - self.pedestal


class GDN(nn.Module):
    """``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (``inverse``: times the root), with
    ``beta`` [C] and ``gamma`` [C, C] stored reparametrised; the norm is a 1x1 convolution whose
    weight is ``gamma`` reshaped to [C, C, 1, 1] in forward."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.store(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.store(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.size(1)
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1)
        norm = F.conv2d(x ** 2, gamma, beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class HyperpriorSynthesis(nn.Module):
    """The synthesis transform of the scale-hyperprior image codec: three 5x5 stride-2
    transposed convolutions each followed by IGDN, then one to 3 colour channels.
    [N, M, H, W] -> [N, 3, 16H, 16W]."""

    def __init__(self, n: int = 12, m: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (m, n, n):
            layers += [nn.ConvTranspose2d(c_in, n, 5, 2, 2, output_padding=1), GDN(n, inverse=True)]
        layers.append(nn.ConvTranspose2d(n, 3, 5, 2, 2, output_padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.layers(y)


class Positive(nn.Module):
    """A parametrization: the stored tensor is the log of the weight."""

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return torch.exp(stored)


class Transposed(nn.Module):
    """A parametrization that stores a conv weight with its two channel dims swapped."""

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.transpose(0, 1)


class WeightNormDecoder(nn.Module):
    """Convolutions with ``parametrizations.weight_norm`` (``g * v / ||v||`` per output channel),
    a per-channel gain stored as its log through a parametrization, and a conv whose weight is
    stored transposed. [N, 8, H, W] -> [N, 3, 2H, 2W]."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.head = weight_norm(nn.Conv2d(8, c, 3, padding=1))
        self.body = weight_norm(nn.Conv2d(c, c, 3, padding=1))
        self.swap = nn.Conv2d(c, c, 1)
        with torch.no_grad():
            self.swap.weight.copy_(torch.randn(c, c, 1, 1) * 0.2)
        self.swap.weight = nn.Parameter(self.swap.weight.detach().transpose(0, 1).contiguous())
        parametrize.register_parametrization(self.swap, "weight", Transposed(), unsafe=True)
        self.gain = nn.Module()
        self.gain.scale = nn.Parameter(torch.zeros(1, c, 1, 1))
        parametrize.register_parametrization(self.gain, "scale", Positive())
        self.up = nn.Sequential(nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2))
        self.tail = weight_norm(nn.Conv2d(c, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.head(x))
        h = h + F.relu(self.body(h)) * self.gain.scale
        h = F.leaky_relu(self.swap(h), 0.1)
        return self.tail(F.relu(self.up(h)))
