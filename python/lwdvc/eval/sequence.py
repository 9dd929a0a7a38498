"""Code a test sequence with a codec: I-frame every GOP, P-frames from the decoded reference."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lwdvc.data import PaddedSequence
from lwdvc.errors import BadArgumentError
from lwdvc.metrics import MS_SSIM_WEIGHTS, MS_SSIM_WEIGHTS_4, mean_finite, ms_ssim, psnr, psnr_y

__all__ = ["GopSettings", "code_sequence", "code_sequence_via_file", "msssim_weights_for"]


@dataclass(frozen=True)
class GopSettings:
    """Test conditions.

    Attributes:
        gop: intra period (an I-frame every ``gop`` frames; DCVC-HEM's tests use 32).
        frames: frames to code per sequence (at most the sequence length; 96 officially).
    """

    gop: int = 32
    frames: int = 96

    def __post_init__(self) -> None:
        if self.gop < 1 or self.frames < 1:
            raise BadArgumentError(f"gop and frames must be >= 1, got gop={self.gop}, frames={self.frames}")


def msssim_weights_for(height: int, width: int) -> tuple[float, ...]:
    """MS-SSIM scale weights that fit the frame size.

    Five scales (the standard) when both sides exceed 160 pixels, HM's 4-scale set above 80;
    smaller frames use the first k standard weights renormalised to sum 1, with k the most
    scales that fit (each scale needs sides > 10 * 2^(k-1)).
    """
    side = min(height, width)
    if side > 160:
        return MS_SSIM_WEIGHTS
    if side > 80:
        return MS_SSIM_WEIGHTS_4
    levels = 3
    while levels > 1 and side <= 10 * 2 ** (levels - 1):
        levels -= 1
    head = MS_SSIM_WEIGHTS[:levels]
    return tuple(w / sum(head) for w in head)


class _FrameMetrics:
    """Rate and distortion of each coded frame of ``sequence``, and their means."""

    def __init__(self, sequence: PaddedSequence) -> None:
        self.sequence = sequence
        height, width = sequence.original_size
        self.pixels = height * width
        self.weights = msssim_weights_for(height, width)
        self.per_frame: dict[str, list] = {"type": [], "bpp": [], "psnr": [], "psnr_y": [], "ms_ssim": []}

    def add(self, index: int, kind: str, bits: float, decoded: torch.Tensor) -> None:
        """Frame ``index`` ("I"/"P"), its ``bits`` and its ``decoded`` frame [3, H, W] (original size)."""
        original = self.sequence.original(index)
        self.per_frame["type"].append(kind)
        self.per_frame["bpp"].append(bits / self.pixels)
        self.per_frame["psnr"].append(float(psnr(decoded, original)))
        self.per_frame["psnr_y"].append(float(psnr_y(decoded, original)))
        self.per_frame["ms_ssim"].append(float(ms_ssim(decoded, original, weights=self.weights)))

    def result(self) -> dict:
        result = {"name": self.sequence.name, "frames": len(self.per_frame["type"])}
        for key in ("bpp", "psnr", "psnr_y", "ms_ssim"):
            result[key] = mean_finite(self.per_frame[key])
        result["per_frame"] = self.per_frame
        return result


@torch.no_grad()
def code_sequence(codec, sequence: PaddedSequence, rate: int, settings: GopSettings,
                  progress=None) -> dict:
    """Code ``sequence`` at rate point ``rate`` and measure every frame.

    Frames are padded (replicate, to multiples of 64) as the official test scripts do; rates
    are the codec's estimated entropy (rounded latents, learnt probability models) in bits per
    pixel of the original frame size, distortions are measured on the cropped reconstruction
    (clamped to [0, 1]).

    Args:
        codec: a :class:`~lwdvc.models.video_codec.VideoCodec` (or anything with ``code_intra`` /
            ``code_inter`` / ``num_rates``), evaluated in eval mode.
        sequence: the padded test sequence.
        rate: rate-point index.
        settings: GOP size and frame count.
        progress: optional callable ``progress(n)`` called after each frame.

    Returns:
        ``{"name", "frames", "bpp", "psnr", "psnr_y", "ms_ssim"}`` averages and ``"per_frame"``
        lists (``type`` "I"/"P", ``bpp``, ``psnr``, ``psnr_y``, ``ms_ssim``).
    """
    if not 0 <= rate < codec.num_rates:
        raise BadArgumentError(f"rate point {rate} out of range: the codec has {codec.num_rates}")
    count = min(len(sequence), settings.frames)
    metrics = _FrameMetrics(sequence)
    was_training = codec.training
    codec.eval()
    rate_index = torch.tensor([rate])
    state = None
    try:
        for index in range(count):
            padded = sequence[index].unsqueeze(0)
            if index % settings.gop == 0:
                out = codec.code_intra(padded, rate_index, quant="round")
                kind = "I"
            else:
                out = codec.code_inter(padded, state, rate_index, quant="round")
                kind = "P"
            recon = out["recon"].clamp(0, 1)
            state = codec.reference_state(recon) if kind == "I" else \
                dict(out["state"], ref_frame=out["state"]["ref_frame"].clamp(0, 1))
            bits = float(out["bpp"][0]) * padded.shape[-2] * padded.shape[-1]
            metrics.add(index, kind, bits, sequence.crop(recon)[0])
            if progress is not None:
                progress(1)
    finally:
        codec.train(was_training)
    return metrics.result()


@torch.no_grad()
def code_sequence_via_file(codec, sequence: PaddedSequence, rate: int, settings: GopSettings,
                           progress=None) -> dict:
    """:func:`code_sequence` with real bitstreams: the frames are encoded to a ``.lwdv`` file
    (in a temporary folder), decoded from it, and measured on the decoded frames; a frame's bpp
    is its payload plus its record, the header's bytes are shared out over the frames.

    Raises:
        BitstreamError: the decoded frames differ from the encoder's reconstruction (the coder
            lost synchronisation; never expected).
    """
    import tempfile

    from lwdvc.bitstream import BitstreamError
    from lwdvc.bitstream.video import decode_video, encode_video

    count = min(len(sequence), settings.frames)
    metrics = _FrameMetrics(sequence)
    with tempfile.TemporaryDirectory(prefix="lwdvc-bitstream-") as folder:
        path = f"{folder}/sequence.lwdv"
        encoded = encode_video(codec, sequence, path, rate=rate, gop=settings.gop, frames=count, keep_recon=True)
        overhead = (encoded["bytes"] * 8 - sum(encoded["per_frame"]["bits"])) / count
        _, decoded_frames = decode_video(path, lambda header: codec)
        for index, decoded in enumerate(decoded_frames):
            if not torch.equal(decoded, encoded["recon"][index]):
                raise BitstreamError(f"frame {index} of {sequence.name!r} decodes differently from the encoder's "
                                     "reconstruction")
            metrics.add(index, encoded["per_frame"]["type"][index], encoded["per_frame"]["bits"][index] + overhead,
                        decoded)
            if progress is not None:
                progress(1)
    return metrics.result()
