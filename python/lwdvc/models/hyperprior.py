"""Scale-hyperprior image codec (Balle et al., ICLR 2018), the I-frame codec of DCVC's tests.

Parameter names follow the classic ``bmshj2018-hyperprior`` layout (``g_a``, ``g_s``, ``h_a``,
``h_s``, ``entropy_bottleneck._matrices.i`` ...). Derived buffers of official checkpoints (GDN
reparameterisation constants, likelihood bounds, CDF tables, scale tables) are constants or
entropy-coder data here; ``load_official`` accepts and ignores them.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from lwdvc.models.entropy import (
    QUANT_MODES,
    EntropyBottleneck,
    gaussian_conditional_likelihood,
    likelihood_to_bits,
    quantize,
)
from lwdvc.models.frames import check_frame, check_frame_size, check_latent, crop_frame, example_tensors, pad_frame
from lwdvc.models.layers import scale_channels
from lwdvc.models.zoo import register
from lwdvc_kernels.nn import GDN

__all__ = ["ScaleHyperprior", "QUALITY_CHANNELS"]

# (N, M) per quality level of the pretrained bmshj2018-hyperprior models.
QUALITY_CHANNELS = {q: (128, 192) for q in range(1, 6)} | {q: (192, 320) for q in range(6, 9)}

_DERIVED_KEYS = re.compile(
    r"(\.(beta|gamma)_reparam\.|likelihood_lower_bound\.bound$|lower_bound_scale\.bound$|"
    r"\._offset$|\._quantized_cdf$|\._cdf_length$|^entropy_bottleneck\.target$|"
    r"^gaussian_conditional\.(scale_table|scale_bound)$)")


def _conv(in_ch: int, out_ch: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2)


def _deconv(in_ch: int, out_ch: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_ch, out_ch, k, stride=stride, padding=k // 2,
                              output_padding=stride - 1)


@register("hyperprior")
class ScaleHyperprior(nn.Module):
    """bmshj2018-hyperprior.

    Args:
        quality: 1..8 picks (N, M) like the pretrained models (default 6: N 192, M 320).
        N, M: explicit channel counts (override ``quality``).
        width: channel width factor.
    """

    def __init__(self, quality: int = 6, N: int | None = None, M: int | None = None,
                 width: float = 1.0) -> None:
        super().__init__()
        if quality not in QUALITY_CHANNELS:
            raise ValueError(f"quality must be in 1..8, got {quality}")
        n = self.N = scale_channels(N or QUALITY_CHANNELS[quality][0], width)
        m = self.M = scale_channels(M or QUALITY_CHANNELS[quality][1], width)
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.g_a = nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n),
                                 _conv(n, m))
        self.g_s = nn.Sequential(_deconv(m, n), GDN(n, inverse=True), _deconv(n, n),
                                 GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
                                 _deconv(n, 3))
        self.h_a = nn.Sequential(_conv(m, n, 3, 1), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.h_s = nn.Sequential(_deconv(n, n), nn.ReLU(), _deconv(n, n), nn.ReLU(),
                                 _conv(n, m, 3, 1), nn.ReLU())

    @staticmethod
    def ignored_official_key(key: str) -> bool:
        """Checkpoint keys holding derived constants or entropy-coder tables."""
        return bool(_DERIVED_KEYS.search(key))

    def decoder_modules(self) -> dict[str, nn.Module]:
        """Decoder-side modules: the hyper synthesis (scales) and the synthesis transform."""
        return {"h_s": self.h_s, "g_s": self.g_s}

    def decoder_example_inputs(self, height: int, width: int) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs for a padded frame (multiples of 64)."""
        check_frame_size(height, width)
        return example_tensors(self, {"h_s": [(self.N, height // 64, width // 64)],
                                      "g_s": [(self.M, height // 16, width // 16)]})

    @torch.no_grad()
    def decode(self, z_hat: torch.Tensor, y_hat: torch.Tensor,
               output_size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """Reconstruct from quantised latents: z_hat [1,N,H/64,W/64], y_hat [1,M,H/16,W/16].

        Returns:
            dict with ``x_hat`` (clamped), ``x_hat_preclamp`` and ``scales_hat`` (the scales an
            entropy decoder would use for y).
        """
        check_latent(z_hat, "z_hat", self.N)
        check_latent(y_hat, "y_hat", self.M, (z_hat.shape[-2] * 4, z_hat.shape[-1] * 4))
        x_hat = self.g_s(y_hat)
        if output_size is not None:
            x_hat = x_hat[..., :output_size[0], :output_size[1]]
        return {"x_hat": x_hat.clamp(0, 1), "x_hat_preclamp": x_hat, "scales_hat": self.h_s(z_hat)}

    def forward(self, frame: torch.Tensor, quant: str = "noise") -> dict[str, torch.Tensor]:
        """Code ``frame`` [N, 3, H, W] (padded internally) and estimate the rate.

        Returns:
            dict with ``x_hat`` (original size, not clamped), ``bpp``, ``bpp_y``, ``bpp_z``.
        """
        check_frame(frame, "frame")
        if quant not in QUANT_MODES:
            raise ValueError(f"quant must be one of {QUANT_MODES}, got {quant!r}")
        num_pixels = frame.shape[-2] * frame.shape[-1]
        x, padding = pad_frame(frame)
        y = self.g_a(x)
        z = self.h_a(torch.abs(y))
        medians = self.entropy_bottleneck.medians()
        z_hat = quantize(z - medians, quant) + medians
        scales = self.h_s(z_hat)
        y_hat = quantize(y, quant)
        bits_y = likelihood_to_bits(gaussian_conditional_likelihood(y_hat, scales))
        bits_z = likelihood_to_bits(self.entropy_bottleneck.likelihood(z_hat))
        x_hat = self.g_s(y_hat if quant != "noise" else quantize(y, "ste"))
        result = {"bpp_y": bits_y.sum(dim=(1, 2, 3)) / num_pixels,
                  "bpp_z": bits_z.sum(dim=(1, 2, 3)) / num_pixels}
        result["bpp"] = result["bpp_y"] + result["bpp_z"]
        result["x_hat"] = crop_frame(x_hat, padding)
        return result
