"""Entropy-coded frames of the DCVC family: scale-hyperprior I-frames, DCVC P-frames.

* I-frame (``hyperprior``): hyper latent ``round(z - median)`` (the bottleneck's tables), then
  the latent ``round(y)`` under zero-mean Gaussians with scales from the hyper synthesis.
* P-frame (``dcvc``): motion hyper latent, the motion latent in wavefronts of its
  autoregressive context (Laplace, mean and scale per position from the hyper prior and the
  already decoded neighbours), then the contextual hyper latent and the contextual latent the
  same way (priors: hyper, temporal, autoregressive).

Decoding is serial along the wavefronts (3(H-1)+W coder calls per latent, H x W the latent
size): the probability model of a position depends on the decoded values before it. The
encoder runs the same wavefront loop (the model's decode, fed by an entropy encoder).
"""
from __future__ import annotations

import torch

from lwdvc.bitstream.priors import bottleneck_table, factorized_table, hyper_shape
from lwdvc.bitstream.symbols import SymbolReader, SymbolWriter

__all__ = ["DcvcFrameCoder", "HyperpriorIntraFrames"]


def _wavefront_encoder(writer: SymbolWriter, latent: torch.Tensor):
    """Per-wavefront callback of the autoregressive decode that codes ``latent``'s residuals."""
    channels, height, width = latent.shape[1:]
    rows = latent[0].permute(1, 2, 0).reshape(height * width, channels)

    def take(positions, means, scales):
        residuals = torch.round(rows.index_select(0, positions) - means)
        writer.laplace(residuals, scales)
        return residuals
    return take


def _wavefront_decoder(reader: SymbolReader):
    return lambda positions, means, scales: reader.laplace(scales).to(scales.device)


class HyperpriorIntraFrames:
    """I-frames of a fixed-rate family whose I-frame codec is the scale hyperprior (DCVC, FVC):
    ``round(z - median)`` with the bottleneck's tables, then ``round(y)`` under zero-mean
    Gaussians with the hyper synthesis's scales. Subclasses add the P-frames."""

    family = ""

    def __init__(self, codec) -> None:
        if getattr(codec, "family", None) != self.family:
            raise ValueError(f"{type(self).__name__} codes the {self.family} family, "
                             f"not {getattr(codec, 'family', codec)!r}")
        self.codec = codec
        self.intra_table = bottleneck_table(codec.intra.entropy_bottleneck)

    def _check_rate(self, rate: int) -> None:
        if rate != 0:
            raise ValueError(f"rate point {rate} out of range: the {self.family} codec has one (0)")

    @torch.no_grad()
    def encode_intra(self, frame: torch.Tensor, rate: int) -> tuple[bytes, torch.Tensor, dict]:
        self._check_rate(rate)
        intra = self.codec.intra
        writer = SymbolWriter()
        y = intra.g_a(frame)
        medians = intra.entropy_bottleneck.medians()
        z_symbols = torch.round(intra.h_a(torch.abs(y)) - medians)
        writer.factorized(z_symbols, self.intra_table)
        z_hat = z_symbols + medians
        y_symbols = torch.round(y)
        writer.gaussian(y_symbols, intra.h_s(z_hat))
        recon = intra.decode(z_hat, y_symbols)["x_hat"]
        return writer.getvalue(), recon, {"ref_frame": recon}

    @torch.no_grad()
    def decode_intra(self, payload: bytes, size: tuple[int, int], rate: int) -> tuple[torch.Tensor, dict]:
        self._check_rate(rate)
        intra = self.codec.intra
        reader = SymbolReader(payload)
        z_hat = reader.factorized(hyper_shape(self.intra_table, size), self.intra_table) \
            + intra.entropy_bottleneck.medians()
        y_symbols = reader.gaussian(intra.h_s(z_hat))
        recon = intra.decode(z_hat, y_symbols)["x_hat"]
        return recon, {"ref_frame": recon}


class DcvcFrameCoder(HyperpriorIntraFrames):
    """Codes frames of a ``dcvc`` :class:`~lwdvc.models.video_codec.VideoCodec` (one rate point).

    Frames are padded [1, 3, H, W] (multiples of 64); the state is ``{"ref_frame": ...}``.
    """

    family = "dcvc"

    def __init__(self, codec) -> None:
        super().__init__(codec)
        self.mv_z_table = factorized_table(codec.inter.bitEstimator_z_mv)
        self.z_table = factorized_table(codec.inter.bitEstimator_z)

    @torch.no_grad()
    def encode_inter(self, frame: torch.Tensor, state: dict, rate: int) -> tuple[bytes, torch.Tensor, dict]:
        self._check_rate(rate)
        inter, ref = self.codec.inter, state["ref_frame"]
        writer = SymbolWriter()
        mv_y, mv_z = inter.analyse_motion(ref, frame)
        mv_z_hat = torch.round(mv_z)
        writer.factorized(mv_z_hat, self.mv_z_table)
        motion = inter.decode_motion(ref, mv_z_hat, _wavefront_encoder(writer, mv_y))
        y, z = inter.analyse_residual(frame, motion["context"])
        z_hat = torch.round(z)
        writer.factorized(z_hat, self.z_table)
        out = inter.decode_residual(ref, motion, z_hat, _wavefront_encoder(writer, y))
        return writer.getvalue(), out["recon_image"], {"ref_frame": out["recon_image"]}

    @torch.no_grad()
    def decode_inter(self, payload: bytes, state: dict, rate: int) -> tuple[torch.Tensor, dict]:
        self._check_rate(rate)
        inter, ref = self.codec.inter, state["ref_frame"]
        reader = SymbolReader(payload)
        mv_z_hat = reader.factorized(hyper_shape(self.mv_z_table, ref.shape[-2:]), self.mv_z_table)
        motion = inter.decode_motion(ref, mv_z_hat, _wavefront_decoder(reader))
        z_hat = reader.factorized(hyper_shape(self.z_table, ref.shape[-2:]), self.z_table)
        out = inter.decode_residual(ref, motion, z_hat, _wavefront_decoder(reader))
        return out["recon_image"], {"ref_frame": out["recon_image"]}
