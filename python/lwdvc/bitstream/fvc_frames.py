"""Entropy-coded frames of the FVC family: scale-hyperprior I-frames, FVC P-frames.

A P-frame's payload: the offset latent's hyper latent and the residual latent's hyper latent
(factorized priors), then the offset latent and the residual latent (mean-scale Gaussians whose
parameters come from their hyper latents alone, so both are coded in one call each).
"""
from __future__ import annotations

import torch

from lwdvc.bitstream.dcvc_frames import HyperpriorIntraFrames
from lwdvc.bitstream.priors import factorized_table, hyper_shape
from lwdvc.bitstream.symbols import SymbolReader, SymbolWriter

__all__ = ["FvcFrameCoder"]

#: FVC's Gaussian scales are bounded below by 1e-5 (``fvc.gaussian_bin_probability``).
FVC_MIN_SCALE = 1e-5


class FvcFrameCoder(HyperpriorIntraFrames):
    """Codes frames of an ``fvc`` :class:`~lwdvc.models.video_codec.VideoCodec` (one rate point)."""

    family = "fvc"

    def __init__(self, codec) -> None:
        super().__init__(codec)
        self.tables = {"offset": factorized_table(codec.inter.EntropyCoding_offsetz),
                       "residual": factorized_table(codec.inter.EntropyCoding_residualz)}

    @torch.no_grad()
    def encode_inter(self, frame: torch.Tensor, state: dict, rate: int) -> tuple[bytes, torch.Tensor, dict]:
        self._check_rate(rate)
        inter, ref = self.codec.inter, state["ref_frame"]
        latents = inter.encode(ref, frame)
        writer = SymbolWriter()
        for name in ("offset", "residual"):
            writer.factorized(latents[f"q_{name}_prior"], self.tables[name])
        for name in ("offset", "residual"):
            params = inter.entropy_parameters(name, latents[f"q_{name}_prior"])
            writer.gaussian(latents[f"q_{name}"], params[f"{name}_scales"], params[f"{name}_means"],
                            min_scale=FVC_MIN_SCALE)
        recon = inter.decode(ref, latents["q_offset"], latents["q_residual"])["recon_image"]
        return writer.getvalue(), recon, {"ref_frame": recon}

    @torch.no_grad()
    def decode_inter(self, payload: bytes, state: dict, rate: int) -> tuple[torch.Tensor, dict]:
        self._check_rate(rate)
        inter, ref = self.codec.inter, state["ref_frame"]
        reader = SymbolReader(payload)
        priors = {name: reader.factorized(hyper_shape(self.tables[name], ref.shape[-2:]), self.tables[name])
                  for name in ("offset", "residual")}
        latents = {}
        for name in ("offset", "residual"):
            params = inter.entropy_parameters(name, priors[name])
            latents[name] = reader.gaussian(params[f"{name}_scales"], params[f"{name}_means"],
                                            min_scale=FVC_MIN_SCALE).to(ref.device)
        recon = inter.decode(ref, latents["offset"], latents["residual"])["recon_image"]
        return recon, {"ref_frame": recon}
