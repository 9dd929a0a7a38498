"""Entropy models used for rate estimation: factorized bit estimator, Laplace/Gaussian
conditionals, quantisation, and the checkerboard (two-pass) spatial prior of DCVC-HEM.

No arithmetic coding happens here: the models give likelihoods (training / rate estimates) and
the decode helpers turn quantised symbols into latents. Likelihoods are always computed in
float32, also when the network around them runs under bfloat16 autocast (a bin's mass is a
difference of two CDF values, which bfloat16's 8-bit mantissa cannot resolve).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.nn import lower_bound

__all__ = ["Bitparm", "BitEstimator", "quantize", "likelihood_to_bits", "laplace_likelihood",
           "gaussian_likelihood", "factorized_likelihood", "checkerboard_masks",
           "dual_prior_forward", "dual_prior_decode", "QUANT_MODES", "EntropyBottleneck",
           "gaussian_conditional_likelihood", "checkerboard_residuals"]

QUANT_MODES = ("noise", "ste", "round")


class Bitparm(nn.Module):
    """One layer of the factorized CDF: ``y = x*softplus(h) + b`` then ``y + tanh(y)*tanh(a)``.

    Parameters ``h``, ``b`` (and ``a`` unless ``final``) have shape [1, C, 1, 1].
    """

    def __init__(self, channels: int, final: bool = False) -> None:
        super().__init__()
        self.final = bool(final)
        self.h = nn.Parameter(torch.randn(1, channels, 1, 1) * 0.01)
        self.b = nn.Parameter(torch.randn(1, channels, 1, 1) * 0.01)
        self.a = None if final else nn.Parameter(torch.randn(1, channels, 1, 1) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * F.softplus(self.h) + self.b
        if self.a is None:
            return x
        return x + torch.tanh(x) * torch.tanh(self.a)


class BitEstimator(nn.Module):
    """Channel-wise factorized CDF (Balle et al. 2018): ``forward(x)`` is the CDF in (0, 1).

    Shape: [N, C, H, W] -> [N, C, H, W].
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f1 = Bitparm(channels)
        self.f2 = Bitparm(channels)
        self.f3 = Bitparm(channels)
        self.f4 = Bitparm(channels, final=True)
        self.channels = int(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.f4(self.f3(self.f2(self.f1(x)))))


def quantize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Quantise ``x`` to integers.

    Args:
        x: any tensor.
        mode: "noise" (add U(-0.5, 0.5), training proxy), "ste" (round with identity
            gradient) or "round" (hard rounding).
    """
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    if mode == "ste":
        return x + (torch.round(x) - x).detach()
    if mode == "round":
        return torch.round(x)
    raise ValueError(f"quantisation mode must be one of {QUANT_MODES}, got {mode!r}")


def likelihood_to_bits(likelihood: torch.Tensor) -> torch.Tensor:
    """Bits per element, ``clamp(-log2(p + 1e-5), 0, 50)``."""
    return torch.clamp(-torch.log(likelihood + 1e-5) / math.log(2.0), 0.0, 50.0)


def laplace_likelihood(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Probability mass of the unit bin around ``values`` under Laplace(0, scale).

    ``values`` are residuals (latent minus mean); ``scales`` are clamped to [1e-5, 1e10].
    """
    values, scales = values.float(), scales.float().clamp(1e-5, 1e10)
    laplace = torch.distributions.Laplace(torch.zeros_like(scales), scales)
    return laplace.cdf(values + 0.5) - laplace.cdf(values - 0.5)


def gaussian_likelihood(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Probability mass of the unit bin around ``values`` under N(0, scale), scale >= 0.11."""
    values, scales = values.float(), scales.float().clamp(0.11, 1e10)
    normal = torch.distributions.Normal(torch.zeros_like(scales), scales)
    return normal.cdf(values + 0.5) - normal.cdf(values - 0.5)


def factorized_likelihood(values: torch.Tensor, estimator: BitEstimator) -> torch.Tensor:
    """Probability mass of the unit bin around ``values`` under a factorized CDF."""
    values = values.float()
    with torch.autocast(values.device.type, enabled=False):
        return estimator(values + 0.5) - estimator(values - 0.5)


def checkerboard_masks(height: int, width: int, device=None,
                       dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Complementary checkerboard masks [1, 1, H, W]; ``mask_0`` is 1 where (h + w) is even.

    H and W must be even (the official code tiles a 2x2 pattern).
    """
    if height % 2 or width % 2:
        raise ValueError(f"checkerboard masks need an even latent size, got {height}x{width}")
    tile = torch.tensor(((1.0, 0.0), (0.0, 1.0)), device=device, dtype=dtype)
    mask_0 = tile.repeat(height // 2, width // 2)[None, None]
    return mask_0, 1.0 - mask_0


def _masked_split(y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor,
                  mask: torch.Tensor, quant: str):
    """Residual, quantised residual, reconstruction and scales restricted to ``mask``."""
    scales_hat = scales * mask
    means_hat = means * mask
    residual = (y - means_hat) * mask
    quantised = quantize(residual, quant)
    return residual, quantised, quantised + means_hat, scales_hat


def dual_prior_forward(y: torch.Tensor, means: torch.Tensor, scales: torch.Tensor,
                       quant_step: torch.Tensor, spatial_prior: Callable[[torch.Tensor], torch.Tensor],
                       quant: str = "ste") -> dict[str, torch.Tensor]:
    """Two-pass checkerboard coding of ``y`` as in DCVC-HEM (training / rate estimation).

    Channel half 0 is coded on ``mask_0`` and half 1 on ``mask_1`` in the first pass; the
    spatial prior then predicts the complementary positions.

    Args:
        y: latent [N, C, H, W] (already divided by the global quantisation step).
        means, scales, quant_step: [N, C, H, W] from the prior fusion network.
        spatial_prior: maps [N, 4C, H, W] to [N, 2C, H, W] (scales_0, means_0, scales_1, means_1).
        quant: quantisation of the residual: "ste" or "round" ("noise" is allowed too).

    Returns:
        dict with ``y_res`` (residual before quantisation), ``y_q`` (quantised residual),
        ``y_hat`` (reconstructed latent, multiplied back by the step) and ``scales_hat``.
    """
    mask_0, mask_1 = checkerboard_masks(y.size(2), y.size(3), y.device, y.dtype)
    quant_step = lower_bound(quant_step, 0.5)
    y = y / quant_step
    y_0, y_1 = y.chunk(2, 1)
    scales_0, scales_1 = scales.chunk(2, 1)
    means_0, means_1 = means.chunk(2, 1)
    first_0 = _masked_split(y_0, scales_0, means_0, mask_0, quant)
    first_1 = _masked_split(y_1, scales_1, means_1, mask_1, quant)
    params = torch.cat((first_0[2], first_1[2], means, scales, quant_step), dim=1)
    scales_0, means_0, scales_1, means_1 = spatial_prior(params).chunk(4, 1)
    second_0 = _masked_split(y_0, scales_0, means_0, mask_1, quant)
    second_1 = _masked_split(y_1, scales_1, means_1, mask_0, quant)
    merged = [torch.cat((a0 + b0, a1 + b1), dim=1)
              for a0, b0, a1, b1 in zip(first_0, second_0, first_1, second_1)]
    return {"y_res": merged[0], "y_q": merged[1], "y_hat": merged[2] * quant_step,
            "scales_hat": merged[3]}


def dual_prior_decode(means: torch.Tensor, scales: torch.Tensor, quant_step: torch.Tensor,
                      spatial_prior: Callable[[torch.Tensor], torch.Tensor],
                      symbols: Callable[[int, torch.Tensor], torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Decoder side of the two-pass checkerboard prior.

    Args:
        means, scales, quant_step: [N, C, H, W] from the prior fusion network.
        spatial_prior: as in ``dual_prior_forward``.
        symbols: ``symbols(pass_index, scales_r, means_r, quant_step)`` returns the integer
            residuals [N, C/2, H, W] of pass 0 or 1. ``scales_r`` / ``means_r`` [N, C/2, H, W] are
            the pass's scales and means on its positions (an entropy decoder codes with the
            scales; an encoder forms the residuals with :func:`checkerboard_residuals`), and
            ``quant_step`` [N, C, H, W] is the bounded step the latent is divided by.

    Returns:
        (y_hat [N, C, H, W] multiplied by the step, [scales_r_0, scales_r_1]).
    """
    mask_0, mask_1 = checkerboard_masks(means.size(2), means.size(3), means.device, means.dtype)
    quant_step = torch.clamp_min(quant_step, 0.5)
    scales_0, scales_1 = scales.chunk(2, 1)
    means_0, means_1 = means.chunk(2, 1)
    scales_r_0 = scales_0 * mask_0 + scales_1 * mask_1
    q_0 = symbols(0, scales_r_0, means_0 * mask_0 + means_1 * mask_1, quant_step)
    y_hat_0_0 = (q_0 + means_0) * mask_0
    y_hat_1_1 = (q_0 + means_1) * mask_1
    params = torch.cat((y_hat_0_0, y_hat_1_1, means, scales, quant_step), dim=1)
    scales_0, means_0, scales_1, means_1 = spatial_prior(params).chunk(4, 1)
    scales_r_1 = scales_0 * mask_1 + scales_1 * mask_0
    q_1 = symbols(1, scales_r_1, means_0 * mask_1 + means_1 * mask_0, quant_step)
    y_hat_0 = y_hat_0_0 + (q_1 + means_0) * mask_1
    y_hat_1 = y_hat_1_1 + (q_1 + means_1) * mask_0
    y_hat = torch.cat((y_hat_0, y_hat_1), dim=1) * quant_step
    return y_hat, [scales_r_0, scales_r_1]


def checkerboard_residuals(y: torch.Tensor, means_r: torch.Tensor, quant_step: torch.Tensor,
                           pass_index: int) -> torch.Tensor:
    """The integer residuals an encoder codes in one pass of :func:`dual_prior_decode`.

    Args:
        y: latent [N, C, H, W] (already divided by the global quantisation step).
        means_r: the pass's means [N, C/2, H, W] (as handed to the ``symbols`` callback).
        quant_step: the bounded step [N, C, H, W] (as handed to the callback).
        pass_index: 0 (channel half 0 on ``mask_0``, half 1 on ``mask_1``) or 1 (the other way).

    Returns:
        ``round(y / quant_step - means)`` on the pass's positions, merged to [N, C/2, H, W].
    """
    if pass_index not in (0, 1):
        raise ValueError(f"pass_index must be 0 or 1, got {pass_index}")
    mask_0, mask_1 = checkerboard_masks(y.size(2), y.size(3), y.device, y.dtype)
    first, second = (mask_0, mask_1) if pass_index == 0 else (mask_1, mask_0)
    y_0, y_1 = (y / quant_step).chunk(2, 1)
    return torch.round(y_0 * first + y_1 * second - means_r)


class EntropyBottleneck(nn.Module):
    """Non-parametric factorized density (Balle et al. 2018) with the classic parameter layout.

    Parameters per channel C: ``_matrices.i`` [C, f_{i+1}, f_i], ``_biases.i`` [C, f_{i+1}, 1],
    ``_factors.i`` [C, f_{i+1}, 1] for filters (1, 3, 3, 3, 3, 1), and ``quantiles`` [C, 1, 3]
    whose middle column is the median used as quantisation offset.
    """

    def __init__(self, channels: int, init_scale: float = 10.0,
                 filters: tuple[int, ...] = (3, 3, 3, 3)) -> None:
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        dims = (1,) + self.filters + (1,)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        self._biases = nn.ParameterList()
        self._factors = nn.ParameterList()
        self._matrices = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self._matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self._biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(self.filters):
                self._factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def medians(self) -> torch.Tensor:
        """Per-channel medians [1, C, 1, 1]."""
        return self.quantiles[:, 0, 1].view(1, -1, 1, 1)

    def _logits_cumulative(self, values: torch.Tensor) -> torch.Tensor:
        logits = values
        for i, matrix in enumerate(self._matrices):
            logits = torch.matmul(F.softplus(matrix), logits) + self._biases[i]
            if i < len(self._factors):
                logits = logits + torch.tanh(self._factors[i]) * torch.tanh(logits)
        return logits

    def likelihood(self, values: torch.Tensor) -> torch.Tensor:
        """Probability mass of the unit bin around ``values`` [N, C, H, W] (bounded below by 1e-9)."""
        n, c, h, w = values.shape
        values = values.float()
        flat = values.permute(1, 2, 3, 0).reshape(c, 1, -1)
        with torch.autocast(values.device.type, enabled=False):  # matmuls of the CDF stay float32
            lower = self._logits_cumulative(flat - 0.5)
            upper = self._logits_cumulative(flat + 0.5)
        sign = -torch.sign(lower + upper).detach()
        mass = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        mass = lower_bound(mass, 1e-9)
        return mass.reshape(c, h, w, n).permute(3, 0, 1, 2)


def gaussian_conditional_likelihood(values: torch.Tensor, scales: torch.Tensor,
                                    scale_bound: float = 0.11) -> torch.Tensor:
    """Unit-bin mass of zero-mean N(0, scale) at ``values`` (erfc form, bounded below by 1e-9)."""
    scales = lower_bound(scales.float(), scale_bound)
    values = torch.abs(values.float())
    upper = 0.5 * torch.erfc(-(2 ** -0.5) * (0.5 - values) / scales)
    lower = 0.5 * torch.erfc(-(2 ** -0.5) * (-0.5 - values) / scales)
    return lower_bound(upper - lower, 1e-9)
