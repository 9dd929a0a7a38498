"""DCVC-HEM intra (I-frame) codec without autoregression ("IntraNoAR").

State_dict keys, shapes and the order of operations follow the official
``IntraNoAR(N=192, anchor_num=4)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lwdvc.models.dcvc_hem import q_scale_value, symbol_source
from lwdvc.models.entropy import (
    QUANT_MODES,
    BitEstimator,
    dual_prior_decode,
    dual_prior_forward,
    factorized_likelihood,
    gaussian_likelihood,
    likelihood_to_bits,
    quantize,
)
from lwdvc.models.frames import (
    PAD_MULTIPLE,
    check_frame,
    check_frame_size,
    check_latent,
    crop_frame,
    example_tensors,
    pad_frame,
)
from lwdvc.models.hem_blocks import UNet, enc_dec_models, hyper_enc_dec_models, three_conv_net
from lwdvc.models.layers import conv3x3, scale_channels
from lwdvc.models.zoo import register
from lwdvc_kernels.nn import lower_bound

__all__ = ["DCVCHEMIntra"]


@register("dcvc_hem_intra")
class DCVCHEMIntra(nn.Module):
    """DCVC-HEM I-frame codec.

    Args:
        N: latent channels (192 officially); scaled by ``width``.
        anchor_num: number of learnt quantisation-scale anchors.
        width: channel width factor for the whole network (1.0 = official).
    """

    def __init__(self, N: int = 192, anchor_num: int = 4, width: float = 1.0) -> None:
        super().__init__()
        n = self.N = scale_channels(N, width)
        mid = self.mid_channel = scale_channels(16, width)
        self.width = float(width)
        self.anchor_num = int(anchor_num)
        self.q_basic = nn.Parameter(torch.ones((1, n, 1, 1)))
        self.q_scale = nn.Parameter(torch.ones((anchor_num, 1, 1, 1)))
        self.bit_estimator_z = BitEstimator(n)
        self.enc, self.dec = enc_dec_models(3, mid, n)
        self.refine = nn.Sequential(UNet(mid, mid, scale_channels(32, width)), conv3x3(mid, 3))
        self.hyper_enc, self.hyper_dec = hyper_enc_dec_models(n, n)
        self.y_prior_fusion = three_conv_net(n * 2, n * 3, n * 3, n * 3)
        self.y_spatial_prior = three_conv_net(n * 4, n * 3, n * 3, n * 2)

    def get_curr_q(self, q_scale) -> torch.Tensor:
        """Quantisation step [1, N, 1, 1] = max(q_basic, 0.5) * q_scale."""
        return lower_bound(self.q_basic, 0.5) * q_scale

    def decoder_modules(self) -> dict[str, nn.Module]:
        """Decoder-side submodules in decoding order."""
        return {name: getattr(self, name)
                for name in ("hyper_dec", "y_prior_fusion", "y_spatial_prior", "dec", "refine")}

    def decoder_example_inputs(self, height: int, width: int) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs of every decoder module for a padded frame (multiples of 64)."""
        check_frame_size(height, width)
        y, z, n = (height // 16, width // 16), (height // 64, width // 64), self.N
        shapes = {"hyper_dec": [(n, *z)], "y_prior_fusion": [(2 * n, *y)],
                  "y_spatial_prior": [(4 * n, *y)], "dec": [(n, *y)],
                  "refine": [(self.mid_channel, height, width)]}
        return example_tensors(self, shapes)

    @torch.no_grad()
    def decode(self, z_hat: torch.Tensor, y_q_r: Sequence[torch.Tensor], q_scale=None,
               output_size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """Decode an I-frame from quantised latents (the network part of ``decompress``).

        Args:
            z_hat: hyper latent [1, N, H/64, W/64] (H, W: padded frame size).
            y_q_r: integer symbols of the two checkerboard passes, each [1, N/2, H/16, W/16]
                (or a ``symbols`` callback of ``dual_prior_decode``, e.g. an entropy decoder).
            q_scale: quantisation scale (float; None = first learnt anchor).
            output_size: (height, width) to crop the reconstruction to.

        Returns:
            dict with ``x_hat`` (clamped), ``x_hat_preclamp``, ``y_hat``, ``scales_r_0/1``.
        """
        check_latent(z_hat, "z_hat", self.N)
        y_size = (z_hat.shape[-2] * 4, z_hat.shape[-1] * 4)
        symbols = symbol_source(y_q_r, "y_q_r", self.N // 2, y_size)
        curr_q = self.get_curr_q(q_scale_value(q_scale, self.q_scale, "q_scale"))
        q_step, scales, means = self.y_prior_fusion(self.hyper_dec(z_hat)).chunk(3, 1)
        y_hat, (scales_r_0, scales_r_1) = dual_prior_decode(means, scales, q_step,
                                                            self.y_spatial_prior, symbols)
        y_hat = y_hat * curr_q
        x_hat = self.refine(self.dec(y_hat))
        if output_size is not None:
            x_hat = x_hat[..., :output_size[0], :output_size[1]]
        return {"x_hat": x_hat.clamp(0, 1), "x_hat_preclamp": x_hat, "y_hat": y_hat,
                "scales_r_0": scales_r_0, "scales_r_1": scales_r_1}

    def analyse(self, x: torch.Tensor, q_scale=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent [N, C, H/16, W/16] (divided by its step) and hyper latent [N, C, H/64, W/64] of
        a padded frame ``x`` [N, 3, H, W] (what the training forward and an encoder code)."""
        curr_q = self.get_curr_q(q_scale_value(q_scale, self.q_scale, "q_scale"))
        y = self.enc(x) / curr_q
        return y, self.hyper_enc(y)

    def forward(self, frame: torch.Tensor, q_scale=None, quant: str = "noise") -> dict:
        """Code ``frame`` [N, 3, H, W] and estimate the rate (padded internally to 64).

        Returns:
            dict with ``x_hat`` (not clamped, original size), ``bpp``, ``bpp_y``, ``bpp_z``.
        """
        check_frame(frame, "frame")
        if quant not in QUANT_MODES:
            raise ValueError(f"quant must be one of {QUANT_MODES}, got {quant!r}")
        num_pixels = frame.shape[-2] * frame.shape[-1]
        x, padding = pad_frame(frame, PAD_MULTIPLE)
        decoder_q = "round" if quant == "round" else "ste"
        curr_q = self.get_curr_q(q_scale_value(q_scale, self.q_scale, "q_scale"))
        y, z = self.analyse(x, q_scale)
        q_step, scales, means = self.y_prior_fusion(self.hyper_dec(quantize(z, decoder_q))).chunk(3, 1)
        coded = dual_prior_forward(y, means, scales, q_step, self.y_spatial_prior, decoder_q)
        x_hat = self.refine(self.dec(coded["y_hat"] * curr_q))
        y_for_rate = quantize(coded["y_res"], "noise") if quant == "noise" else coded["y_q"]
        z_for_rate = quantize(z, quant if quant == "noise" else decoder_q)
        bits_y = likelihood_to_bits(gaussian_likelihood(y_for_rate, coded["scales_hat"]))
        bits_z = likelihood_to_bits(factorized_likelihood(z_for_rate, self.bit_estimator_z))
        result = {"bpp_y": bits_y.sum(dim=(1, 2, 3)) / num_pixels,
                  "bpp_z": bits_z.sum(dim=(1, 2, 3)) / num_pixels}
        result["bpp"] = result["bpp_y"] + result["bpp_z"]
        result["x_hat"] = crop_frame(x_hat, padding)
        return result
