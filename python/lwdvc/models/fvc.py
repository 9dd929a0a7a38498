"""FVC: feature-space video coding (Hu, Lu, Xu, CVPR 2021).

State_dict keys, shapes and the order of operations follow the official ``VideoCompressor``
(``ZhihaoHu/PyTorchVideoCompression``, FVC/net.py); official checkpoints load with
``lwdvc.models.load_official("fvc", path)``. ``width`` scales every channel count for small
CPU-trainable variants (same code path).

Decoding a P-frame (the official code has no ``decompress``; this follows ``forward``):
``ref_feature = Encoder(ref)``, ``aligned = aligner.motion_compensation(ref_feature, q_offset)``
(offset decoder -> deformable conv -> refinement), ``recon = Decoder(aligned +
resDecoder(q_residual))``. The Gaussian parameters of both latents come from their hyper-priors
(``*PriorDecoder`` then ``EntropyCoding_*f.parameters_net``).

I-frames: the official FVC coded them with BPG, which is not available here; sequences use the
project's learnt intra codec instead, like the other codecs.
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc.models.entropy import QUANT_MODES, BitEstimator, factorized_likelihood, likelihood_to_bits, quantize
from lwdvc.models.frames import (
    check_frame,
    check_frame_size,
    check_latent,
    check_padded_frame,
    crop_frame,
    example_tensors,
    pad_frame,
)
from lwdvc.models.fvc_layers import (
    DeformableAligner,
    FeatureDecoder,
    FeatureEncoder,
    HyperDecoder,
    HyperEncoder,
    LatentDecoder,
    LatentEncoder,
    ParameterNet,
)
from lwdvc.models.layers import scale_channels
from lwdvc.models.zoo import register

__all__ = ["FVC", "GaussianConditional", "gaussian_bin_probability"]

_SCALE_BOUNDS = (1e-5, 1e10)


def gaussian_bin_probability(values: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Probability of the unit bin around ``values`` under N(means, scales), scales in [1e-5, 1e10].

    All tensors [N, C, H, W] (broadcastable).
    """
    scales = scales.clamp(*_SCALE_BOUNDS)
    upper = torch.special.ndtr((values + 0.5 - means) / scales)
    lower = torch.special.ndtr((values - 0.5 - means) / scales)
    return upper - lower


class GaussianConditional(nn.Module):
    """Mean-scale Gaussian entropy model whose parameters come from ``parameters_net``.

    The network maps the decoded hyper-prior [N, 2C, h, w] to [N, 2C, h, w]; the first C
    channels are the means, the last C are square-rooted scales (scale = value ** 2).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.parameters_net = ParameterNet(2 * channels, 4 * channels, 2 * channels)

    def split_params(self, musigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, scales) [N, C, h, w] from the ``parameters_net`` output [N, 2C, h, w]."""
        means, root_scales = musigma.split(self.channels, dim=1)
        return means, root_scales.pow(2).clamp(*_SCALE_BOUNDS)

    def likelihood(self, values: torch.Tensor, prior_feature: torch.Tensor) -> torch.Tensor:
        """Bin probabilities [N, C, h, w] of the quantised latent ``values``."""
        means, scales = self.split_params(self.parameters_net(prior_feature))
        return gaussian_bin_probability(values, means, scales)


def _bits_per_pixel(likelihood: torch.Tensor, num_pixels: int, training: bool) -> torch.Tensor:
    """Estimated bits [N] of a latent, divided by the frame's pixel count.

    As officially, ``clamp(-log2(p), 0, 50)`` per element, with ``p + 1e-5`` in training.
    """
    if training:
        bits = likelihood_to_bits(likelihood)
    else:
        bits = torch.clamp(-torch.log2(likelihood), 0.0, 50.0)
    return bits.sum(dim=(1, 2, 3)) / num_pixels


@register("fvc")
class FVC(nn.Module):
    """FVC P-frame codec (official configuration ``VideoCompressor(train_lambda=...)``).

    Args:
        width: channel width factor (1.0 = official model: 64 feature channels, 128-channel
            offset and residual latents). Scaled counts are multiples of ``deformable_groups``.
        deformable_groups: deformable groups of the alignment DCN (8 officially).
    """

    def __init__(self, width: float = 1.0, deformable_groups: int = 8) -> None:
        super().__init__()
        if not isinstance(deformable_groups, int) or deformable_groups < 1:
            raise ValueError(f"deformable_groups must be a positive int, got {deformable_groups!r}")
        nf = scale_channels(64, width, deformable_groups)
        ch = scale_channels(128, width, 8)
        if nf % deformable_groups:
            raise ValueError(f"feature channels {nf} are not divisible by deformable_groups={deformable_groups}")
        self.width = width
        self.channel_feature, self.channel_offset, self.channel_residual = nf, ch, ch

        self.Encoder = FeatureEncoder(nf)
        self.Decoder = FeatureDecoder(nf)
        self.aligner = DeformableAligner(nf, ch, deformable_groups)
        self.OffsetPriorEncoder = HyperEncoder(ch)
        self.OffsetPriorDecoder = HyperDecoder(ch)
        self.EntropyCoding_offsetf = GaussianConditional(ch)
        self.EntropyCoding_offsetz = BitEstimator(ch)
        self.resEncoder = LatentEncoder(nf, ch)
        self.resDecoder = LatentDecoder(ch, nf)
        self.resPriorEncoder = HyperEncoder(ch)
        self.resPriorDecoder = HyperDecoder(ch)
        self.EntropyCoding_residualf = GaussianConditional(ch)
        self.EntropyCoding_residualz = BitEstimator(ch)

    # ----------------------------------------------------------------- decoder-side scope
    def decoder_modules(self) -> dict[str, nn.Module]:
        """Decoder-side submodules in decoding order, keyed by their path in the model.

        ``Encoder`` is included: the decoder runs it on the reference frame. ``aligner`` runs
        only its decoder side (offset decoder, deformable convolution, refinement: its
        ``forward``); its encoder-side layers stay untouched. The factorized bit estimators (CDF
        tables, no convolutions) are not included.
        """
        names = ("OffsetPriorDecoder", "EntropyCoding_offsetf.parameters_net", "Encoder", "aligner",
                 "resPriorDecoder", "EntropyCoding_residualf.parameters_net", "resDecoder", "Decoder")
        return {name: self.get_submodule(name) for name in names}

    def decoder_example_inputs(self, height: int, width: int) -> dict[str, tuple[torch.Tensor, ...]]:
        """Example inputs of every decoder module for a (padded) frame of ``height`` x ``width``.

        Both sides must be multiples of 64. Values are seeded random (empty on the meta device).
        """
        check_frame_size(height, width)
        nf, ch = self.channel_feature, self.channel_offset
        h2, w2, h16, w16, h64, w64 = height // 2, width // 2, height // 16, width // 16, height // 64, width // 64
        shapes = {
            "OffsetPriorDecoder": [(ch, h64, w64)],
            "EntropyCoding_offsetf.parameters_net": [(2 * ch, h16, w16)],
            "Encoder": [(3, height, width)],
            "aligner": [(nf, h2, w2), (ch, h16, w16)],
            "resPriorDecoder": [(ch, h64, w64)],
            "EntropyCoding_residualf.parameters_net": [(2 * ch, h16, w16)],
            "resDecoder": [(ch, h16, w16)],
            "Decoder": [(nf, h2, w2)],
        }
        return example_tensors(self, shapes)

    # ----------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode(self, ref_frame: torch.Tensor, q_offset: torch.Tensor, q_residual: torch.Tensor,
               q_offset_prior: torch.Tensor | None = None, q_residual_prior: torch.Tensor | None = None,
               output_size: tuple[int, int] | None = None,
               with_align_image: bool = False) -> dict[str, torch.Tensor]:
        """Decode one P-frame from its quantised latents.

        Args:
            ref_frame: reference [N, 3, H, W], H and W multiples of 64 (pad with ``pad_frame``).
            q_offset: quantised offset latent [N, ch, H/16, W/16].
            q_residual: quantised residual latent [N, ch, H/16, W/16].
            q_offset_prior, q_residual_prior: optional quantised hyper latents
                [N, ch, H/64, W/64]; when given, the Gaussian parameters an entropy decoder
                needs for the two latents are returned as well.
            output_size: (height, width) to crop the frames to (default: no crop).
            with_align_image: also decode the aligned feature alone (``align_image``, an
                official diagnostic that costs one more ``Decoder`` pass).

        Returns:
            dict with ``recon_image`` (clamped to [0, 1]), ``recon_image_preclamp``,
            ``align_image`` (only if requested, clamped), ``ref_feature``,
            ``aligned_feature``, ``recon_feature`` and, if the priors are given,
            ``offset_musigma`` / ``residual_musigma`` (raw parameters_net outputs, [N, 2ch,
            H/16, W/16]) with ``offset_means``, ``offset_scales``, ``residual_means``,
            ``residual_scales``.
        """
        height, width = check_padded_frame(ref_frame, "ref_frame")
        y_size, z_size = (height // 16, width // 16), (height // 64, width // 64)
        check_latent(q_offset, "q_offset", self.channel_offset, y_size)
        check_latent(q_residual, "q_residual", self.channel_residual, y_size)
        for name, latent in (("q_offset", q_offset), ("q_residual", q_residual),
                             ("q_offset_prior", q_offset_prior), ("q_residual_prior", q_residual_prior)):
            if latent is not None and latent.shape[0] != ref_frame.shape[0]:
                raise ValueError(f"{name} has batch {latent.shape[0]}, ref_frame {ref_frame.shape[0]}")
        out: dict[str, torch.Tensor] = {}
        for name, prior in (("offset", q_offset_prior), ("residual", q_residual_prior)):
            if prior is not None:
                out.update(self.entropy_parameters(name, prior, z_size))
        out["ref_feature"] = self.Encoder(ref_frame)
        out["aligned_feature"] = self.aligner.motion_compensation(out["ref_feature"], q_offset)
        out["recon_feature"] = out["aligned_feature"] + self.resDecoder(q_residual)
        images = {"recon_image_preclamp": self.Decoder(out["recon_feature"])}
        if with_align_image:
            images["align_image"] = self.Decoder(out["aligned_feature"])
        if output_size is not None:
            images = {key: image[..., :output_size[0], :output_size[1]] for key, image in images.items()}
        out["recon_image_preclamp"] = images["recon_image_preclamp"]
        out["recon_image"] = images["recon_image_preclamp"].clamp(0, 1)
        if with_align_image:
            out["align_image"] = images["align_image"].clamp(0, 1)
        return out

    @torch.no_grad()
    def entropy_parameters(self, name: str, prior: torch.Tensor, z_size: tuple[int, int] | None = None
                           ) -> dict[str, torch.Tensor]:
        """Gaussian parameters of the ``name`` latent ("offset" or "residual") from its quantised
        hyper latent [N, ch, H/64, W/64]: ``{name}_musigma`` [N, 2ch, H/16, W/16] (raw),
        ``{name}_means`` and ``{name}_scales`` [N, ch, H/16, W/16]."""
        coder, hyper = {"offset": (self.EntropyCoding_offsetf, self.OffsetPriorDecoder),
                        "residual": (self.EntropyCoding_residualf, self.resPriorDecoder)}[name]
        check_latent(prior, f"q_{name}_prior", coder.channels, z_size)
        musigma = coder.parameters_net(hyper(prior))
        means, scales = coder.split_params(musigma)
        return {f"{name}_musigma": musigma, f"{name}_means": means, f"{name}_scales": scales}

    @torch.no_grad()
    def encode(self, ref_frame: torch.Tensor, frame: torch.Tensor) -> dict[str, torch.Tensor | tuple[int, int]]:
        """Quantised (rounded) latents of ``frame`` given ``ref_frame`` (no arithmetic coding).

        Args:
            ref_frame, frame: [N, 3, H, W]; padded internally to multiples of 64.

        Returns:
            dict with ``q_offset``, ``q_residual`` [N, ch, H'/16, W'/16], ``q_offset_prior``,
            ``q_residual_prior`` [N, ch, H'/64, W'/64], ``ref_frame_padded`` [N, 3, H', W'] and
            ``output_size`` (H, W): exactly the arguments of :meth:`decode`.
        """
        self._check_pair(ref_frame, frame)
        ref, _ = pad_frame(ref_frame)
        x, _ = pad_frame(frame)
        ref_feature, feature = self.Encoder(ref), self.Encoder(x)
        offset = self.aligner.motion_estimation(ref_feature, feature)
        q_offset = torch.round(offset)
        aligned = self.aligner.motion_compensation(ref_feature, q_offset)
        residual = self.resEncoder(feature - aligned)
        return {"ref_frame_padded": ref, "q_offset": q_offset, "q_residual": torch.round(residual),
                "q_offset_prior": torch.round(self.OffsetPriorEncoder(offset)),
                "q_residual_prior": torch.round(self.resPriorEncoder(residual)),
                "output_size": tuple(frame.shape[-2:])}

    @staticmethod
    def _check_pair(ref_frame: torch.Tensor, frame: torch.Tensor) -> None:
        check_frame(ref_frame, "ref_frame")
        check_frame(frame, "frame")
        if ref_frame.shape != frame.shape:
            raise ValueError(f"ref_frame {tuple(ref_frame.shape)} and frame {tuple(frame.shape)} "
                             "must have the same shape")

    # ----------------------------------------------------------------- training forward
    def forward(self, ref_frame: torch.Tensor, frame: torch.Tensor,
                quant: str | None = None) -> dict[str, torch.Tensor]:
        """Code ``frame`` given ``ref_frame`` and estimate the rate (no arithmetic coding).

        Args:
            ref_frame, frame: [N, 3, H, W] in [0, 1]; padded internally to multiples of 64.
            quant: "noise" (the official training proxy: uniform noise on every latent, for
                the rate and the reconstruction alike), "ste" (straight-through rounding) or
                "round" (hard rounding). Default as officially: "noise" in training mode,
                "round" in eval mode.

        Returns:
            dict (frames cropped back to H x W):
            ``recon_image`` [N, 3, H, W] (clamped to [0, 1] only when the model is in eval
            mode, as officially), ``align_image`` (the aligned feature decoded), ``input_recon``
            (the current frame's feature decoded, the official auxiliary term), ``bpp`` and its
            parts ``bpp_mv_y`` (offset latent), ``bpp_mv_z`` (offset hyper latent), ``bpp_y``
            (residual latent), ``bpp_z`` (residual hyper latent): estimated bits per original
            pixel, shape [N].
        """
        self._check_pair(ref_frame, frame)
        if quant is None:
            quant = "noise" if self.training else "round"
        if quant not in QUANT_MODES:
            raise ValueError(f"quant must be one of {QUANT_MODES}, got {quant!r}")
        num_pixels = frame.shape[-2] * frame.shape[-1]
        ref, padding = pad_frame(ref_frame)
        x, _ = pad_frame(frame)

        ref_feature = self.Encoder(ref)
        feature = self.Encoder(x)
        input_recon = self.Decoder(feature)

        offset = self.aligner.motion_estimation(ref_feature, feature)
        q_offset_prior = quantize(self.OffsetPriorEncoder(offset), quant)
        offset_prior_feature = self.OffsetPriorDecoder(q_offset_prior)
        q_offset = quantize(offset, quant)
        aligned = self.aligner.motion_compensation(ref_feature, q_offset)

        residual = self.resEncoder(feature - aligned)
        q_residual_prior = quantize(self.resPriorEncoder(residual), quant)
        residual_prior_feature = self.resPriorDecoder(q_residual_prior)
        q_residual = quantize(residual, quant)
        recon_feature = aligned + self.resDecoder(q_residual)

        result = {
            "bpp_mv_y": _bits_per_pixel(self.EntropyCoding_offsetf.likelihood(q_offset, offset_prior_feature),
                                        num_pixels, self.training),
            "bpp_mv_z": _bits_per_pixel(factorized_likelihood(q_offset_prior, self.EntropyCoding_offsetz),
                                        num_pixels, self.training),
            "bpp_y": _bits_per_pixel(self.EntropyCoding_residualf.likelihood(q_residual, residual_prior_feature),
                                     num_pixels, self.training),
            "bpp_z": _bits_per_pixel(factorized_likelihood(q_residual_prior, self.EntropyCoding_residualz),
                                     num_pixels, self.training),
        }
        result["bpp"] = result["bpp_mv_y"] + result["bpp_mv_z"] + result["bpp_y"] + result["bpp_z"]
        images = {"recon_image": self.Decoder(recon_feature), "align_image": self.Decoder(aligned),
                  "input_recon": input_recon}
        for key, image in images.items():
            image = crop_frame(image, padding)
            result[key] = image if self.training or key == "input_recon" else image.clamp(0, 1)
        return result

