"""Entropy-coded I- and P-frames of the DCVC-HEM family (``dcvc_hem``, ``dcvc_hem_skip``).

Each frame's payload is one range-coder stream, written in the order its decoder reads it:

* I-frame: hyper latent ``z`` (factorized prior), then the latent's two checkerboard passes
  (zero-mean Gaussian on the residuals, scales from the hyper and spatial priors);
* P-frame: the motion's hyper latent, its two passes (Laplace), then the contextual hyper
  latent and its two passes (Laplace, scales also from the temporal prior and the previous
  frame's latent).

The encoder reconstructs every frame with the decoder's own code (the models' ``decode``
methods, fed by an entropy *encoder* in place of the decoder), so encoder and decoder hold the
same reference frames and compute the same probability models.
"""
from __future__ import annotations

import torch

from lwdvc.bitstream.priors import factorized_table, hyper_shape
from lwdvc.bitstream.symbols import SymbolReader, SymbolWriter
from lwdvc.models.entropy import checkerboard_residuals

__all__ = ["HemFrameCoder"]


def _encoding_source(writer: SymbolWriter, latent: torch.Tensor, model: str):
    """``symbols`` callback of ``dual_prior_decode`` that codes the residuals of ``latent``."""
    code = writer.gaussian if model == "gaussian" else writer.laplace

    def symbols(index, scales_r, means_r, quant_step):
        residuals = checkerboard_residuals(latent, means_r, quant_step, index)
        code(residuals, scales_r)
        return residuals
    return symbols


def _decoding_source(reader: SymbolReader, model: str):
    """``symbols`` callback of ``dual_prior_decode`` that reads the residuals from ``reader``."""
    read = reader.gaussian if model == "gaussian" else reader.laplace
    return lambda index, scales_r, means_r, quant_step: read(scales_r).to(scales_r.device)


class HemFrameCoder:
    """Codes frames of a variable-rate DCVC-HEM :class:`~lwdvc.models.video_codec.VideoCodec`.

    Frames are padded [1, 3, H, W] with H, W multiples of 64 (replicate padding, as evaluation
    does). The state between frames is the decoder's picture buffer (a dict).
    """

    def __init__(self, codec) -> None:
        if not getattr(codec, "variable_rate", False) or not hasattr(codec.inter, "decode_motion"):
            raise ValueError(f"HemFrameCoder codes the DCVC-HEM family, not {getattr(codec, 'family', codec)!r}")
        self.codec = codec
        self.intra_table = factorized_table(codec.intra.bit_estimator_z)
        self.z_table = factorized_table(codec.inter.bit_estimator_z)
        self.mv_z_table = factorized_table(codec.inter.bit_estimator_z_mv)

    def _scales(self, rate: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not 0 <= rate < self.codec.num_rates:
            raise ValueError(f"rate point {rate} out of range: the codec has {self.codec.num_rates}")
        return (self.codec.intra.q_scale[rate], self.codec.inter.mv_y_q_scale[rate],
                self.codec.inter.y_q_scale[rate])

    # ----------------------------------------------------------------- I-frames
    @torch.no_grad()
    def encode_intra(self, frame: torch.Tensor, rate: int) -> tuple[bytes, torch.Tensor, dict]:
        """(payload, reconstruction [1, 3, H, W] in [0, 1], state) of an I-frame."""
        q_scale = self._scales(rate)[0]
        intra = self.codec.intra
        y, z = intra.analyse(frame, q_scale)
        writer = SymbolWriter()
        z_hat = torch.round(z)
        writer.factorized(z_hat, self.intra_table)
        out = intra.decode(z_hat, _encoding_source(writer, y, "gaussian"), q_scale)
        return writer.getvalue(), out["x_hat"], {"ref_frame": out["x_hat"]}

    @torch.no_grad()
    def decode_intra(self, payload: bytes, size: tuple[int, int], rate: int) -> tuple[torch.Tensor, dict]:
        """(reconstruction, state) of an I-frame of padded ``size`` (H, W) from its payload."""
        q_scale = self._scales(rate)[0]
        intra = self.codec.intra
        reader = SymbolReader(payload)
        z_hat = reader.factorized(hyper_shape(self.intra_table, size), self.intra_table)
        out = intra.decode(z_hat, _decoding_source(reader, "gaussian"), q_scale)
        return out["x_hat"], {"ref_frame": out["x_hat"]}

    # ----------------------------------------------------------------- P-frames
    @torch.no_grad()
    def encode_inter(self, frame: torch.Tensor, state: dict, rate: int) -> tuple[bytes, torch.Tensor, dict]:
        """(payload, reconstruction, next state) of a P-frame coded against ``state``."""
        _, mv_q_scale, y_q_scale = self._scales(rate)
        inter = self.codec.inter
        writer = SymbolWriter()
        mv_y, mv_z = inter.analyse_motion(frame, state, mv_q_scale)
        mv_z_hat = torch.round(mv_z)
        writer.factorized(mv_z_hat, self.mv_z_table)
        motion = inter.decode_motion(state, mv_z_hat, _encoding_source(writer, mv_y, "laplace"), mv_q_scale)
        y, z = inter.analyse_residual(frame, (motion["context1"], motion["context2"], motion["context3"]), y_q_scale)
        z_hat = torch.round(z)
        writer.factorized(z_hat, self.z_table)
        out = inter.decode_residual(state, motion, z_hat, _encoding_source(writer, y, "laplace"), y_q_scale)
        return writer.getvalue(), out["recon_image"], out["dpb"]

    @torch.no_grad()
    def decode_inter(self, payload: bytes, state: dict, rate: int) -> tuple[torch.Tensor, dict]:
        """(reconstruction, next state) of a P-frame from its payload and the decoder's state."""
        _, mv_q_scale, y_q_scale = self._scales(rate)
        inter = self.codec.inter
        reader = SymbolReader(payload)
        size = state["ref_frame"].shape[-2:]
        mv_z_hat = reader.factorized(hyper_shape(self.mv_z_table, size), self.mv_z_table)
        motion = inter.decode_motion(state, mv_z_hat, _decoding_source(reader, "laplace"), mv_q_scale)
        z_hat = reader.factorized(hyper_shape(self.z_table, size), self.z_table)
        out = inter.decode_residual(state, motion, z_hat, _decoding_source(reader, "laplace"), y_q_scale)
        return out["recon_image"], out["dpb"]
