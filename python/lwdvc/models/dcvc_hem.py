"""DCVC-HEM P-frame codec ("DMC"; Li, Li, Lu, ACM MM 2022).

State_dict keys, shapes and the order of operations follow the official ``DMC(anchor_num=4)``.
The decoded picture buffer (dpb) is a dict with ``ref_frame`` [N,3,H,W] and, after a P-frame,
``ref_feature`` [N,C,H,W], ``ref_y`` [N,M,H/16,W/16] and ``ref_mv_y`` [N,mv,H/16,W/16]
(missing or None after an I-frame).
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc.models.entropy import (
    QUANT_MODES,
    BitEstimator,
    dual_prior_decode,
    dual_prior_forward,
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
from lwdvc.models.hem_blocks import (
    ContextualDecoder,
    ContextualEncoder,
    FeatureExtractor,
    MultiScaleContextFusion,
    ReconGeneration,
    enc_dec_models,
    hyper_decoder,
    hyper_enc_dec_models,
    three_conv_net,
)
from lwdvc.models.layers import SpyNet, bilinear_downscale, flow_warp, scale_channels
from lwdvc.models.zoo import register
from lwdvc_kernels.nn import lower_bound

__all__ = ["DCVCHEM", "DCVCHEMFrameSkip", "q_scale_value"]


def q_scale_value(q_scale, anchors: torch.Tensor, name: str):
    """The quantisation scale to use: a float/tensor as given, or anchor 0 when None."""
    if q_scale is None:
        return anchors.reshape(-1)[0]
    if not isinstance(q_scale, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a float or tensor, got {type(q_scale).__name__}")
    return q_scale


def symbol_source(pair, name: str, channels: int, size: tuple[int, int]):
    """The ``symbols`` callback of :func:`dual_prior_decode` over a stored (pass 0, pass 1) pair
    of maps; a callable (an entropy decoder or encoder) is returned as it is."""
    if callable(pair):
        return pair
    if len(pair) != 2:
        raise ValueError(f"{name} must be a pair (pass 0, pass 1), got {len(pair)} tensors")
    for index, tensor in enumerate(pair):
        check_latent(tensor, f"{name}[{index}]", channels, size)
    return lambda index, *_: pair[index]


@register("dcvc_hem")
class DCVCHEM(nn.Module):
    """DCVC-HEM P-frame codec.

    Args:
        anchor_num: number of learnt quantisation-scale anchors (4 officially).
        width: channel width factor (1.0 = official: mv 64, N 64, M 96 channels).
    """

    #: Whether the frame generator's output is added to the motion-compensated reference frame
    #: (False: the official DMC, which generates the whole frame from features).
    frame_skip = False

    def __init__(self, anchor_num: int = 4, width: float = 1.0) -> None:
        super().__init__()
        mv = self.channel_mv = scale_channels(64, width)
        n = self.channel_N = scale_channels(64, width)
        m = self.channel_M = scale_channels(96, width)
        res = self.res_channel = scale_channels(32, width)
        self.width = float(width)
        self.anchor_num = int(anchor_num)

        self.mv_y_q_basic = nn.Parameter(torch.ones((1, mv, 1, 1)))
        self.mv_y_q_scale = nn.Parameter(torch.ones((anchor_num, 1, 1, 1)))
        self.y_q_basic = nn.Parameter(torch.ones((1, m, 1, 1)))
        self.y_q_scale = nn.Parameter(torch.ones((anchor_num, 1, 1, 1)))
        self.bit_estimator_z = BitEstimator(n)
        self.bit_estimator_z_mv = BitEstimator(n)
        self.optic_flow = SpyNet()
        self.mv_encoder, self.mv_decoder = enc_dec_models(2, 2, mv)
        self.mv_hyper_prior_encoder, self.mv_hyper_prior_decoder = hyper_enc_dec_models(mv, n)
        self.mv_y_prior_fusion = three_conv_net(mv * 3, mv * 3, mv * 3, mv * 3)
        self.mv_y_spatial_prior = three_conv_net(mv * 4, mv * 3, mv * 3, mv * 2)
        self.feature_adaptor_I = nn.Conv2d(3, n, 3, stride=1, padding=1)
        self.feature_adaptor_P = nn.Conv2d(n, n, 1)
        self.feature_extractor = FeatureExtractor(n)
        self.context_fusion_net = MultiScaleContextFusion(n, n)
        self.contextual_encoder = ContextualEncoder(channel_N=n, channel_M=m)
        self.contextual_hyper_prior_encoder = nn.Sequential(
            nn.Conv2d(m, n, 3, stride=1, padding=1), nn.LeakyReLU(),
            nn.Conv2d(n, n, 3, stride=2, padding=1), nn.LeakyReLU(),
            nn.Conv2d(n, n, 3, stride=2, padding=1))
        self.contextual_hyper_prior_decoder = hyper_decoder(n, m)
        self.temporal_prior_encoder = nn.Sequential(
            nn.Conv2d(n, m * 3 // 2, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(m * 3 // 2, m * 2, 3, stride=2, padding=1))
        self.y_prior_fusion = three_conv_net(m * 5, m * 4, m * 3, m * 3)
        self.y_spatial_prior = three_conv_net(m * 4, m * 3, m * 3, m * 2)
        self.contextual_decoder = ContextualDecoder(channel_N=n, channel_M=m, res_channel=res)
        self.recon_generation_net = ReconGeneration(n, res, n, scale_channels(32, width))

    # ----------------------------------------------------------------- pieces
    def get_curr_mv_y_q(self, q_scale) -> torch.Tensor:
        """Motion quantisation step [1, mv, 1, 1] = max(mv_y_q_basic, 0.5) * q_scale."""
        return lower_bound(self.mv_y_q_basic, 0.5) * q_scale

    def get_curr_y_q(self, q_scale) -> torch.Tensor:
        """Contextual quantisation step [1, M, 1, 1] = max(y_q_basic, 0.5) * q_scale."""
        return lower_bound(self.y_q_basic, 0.5) * q_scale

    def motion_compensation(self, dpb: dict, mv: torch.Tensor):
        """Warped multi-scale contexts from the dpb and the decoded flow [N, 2, H, W].

        Returns:
            (context1 [N,C,H,W], context2 [N,C,H/2,W/2], context3 [N,C,H/4,W/4], warped frame).
        """
        warped_frame = flow_warp(dpb["ref_frame"], mv)
        mv2 = bilinear_downscale(mv) / 2
        mv3 = bilinear_downscale(mv2) / 2
        if dpb.get("ref_feature") is None:
            feature = self.feature_adaptor_I(dpb["ref_frame"])
        else:
            feature = self.feature_adaptor_P(dpb["ref_feature"])
        ref1, ref2, ref3 = self.feature_extractor(feature)
        contexts = self.context_fusion_net(flow_warp(ref1, mv), flow_warp(ref2, mv2),
                                           flow_warp(ref3, mv3))
        return (*contexts, warped_frame)

    def decoder_modules(self) -> dict[str, nn.Module]:
        """Decoder-side submodules in decoding order (the pruner's and compactor's scope)."""
        names = ("mv_hyper_prior_decoder", "mv_y_prior_fusion", "mv_y_spatial_prior", "mv_decoder",
                 "feature_adaptor_I", "feature_adaptor_P", "feature_extractor",
                 "context_fusion_net", "contextual_hyper_prior_decoder", "temporal_prior_encoder",
                 "y_prior_fusion", "y_spatial_prior", "contextual_decoder", "recon_generation_net")
        return {name: getattr(self, name) for name in names}

    def decoder_example_inputs(self, height: int, width: int) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs of every decoder module for a padded frame (multiples of 64)."""
        check_frame_size(height, width)
        y, z = (height // 16, width // 16), (height // 64, width // 64)
        half, quarter = (height // 2, width // 2), (height // 4, width // 4)
        n, m, mv = self.channel_N, self.channel_M, self.channel_mv
        full = (height, width)
        shapes = {
            "mv_hyper_prior_decoder": [(n, *z)], "mv_y_prior_fusion": [(3 * mv, *y)],
            "mv_y_spatial_prior": [(4 * mv, *y)], "mv_decoder": [(mv, *y)],
            "feature_adaptor_I": [(3, *full)], "feature_adaptor_P": [(n, *full)],
            "feature_extractor": [(n, *full)],
            "context_fusion_net": [(n, *full), (n, *half), (n, *quarter)],
            "contextual_hyper_prior_decoder": [(n, *z)], "temporal_prior_encoder": [(n, *quarter)],
            "y_prior_fusion": [(5 * m, *y)], "y_spatial_prior": [(4 * m, *y)],
            "contextual_decoder": [(m, *y), (n, *half), (n, *quarter)],
            "recon_generation_net": [(self.res_channel, *full), (n, *full)],
        }
        return example_tensors(self, shapes)

    def warp_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(C, H, W) of every tensor that decoding warps: the frame and three feature scales."""
        n = self.channel_N
        return [(3, height, width), (n, height, width), (n, height // 2, width // 2),
                (n, height // 4, width // 4)]

    def _add_skip(self, generated: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        """The frame from the generator's output [N, 3, H, W] (plus ``warped`` with a frame skip)."""
        return generated + warped if self.frame_skip else generated

    def _reference_latent(self, dpb: dict, key: str, like: torch.Tensor, channels: int):
        value = dpb.get(key)
        if value is None:
            return like.new_zeros(like.size(0), channels, like.size(2), like.size(3))
        check_latent(value, f"dpb[{key!r}]", channels, tuple(like.shape[-2:]))
        return value

    # ----------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode(self, dpb: dict, mv_z_hat: torch.Tensor, z_hat: torch.Tensor,
               mv_y_q_r, y_q_r, mv_y_q_scale=None, y_q_scale=None,
               output_size: tuple[int, int] | None = None) -> dict:
        """Decode one P-frame from quantised latents (the network part of ``decompress``).

        Args:
            dpb: decoded picture buffer; ``ref_frame`` [1, 3, H, W] padded to multiples of 64.
            mv_z_hat, z_hat: hyper latents [1, N, H/64, W/64].
            mv_y_q_r: integer motion symbols of the two checkerboard passes, each [1, mv/2, H/16, W/16]
                (or a ``symbols`` callback of :func:`dual_prior_decode`, e.g. an entropy decoder).
            y_q_r: integer contextual symbols of the two passes, each [1, M/2, H/16, W/16] (or a callback).
            mv_y_q_scale, y_q_scale: quantisation scales (floats; None = first learnt anchor).
            output_size: (height, width) to crop the reconstruction to.

        Returns:
            dict with ``recon_image`` (clamped), ``recon_image_preclamp``, ``feature``, ``y_hat``,
            ``mv_y_hat``, ``mv_hat``, ``context1..3``, ``recon_image_feature``, the scales handed
            to each entropy-decoding call (``mv_scales_r_0/1``, ``scales_r_0/1``) and ``dpb``
            (the buffer for the next frame).
        """
        motion = self.decode_motion(dpb, mv_z_hat, mv_y_q_r, mv_y_q_scale)
        return self.decode_residual(dpb, motion, z_hat, y_q_r, y_q_scale, output_size)

    @torch.no_grad()
    def decode_motion(self, dpb: dict, mv_z_hat: torch.Tensor, mv_y_q_r, mv_y_q_scale=None) -> dict:
        """First half of :meth:`decode`: the motion and the motion-compensated contexts.

        Returns:
            dict with ``mv_y_hat``, ``mv_hat``, ``context1..3``, ``warped`` (the warped reference
            frame) and ``mv_scales_r_0/1``.
        """
        ref = dpb.get("ref_frame") if isinstance(dpb, dict) else None
        if ref is None:
            raise ValueError("dpb must be a dict holding 'ref_frame'")
        height, width = check_padded_frame(ref, "dpb['ref_frame']")
        z_size, y_size = (height // 64, width // 64), (height // 16, width // 16)
        check_latent(mv_z_hat, "mv_z_hat", self.channel_N, z_size)
        mv_symbols = symbol_source(mv_y_q_r, "mv_y_q_r", self.channel_mv // 2, y_size)
        curr_mv_y_q = self.get_curr_mv_y_q(q_scale_value(mv_y_q_scale, self.mv_y_q_scale, "mv_y_q_scale"))
        out: dict = {}
        mv_params = self.mv_hyper_prior_decoder(mv_z_hat)
        ref_mv_y = self._reference_latent(dpb, "ref_mv_y", mv_params, self.channel_mv)
        mv_q_step, mv_scales, mv_means = self.mv_y_prior_fusion(
            torch.cat((mv_params, ref_mv_y), 1)).chunk(3, 1)
        mv_y_hat, (out["mv_scales_r_0"], out["mv_scales_r_1"]) = dual_prior_decode(
            mv_means, mv_scales, mv_q_step, self.mv_y_spatial_prior, mv_symbols)
        out["mv_y_hat"] = mv_y_hat * curr_mv_y_q
        out["mv_hat"] = self.mv_decoder(out["mv_y_hat"])
        out["context1"], out["context2"], out["context3"], out["warped"] = \
            self.motion_compensation(dpb, out["mv_hat"])
        return out

    @torch.no_grad()
    def decode_residual(self, dpb: dict, motion: dict, z_hat: torch.Tensor, y_q_r, y_q_scale=None,
                        output_size: tuple[int, int] | None = None) -> dict:
        """Second half of :meth:`decode`: the frame from the contextual latent and ``motion``
        (what :meth:`decode_motion` returned); returns :meth:`decode`'s dict."""
        height, width = check_padded_frame(dpb["ref_frame"], "dpb['ref_frame']")
        z_size, y_size = (height // 64, width // 64), (height // 16, width // 16)
        check_latent(z_hat, "z_hat", self.channel_N, z_size)
        y_symbols = symbol_source(y_q_r, "y_q_r", self.channel_M // 2, y_size)
        curr_y_q = self.get_curr_y_q(q_scale_value(y_q_scale, self.y_q_scale, "y_q_scale"))
        out = {key: value for key, value in motion.items() if key != "warped"}
        hierarchical = self.contextual_hyper_prior_decoder(z_hat)
        temporal = self.temporal_prior_encoder(out["context3"])
        ref_y = self._reference_latent(dpb, "ref_y", temporal, self.channel_M)
        q_step, scales, means = self.y_prior_fusion(
            torch.cat((temporal, hierarchical, ref_y), 1)).chunk(3, 1)
        y_hat, (out["scales_r_0"], out["scales_r_1"]) = dual_prior_decode(
            means, scales, q_step, self.y_spatial_prior, y_symbols)
        out["y_hat"] = y_hat * curr_y_q
        out["recon_image_feature"] = self.contextual_decoder(out["y_hat"], out["context2"],
                                                             out["context3"])
        # the official decoder passes (residual feature, context1): the concat is in that order
        out["feature"], recon = self.recon_generation_net(out["recon_image_feature"], out["context1"])
        recon = self._add_skip(recon, motion["warped"])
        out["recon_image_preclamp"] = recon
        out["recon_image"] = recon.clamp(0, 1)
        out["dpb"] = {"ref_frame": out["recon_image"], "ref_feature": out["feature"],
                      "ref_y": out["y_hat"], "ref_mv_y": out["mv_y_hat"]}
        if output_size is not None:
            out["recon_image"] = out["recon_image"][..., :output_size[0], :output_size[1]]
            out["recon_image_preclamp"] = recon[..., :output_size[0], :output_size[1]]
        return out

    # ----------------------------------------------------------------- encoder-side analysis
    def analyse_motion(self, x: torch.Tensor, dpb: dict, mv_y_q_scale=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion latent [N, mv, H/16, W/16] (divided by its step) and its hyper latent
        [N, N, H/64, W/64] of padded frame ``x`` against ``dpb`` (what the training forward and
        an encoder code)."""
        curr_mv_y_q = self.get_curr_mv_y_q(q_scale_value(mv_y_q_scale, self.mv_y_q_scale, "mv_y_q_scale"))
        mv_y = self.mv_encoder(self.optic_flow(x, dpb["ref_frame"])) / curr_mv_y_q
        return mv_y, self.mv_hyper_prior_encoder(mv_y)

    def analyse_residual(self, x: torch.Tensor, contexts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                         y_q_scale=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Contextual latent [N, M, H/16, W/16] (divided by its step) and its hyper latent of
        padded frame ``x``, given the motion-compensated contexts (``context1..3``)."""
        curr_y_q = self.get_curr_y_q(q_scale_value(y_q_scale, self.y_q_scale, "y_q_scale"))
        y = self.contextual_encoder(x, *contexts) / curr_y_q
        return y, self.contextual_hyper_prior_encoder(y)

    # ----------------------------------------------------------------- training forward
    @staticmethod
    def _training_inputs(frame: torch.Tensor, dpb: dict, quant: str):
        """Checked and padded inputs of the training forwards.

        Returns:
            (original pixel count, padded frame, padding, dpb copy with a padded ``ref_frame``,
            quantisation of the decoder path, quantisation of the rate estimate).
        """
        check_frame(frame, "frame")
        if quant not in QUANT_MODES:
            raise ValueError(f"quant must be one of {QUANT_MODES}, got {quant!r}")
        x, padding = pad_frame(frame)
        dpb = dict(dpb)
        check_frame(dpb.get("ref_frame"), "dpb['ref_frame']")
        if dpb["ref_frame"].shape[-2:] != x.shape[-2:]:
            dpb["ref_frame"], _ = pad_frame(dpb["ref_frame"])
        decoder_q = "round" if quant == "round" else "ste"
        rate_q = quant if quant == "noise" else decoder_q
        return frame.shape[-2] * frame.shape[-1], x, padding, dpb, decoder_q, rate_q

    def _code_motion(self, x: torch.Tensor, dpb: dict, mv_y_q_scale, decoder_q: str):
        """Estimate, code and decode the motion of padded ``x`` against ``dpb``.

        Returns:
            (mv_y, mv_z, dual-prior result of mv_y, mv_y_hat [N, mv, H/16, W/16]).
        """
        curr_mv_y_q = self.get_curr_mv_y_q(q_scale_value(mv_y_q_scale, self.mv_y_q_scale, "mv_y_q_scale"))
        mv_y, mv_z = self.analyse_motion(x, dpb, mv_y_q_scale)
        mv_params = self.mv_hyper_prior_decoder(quantize(mv_z, decoder_q))
        ref_mv_y = self._reference_latent(dpb, "ref_mv_y", mv_y, self.channel_mv)
        mv_q_step, mv_scales, mv_means = self.mv_y_prior_fusion(
            torch.cat((mv_params, ref_mv_y), 1)).chunk(3, 1)
        mv_coded = dual_prior_forward(mv_y, mv_means, mv_scales, mv_q_step,
                                      self.mv_y_spatial_prior, decoder_q)
        return mv_y, mv_z, mv_coded, mv_coded["y_hat"] * curr_mv_y_q

    def _motion_bits(self, mv_coded: dict, mv_z: torch.Tensor, rate_q: str) -> dict[str, torch.Tensor]:
        """Bits per element of the motion latent and its hyper latent."""
        residual = quantize(mv_coded["y_res"], "noise") if rate_q == "noise" else mv_coded["y_q"]
        return {"bpp_mv_y": likelihood_to_bits(laplace_likelihood(residual, mv_coded["scales_hat"])),
                "bpp_mv_z": likelihood_to_bits(factorized_likelihood(quantize(mv_z, rate_q),
                                                                     self.bit_estimator_z_mv))}

    def motion_modules(self) -> dict[str, nn.Module]:
        """Submodules (and the motion q-scale parameters' owner) that code motion alone."""
        names = ("optic_flow", "mv_encoder", "mv_decoder", "mv_hyper_prior_encoder", "mv_hyper_prior_decoder",
                 "mv_y_prior_fusion", "mv_y_spatial_prior", "bit_estimator_z_mv")
        return {name: getattr(self, name) for name in names}

    def motion_parameters(self) -> list[nn.Parameter]:
        """Parameters of motion coding: :meth:`motion_modules` and the motion quantisation steps."""
        params = [p for module in self.motion_modules().values() for p in module.parameters()]
        return params + [self.mv_y_q_basic, self.mv_y_q_scale]

    def forward_motion(self, frame: torch.Tensor, dpb: dict, mv_y_q_scale=None, quant: str = "noise") -> dict:
        """Code only the motion of ``frame`` against ``dpb`` (motion pre-training).

        Args:
            frame: [N, 3, H, W] in [0, 1] (padded internally to multiples of 64).
            dpb: decoded picture buffer with ``ref_frame`` (as for :meth:`forward`).
            mv_y_q_scale: motion quantisation scale (None = first anchor).
            quant: "noise", "ste" or "round".

        Returns:
            ``{"warped": [N, 3, H, W] reference warped by the decoded flow (not clamped),
            "mv_hat": [N, 2, H', W'] decoded flow at the padded size, "bpp_mv_y", "bpp_mv_z",
            "bpp": [N] bits per original pixel}``.
        """
        num_pixels, x, padding, dpb, decoder_q, rate_q = self._training_inputs(frame, dpb, quant)
        _, mv_z, mv_coded, mv_y_hat = self._code_motion(x, dpb, mv_y_q_scale, decoder_q)
        mv_hat = self.mv_decoder(mv_y_hat)
        result = {key: value.sum(dim=(1, 2, 3)) / num_pixels
                  for key, value in self._motion_bits(mv_coded, mv_z, rate_q).items()}
        result["bpp"] = result["bpp_mv_y"] + result["bpp_mv_z"]
        result["warped"] = crop_frame(flow_warp(dpb["ref_frame"], mv_hat), padding)
        result["mv_hat"] = mv_hat
        return result

    def forward(self, frame: torch.Tensor, dpb: dict, mv_y_q_scale=None, y_q_scale=None,
                quant: str = "noise") -> dict:
        """Code ``frame`` against ``dpb`` and estimate the rate (no arithmetic coding).

        Args:
            frame: [N, 3, H, W] in [0, 1]; padded internally to multiples of 64.
            dpb: decoded picture buffer at the padded size (``ref_frame`` may also be unpadded,
                then it is padded like ``frame``).
            mv_y_q_scale, y_q_scale: quantisation scales (None = first learnt anchor).
            quant: "noise" (noise for the rate, straight-through rounding for the decoder),
                "ste" or "round".

        Returns:
            dict with ``recon_image`` [N, 3, H, W] (not clamped), ``bpp`` and its parts
            ``bpp_mv_y``, ``bpp_mv_z``, ``bpp_y``, ``bpp_z`` (bits per original pixel) and the
            next ``dpb`` (padded size).
        """
        num_pixels, x, padding, dpb, decoder_q, rate_q = self._training_inputs(frame, dpb, quant)
        curr_y_q = self.get_curr_y_q(q_scale_value(y_q_scale, self.y_q_scale, "y_q_scale"))

        mv_y, mv_z, mv_coded, mv_y_hat = self._code_motion(x, dpb, mv_y_q_scale, decoder_q)
        context1, context2, context3, warped = self.motion_compensation(dpb, self.mv_decoder(mv_y_hat))
        y, z = self.analyse_residual(x, (context1, context2, context3), y_q_scale)
        hierarchical = self.contextual_hyper_prior_decoder(quantize(z, decoder_q))
        temporal = self.temporal_prior_encoder(context3)
        ref_y = self._reference_latent(dpb, "ref_y", y, self.channel_M)
        q_step, scales, means = self.y_prior_fusion(
            torch.cat((temporal, hierarchical, ref_y), 1)).chunk(3, 1)
        coded = dual_prior_forward(y, means, scales, q_step, self.y_spatial_prior, decoder_q)
        y_hat = coded["y_hat"] * curr_y_q
        feature, recon = self.recon_generation_net(
            self.contextual_decoder(y_hat, context2, context3), context1)
        recon = self._add_skip(recon, warped)

        def rate_value(quantised, residual):
            return quantize(residual, "noise") if rate_q == "noise" else quantised

        bits = {
            **self._motion_bits(mv_coded, mv_z, rate_q),
            "bpp_y": likelihood_to_bits(laplace_likelihood(
                rate_value(coded["y_q"], coded["y_res"]), coded["scales_hat"])),
            "bpp_z": likelihood_to_bits(factorized_likelihood(quantize(z, rate_q),
                                                              self.bit_estimator_z)),
        }
        result = {key: value.sum(dim=(1, 2, 3)) / num_pixels for key, value in bits.items()}
        result["bpp"] = sum(result.values())
        result["recon_image"] = crop_frame(recon, padding)
        result["dpb"] = {"ref_frame": recon, "ref_feature": feature, "ref_y": y_hat,
                         "ref_mv_y": mv_y_hat}
        return result


@register("dcvc_hem_skip")
class DCVCHEMFrameSkip(DCVCHEM):
    """DCVC-HEM with a frame skip: the decoded frame is the motion-compensated reference frame plus
    the frame generator's output, which thus codes a correction instead of the whole frame.

    Not an official model: the layers, state_dict keys and shapes are DMC's, and only the last
    addition differs. A fresh model starts with the generator's last convolution at zero, so its
    first decoded frames are motion-compensated copies of the reference; training then teaches the
    correction. :meth:`start_as_copy` does the same to weights taken from a DMC.
    """

    frame_skip = True

    def __init__(self, anchor_num: int = 4, width: float = 1.0) -> None:
        super().__init__(anchor_num=anchor_num, width=width)
        self.start_as_copy()

    @torch.no_grad()
    def start_as_copy(self) -> None:
        """Zero the frame generator's last convolution: decoded frame = warped reference."""
        self.recon_generation_net.recon_conv.weight.zero_()
        self.recon_generation_net.recon_conv.bias.zero_()
