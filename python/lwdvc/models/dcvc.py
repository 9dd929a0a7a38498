"""DCVC: deep contextual video compression (Li, Li, Lu, NeurIPS 2021).

State_dict keys, shapes and the order of operations follow the official ``DCVC_net``; official
checkpoints load with ``lwdvc.models.load_official("dcvc", path)``. ``width`` scales every channel
count for small CPU-trainable variants (same code path).

Frame sizes: the official DCVC evaluation crops the source video to multiples of 64 (e.g.
1920x1080 -> 1920x1024 with ffmpeg) instead of padding. ``forward`` here zero-pads on the
right/bottom to multiples of 64 and crops the result (the DCVC-HEM scheme), so no pixels are
lost; to reproduce the published DCVC numbers, crop the input first.
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc.models.entropy import (
    QUANT_MODES,
    BitEstimator,
    factorized_likelihood,
    laplace_likelihood,
    likelihood_to_bits,
    quantize,
)
from lwdvc.models.frames import (
    check_frame,
    check_frame_size,
    check_latent,
    check_padded_frame,
    crop_frame,
    example_tensors,
    pad_frame,
)
from lwdvc.models.layers import LeakyResBlock, PreActResBlock, SpyNet, flow_warp, scale_channels, subpel_conv3x3
from lwdvc.models.zoo import register
from lwdvc_kernels.nn import GDN, MaskedConv2d

__all__ = ["DCVC"]

_AR_KERNEL = 5


def _conv(in_ch: int, out_ch: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2)


def _deconv(in_ch: int, out_ch: int, k: int, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_ch, out_ch, k, stride=stride, padding=k // 2,
                              output_padding=stride - 1)


def _hyper_encoder(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(_conv(in_ch, out_ch, 3), nn.LeakyReLU(),
                         _conv(out_ch, out_ch, 5, 2), nn.LeakyReLU(),
                         _conv(out_ch, out_ch, 5, 2))


def _entropy_parameters(ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ch * 12 // 3, ch * 10 // 3, 1), nn.LeakyReLU(),
                         nn.Conv2d(ch * 10 // 3, ch * 8 // 3, 1), nn.LeakyReLU(),
                         nn.Conv2d(ch * 8 // 3, ch * 6 // 3, 1))


def _gdn_stack(in_ch: int, ch: int, out_ch: int, k: int) -> nn.Sequential:
    """conv/GDN x3 then conv, each stride 2 (the mv encoder and the temporal prior encoder)."""
    return nn.Sequential(_conv(in_ch, ch, k, 2), GDN(ch), _conv(ch, ch, k, 2), GDN(ch),
                         _conv(ch, ch, k, 2), GDN(ch), _conv(ch, out_ch, k, 2))


@register("dcvc")
class DCVC(nn.Module):
    """DCVC P-frame codec.

    Args:
        width: channel width factor (1.0 = official model: mv 128, N 64, M 96 channels).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        mv = self.channel_mv = scale_channels(128, width)
        n = self.channel_N = scale_channels(64, width)
        m = self.channel_M = scale_channels(96, width)
        hidden = scale_channels(64, width)
        self.width = float(width)

        self.bitEstimator_z = BitEstimator(n)
        self.bitEstimator_z_mv = BitEstimator(n)
        self.feature_extract = nn.Sequential(_conv(3, n, 3), PreActResBlock(n, n, 3))
        self.context_refine = nn.Sequential(PreActResBlock(n, n, 3), _conv(n, n, 3))
        self.mvEncoder = _gdn_stack(2, mv, mv, 3)
        self.mvDecoder_part1 = nn.Sequential(
            _deconv(mv, mv, 3), GDN(mv, inverse=True), _deconv(mv, mv, 3), GDN(mv, inverse=True),
            _deconv(mv, mv, 3), GDN(mv, inverse=True), _deconv(mv, 2, 3))
        layers: list[nn.Module] = [_conv(5, hidden, 3), nn.LeakyReLU(0.1)]
        for _ in range(5):
            layers += [_conv(hidden, hidden, 3), nn.LeakyReLU(0.1)]
        self.mvDecoder_part2 = nn.Sequential(*layers, _conv(hidden, 2, 3))
        self.contextualEncoder = nn.Sequential(
            _conv(n + 3, n, 5, 2), GDN(n), LeakyResBlock(n), _conv(n, n, 5, 2), GDN(n),
            LeakyResBlock(n), _conv(n, n, 5, 2), GDN(n), _conv(n, m, 5, 2))
        self.contextualDecoder_part1 = nn.Sequential(
            subpel_conv3x3(m, n, 2), GDN(n, inverse=True), subpel_conv3x3(n, n, 2),
            GDN(n, inverse=True), LeakyResBlock(n), subpel_conv3x3(n, n, 2), GDN(n, inverse=True),
            LeakyResBlock(n), subpel_conv3x3(n, n, 2))
        self.contextualDecoder_part2 = nn.Sequential(
            _conv(2 * n, n, 3), PreActResBlock(n, n, 3), PreActResBlock(n, n, 3), _conv(n, 3, 3))
        self.priorEncoder = _hyper_encoder(m, n)
        self.priorDecoder = nn.Sequential(_deconv(n, m, 5), nn.LeakyReLU(), _deconv(m, m, 5),
                                          nn.LeakyReLU(), _deconv(m, m, 3, stride=1))
        self.mvpriorEncoder = _hyper_encoder(mv, n)
        self.mvpriorDecoder = nn.Sequential(_deconv(n, n, 5), nn.LeakyReLU(),
                                            _deconv(n, n * 3 // 2, 5), nn.LeakyReLU(),
                                            _deconv(n * 3 // 2, mv * 2, 3, stride=1))
        self.entropy_parameters = _entropy_parameters(m)
        self.auto_regressive = MaskedConv2d(m, 2 * m, kernel_size=5, padding=2, stride=1)
        self.auto_regressive_mv = MaskedConv2d(mv, 2 * mv, kernel_size=5, padding=2, stride=1)
        self.entropy_parameters_mv = _entropy_parameters(mv)
        self.temporalPriorEncoder = _gdn_stack(n, n, m, 5)
        self.opticFlow = SpyNet()

    # ----------------------------------------------------------------- decoder-side pieces
    def mv_refine(self, ref: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
        """Refine the decoded flow [N,2,H,W] with the reference frame [N,3,H,W]."""
        return self.mvDecoder_part2(torch.cat((mv, ref), 1)) + mv

    def motioncompensation(self, ref: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
        """Temporal context [N, N_ch, H, W] from the reference frame and the flow."""
        return self.context_refine(flow_warp(self.feature_extract(ref), mv))

    def decoder_modules(self) -> dict[str, nn.Module]:
        """Decoder-side submodules in decoding order (the pruner's and compactor's scope)."""
        names = ("mvpriorDecoder", "auto_regressive_mv", "entropy_parameters_mv",
                 "mvDecoder_part1", "mvDecoder_part2", "feature_extract", "context_refine",
                 "temporalPriorEncoder", "priorDecoder", "auto_regressive", "entropy_parameters",
                 "contextualDecoder_part1", "contextualDecoder_part2")
        return {name: getattr(self, name) for name in names}

    def decoder_example_inputs(self, height: int, width: int) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs of every decoder module for a (padded) frame of ``height`` x ``width``.

        Both sides must be multiples of 64. Values are seeded random (empty on the meta device).
        """
        check_frame_size(height, width)
        h16, w16, h64, w64 = height // 16, width // 16, height // 64, width // 64
        n, m, mv = self.channel_N, self.channel_M, self.channel_mv
        shapes = {
            "mvpriorDecoder": [(n, h64, w64)], "auto_regressive_mv": [(mv, h16, w16)],
            "entropy_parameters_mv": [(4 * mv, h16, w16)], "mvDecoder_part1": [(mv, h16, w16)],
            "mvDecoder_part2": [(5, height, width)], "feature_extract": [(3, height, width)],
            "context_refine": [(n, height, width)], "temporalPriorEncoder": [(n, height, width)],
            "priorDecoder": [(n, h64, w64)], "auto_regressive": [(m, h16, w16)],
            "entropy_parameters": [(4 * m, h16, w16)], "contextualDecoder_part1": [(m, h16, w16)],
            "contextualDecoder_part2": [(2 * n, height, width)],
        }
        return example_tensors(self, shapes)

    def warp_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(C, H, W) of every feature that decoding warps with the flow."""
        return [(self.channel_N, height, width)]

    # ----------------------------------------------------------------- decoding
    def _decode_autoregressive(self, symbols, params: torch.Tensor,
                               context_conv: MaskedConv2d, entropy_parameters: nn.Module
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Autoregressive decoding: ``y_hat[h, w] = symbols[h, w] + mean[h, w]``.

        ``symbols`` is the integer residuals [1, C, H, W], or a callback
        ``symbols(positions [n], means [n, C], scales [n, C]) -> [n, C]`` asked once per
        wavefront for the residuals at those positions (raster indices ``h * W + w``) - an
        entropy decoder reading them, or an encoder forming and writing them.

        The mean and scale at (h, w) come from ``entropy_parameters(cat(params, ctx))`` where the
        context is the masked 5x5 conv over the already decoded latents. The masked kernel reads
        only rows above (columns w-2..w+2) and the left part of row h, so every position it
        reads has a smaller wavefront index ``t = 3h + w``: all positions of one wavefront are
        decoded together, in 3(H-1)+W batched steps instead of H*W (the same values as raster
        order, up to float rounding of the batched convolutions).

        Returns:
            (y_hat [1, C, H, W], scales [1, C, H, W]).
        """
        pad = (_AR_KERNEL - 1) // 2
        channels = context_conv.weight.shape[1]
        _, _, height, width = params.shape
        padded_width = width + 2 * pad
        # Latents as rows (one row of channels per position, zero-padded border): a wavefront
        # gathers and writes whole rows (index_select / index_copy_) instead of strided columns.
        y_rows = params.new_zeros((height + 2 * pad) * padded_width, channels)
        scale_rows = params.new_zeros(height * width, channels)
        if callable(symbols):
            take = symbols
        else:
            symbol_rows = symbols[0].permute(1, 2, 0).reshape(height * width, channels).to(params.dtype)

            def take(positions, means, scales):
                return symbol_rows.index_select(0, positions)
        param_rows = params[0].permute(1, 2, 0).reshape(height * width, -1)
        weight = context_conv.masked_weight()
        # Only the taps the mask keeps (12 of 25) read anything: the context of a wavefront is one
        # matrix product [n, T*C] @ [T*C, 2C] over those taps.
        taps = weight.detach().abs().amax(dim=(0, 1)).nonzero()  # [T, 2] (row, column) in the kernel
        tap_weight = weight[:, :, taps[:, 0], taps[:, 1]].permute(2, 1, 0).reshape(-1, weight.shape[0])
        tap_offsets = taps[:, 0] * padded_width + taps[:, 1]  # [T] row offsets in the padded grid
        for t in range(3 * (height - 1) + width):
            hs = torch.tensor([h for h in range(height) if 0 <= t - 3 * h < width])
            ws = t - 3 * hs
            positions = hs * width + ws  # [n] rows of the unpadded grid
            corners = hs * padded_width + ws  # [n] top-left of each 5x5 window in the padded grid
            patches = y_rows.index_select(0, (corners[:, None] + tap_offsets).flatten()).view(len(hs), -1)
            ctx = patches @ tap_weight if context_conv.bias is None else \
                torch.addmm(context_conv.bias, patches, tap_weight)  # [n, 2C]
            local = param_rows.index_select(0, positions)  # [n, P]
            means, scale = entropy_parameters(torch.cat((local, ctx), 1)[:, :, None, None]).chunk(2, 1)
            means, scale = means[:, :, 0, 0], scale[:, :, 0, 0]
            y_rows.index_copy_(0, corners + pad * padded_width + pad,
                               (take(positions, means, scale) + means).to(y_rows.dtype))
            scale_rows.index_copy_(0, positions, scale.to(scale_rows.dtype))
        y_hat = y_rows.view(height + 2 * pad, padded_width, channels).permute(2, 0, 1)[None]
        scales = scale_rows.view(height, width, channels).permute(2, 0, 1)[None].contiguous()
        return y_hat[:, :, pad:-pad, pad:-pad].contiguous(), scales

    @torch.no_grad()
    def decode(self, ref_frame: torch.Tensor, mv_z_hat: torch.Tensor, z_hat: torch.Tensor,
               mv_y_symbols, y_symbols, output_size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """Decode one P-frame from its quantised latents (the network part of ``decompress``).

        Args:
            ref_frame: reference [1, 3, H, W], H and W multiples of 64 (pad with ``pad_frame``).
            mv_z_hat: motion hyper latent [1, N, H/64, W/64].
            z_hat: contextual hyper latent [1, N, H/64, W/64].
            mv_y_symbols: integer motion residuals [1, mv, H/16, W/16] (latent minus mean), or a
                per-wavefront callback (see ``_decode_autoregressive``; e.g. an entropy decoder).
            y_symbols: integer contextual residuals [1, M, H/16, W/16], or a callback.
            output_size: (height, width) to crop the reconstruction to (default: no crop).

        Returns:
            dict with ``recon_image`` (clamped to [0, 1]) and the intermediates
            ``recon_image_preclamp``, ``mv_y_hat``, ``mv_hat``, ``mv_hat_refined``, ``context``,
            ``temporal_prior_params``, ``prior_params``, ``y_hat``, ``mv_scales_hat``,
            ``y_scales_hat``.
        """
        height, width = check_padded_frame(ref_frame, "ref_frame")
        z_size, y_size = (height // 64, width // 64), (height // 16, width // 16)
        check_latent(z_hat, "z_hat", self.channel_N, z_size)
        if not callable(y_symbols):
            check_latent(y_symbols, "y_symbols", self.channel_M, y_size)
        motion = self.decode_motion(ref_frame, mv_z_hat, mv_y_symbols)
        return self.decode_residual(ref_frame, motion, z_hat, y_symbols, output_size)

    @torch.no_grad()
    def decode_motion(self, ref_frame: torch.Tensor, mv_z_hat: torch.Tensor, mv_y_symbols) -> dict[str, torch.Tensor]:
        """First half of :meth:`decode`: the decoded motion and the motion-compensated context.

        Returns:
            dict with ``mv_y_hat``, ``mv_scales_hat``, ``mv_hat``, ``mv_hat_refined``, ``context``.
        """
        height, width = check_padded_frame(ref_frame, "ref_frame")
        if ref_frame.shape[0] != 1:
            raise ValueError(f"decode works on batch 1, got ref_frame {tuple(ref_frame.shape)}")
        z_size, y_size = (height // 64, width // 64), (height // 16, width // 16)
        check_latent(mv_z_hat, "mv_z_hat", self.channel_N, z_size)
        if not callable(mv_y_symbols):
            check_latent(mv_y_symbols, "mv_y_symbols", self.channel_mv, y_size)
        out: dict[str, torch.Tensor] = {}
        params_mv = self.mvpriorDecoder(mv_z_hat)
        out["mv_y_hat"], out["mv_scales_hat"] = self._decode_autoregressive(
            mv_y_symbols, params_mv, self.auto_regressive_mv, self.entropy_parameters_mv)
        out["mv_hat"] = self.mvDecoder_part1(out["mv_y_hat"])
        out["mv_hat_refined"] = self.mv_refine(ref_frame, out["mv_hat"])
        out["context"] = self.motioncompensation(ref_frame, out["mv_hat_refined"])
        return out

    @torch.no_grad()
    def decode_residual(self, ref_frame: torch.Tensor, motion: dict, z_hat: torch.Tensor, y_symbols,
                        output_size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """Second half of :meth:`decode`: the frame from the contextual latent, given ``motion``
        (what :meth:`decode_motion` returned); returns :meth:`decode`'s dict."""
        out = dict(motion)
        out["temporal_prior_params"] = self.temporalPriorEncoder(out["context"])
        out["prior_params"] = self.priorDecoder(z_hat)
        params = torch.cat((out["temporal_prior_params"], out["prior_params"]), 1)
        out["y_hat"], out["y_scales_hat"] = self._decode_autoregressive(
            y_symbols, params, self.auto_regressive, self.entropy_parameters)
        feature = self.contextualDecoder_part1(out["y_hat"])
        recon = self.contextualDecoder_part2(torch.cat((feature, out["context"]), 1))
        if output_size is not None:
            recon = recon[..., :output_size[0], :output_size[1]]
        out["recon_image_preclamp"] = recon
        out["recon_image"] = recon.clamp(0, 1)
        return out

    # ----------------------------------------------------------------- encoder-side analysis
    def analyse_motion(self, ref_frame: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion latent [N, mv, H/16, W/16] and its hyper latent of padded ``x`` against
        ``ref_frame`` (what the training forward and an encoder code)."""
        mv_y = self.mvEncoder(self.opticFlow(x, ref_frame))
        return mv_y, self.mvpriorEncoder(mv_y)

    def analyse_residual(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contextual latent [N, M, H/16, W/16] and its hyper latent of padded ``x``, given the
        motion-compensated ``context`` [N, C, H, W]."""
        y = self.contextualEncoder(torch.cat((x, context), 1))
        return y, self.priorEncoder(y)

    # ----------------------------------------------------------------- training forward
    def forward(self, ref_frame: torch.Tensor, frame: torch.Tensor,
                quant: str = "noise") -> dict[str, torch.Tensor]:
        """Code ``frame`` given ``ref_frame`` and estimate the rate (no arithmetic coding).

        Args:
            ref_frame, frame: [N, 3, H, W] in [0, 1]; padded internally to multiples of 64.
            quant: "noise" (uniform noise for the rate, straight-through rounding for the
                decoder), "ste" (straight-through rounding everywhere) or "round".

        Returns:
            dict with ``recon_image`` [N, 3, H, W] (not clamped), ``context``, ``bpp`` and its
            parts ``bpp_mv_y``, ``bpp_mv_z``, ``bpp_y``, ``bpp_z`` (bits per original pixel).
        """
        check_frame(ref_frame, "ref_frame")
        check_frame(frame, "frame")
        if ref_frame.shape != frame.shape:
            raise ValueError(f"ref_frame {tuple(ref_frame.shape)} and frame "
                             f"{tuple(frame.shape)} must have the same shape")
        if quant not in QUANT_MODES:
            raise ValueError(f"quant must be one of {QUANT_MODES}, got {quant!r}")
        num_pixels = frame.shape[-2] * frame.shape[-1]
        ref, padding = pad_frame(ref_frame)
        x, _ = pad_frame(frame)
        decoder_q = "round" if quant == "round" else "ste"
        rate_q = quant if quant == "noise" else decoder_q

        mv_y, mv_z = self.analyse_motion(ref, x)
        params_mv = self.mvpriorDecoder(quantize(mv_z, decoder_q))
        mv_y_hat = quantize(mv_y, decoder_q)
        means_mv, scales_mv = self.entropy_parameters_mv(
            torch.cat((params_mv, self.auto_regressive_mv(mv_y_hat)), 1)).chunk(2, 1)
        mv_hat = self.mv_refine(ref, self.mvDecoder_part1(mv_y_hat))
        context = self.motioncompensation(ref, mv_hat)
        temporal = self.temporalPriorEncoder(context)
        y, z = self.analyse_residual(x, context)
        params = self.priorDecoder(quantize(z, decoder_q))
        y_hat = quantize(y, decoder_q)
        means, scales = self.entropy_parameters(
            torch.cat((temporal, params, self.auto_regressive(y_hat)), 1)).chunk(2, 1)
        feature = self.contextualDecoder_part1(y_hat)
        recon = self.contextualDecoder_part2(torch.cat((feature, context), 1))

        bits = {
            "bpp_mv_y": likelihood_to_bits(laplace_likelihood(quantize(mv_y - means_mv, rate_q), scales_mv)),
            "bpp_mv_z": likelihood_to_bits(factorized_likelihood(quantize(mv_z, rate_q), self.bitEstimator_z_mv)),
            "bpp_y": likelihood_to_bits(laplace_likelihood(quantize(y - means, rate_q), scales)),
            "bpp_z": likelihood_to_bits(factorized_likelihood(quantize(z, rate_q), self.bitEstimator_z)),
        }
        result = {key: value.sum(dim=(1, 2, 3)) / num_pixels for key, value in bits.items()}
        result["bpp"] = sum(result.values())
        result["recon_image"] = crop_frame(recon, padding)
        result["context"] = crop_frame(context, padding)
        return result

