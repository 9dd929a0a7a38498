"""Classical reference codecs (x264, x265 through PyAV's FFmpeg) coded like the learnt ones.

A :class:`ClassicalCodec` codes a test sequence in low-delay P configuration: no B-frames, an
I-frame exactly every ``gop`` frames (the learnt codecs' intra period) and never elsewhere (scene
cut detection off), the chosen preset (default ``medium``) and one CRF per rate point. Frames go
RGB -> YUV (``pix_fmt``, default 4:2:0, swscale's BT.601 matrix) -> encoder -> decoder -> RGB;
the rate is the coded bytes of every packet (parameter sets included; the encoders' informational
SEI messages, x264's and x265's option strings of 0.6 and 2.3 kB that a decoder ignores, left
out) per original pixel and
PSNR / PSNR-Y / MS-SSIM are computed by the same functions, on the same original frames, as for
the learnt codecs (:func:`lwdvc.eval.sequence.code_sequence`). Odd frame sizes are padded to even
(replicated edge) for chroma subsampling and cropped after decoding.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
from tqdm.auto import tqdm

from lwdvc.data import PaddedSequence
from lwdvc.errors import BadArgumentError
from lwdvc.eval.sequence import GopSettings, msssim_weights_for
from lwdvc.metrics import mean_finite, ms_ssim, psnr, psnr_y

__all__ = ["CLASSICAL_CODECS", "PRESETS", "PIXEL_FORMATS", "ClassicalCodec", "ClassicalCodecError",
           "classical_curve", "code_sequence_classical", "sei_bytes"]

#: name -> (FFmpeg encoder, FFmpeg decoder, encoder-parameter option, default CRFs).
CLASSICAL_CODECS = {
    "x264": ("libx264", "h264", "x264-params", (37, 32, 27, 22)),
    "x265": ("libx265", "hevc", "x265-params", (37, 32, 27, 22)),
}
#: Presets both x264 and x265 know, fastest first.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
           "placebo")
PIXEL_FORMATS = ("yuv420p", "yuv444p")


class ClassicalCodecError(BadArgumentError):
    """A classical codec that cannot be used here: unknown name or preset, or an encoder missing from PyAV."""


@dataclass(frozen=True)
class ClassicalCodec:
    """A classical codec configuration.

    Attributes:
        name: "x264" or "x265".
        preset: encoder preset (default "medium").
        crfs: constant rate factor of each rate point (default 37, 32, 27, 22: lowest rate first,
            as the learnt codecs' rate points).
        pix_fmt: "yuv420p" (default) or "yuv444p".
        tune: optional encoder tune (e.g. "zerolatency").
        threads: encoder threads (1: reproducible bit for bit).
    """

    name: str = "x264"
    preset: str = "medium"
    crfs: tuple[int, ...] = field(default=())
    pix_fmt: str = "yuv420p"
    tune: str | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if self.name not in CLASSICAL_CODECS:
            raise ClassicalCodecError(f"unknown classical codec {self.name!r}; choose one of "
                                      f"{', '.join(CLASSICAL_CODECS)}")
        if self.preset not in PRESETS:
            raise ClassicalCodecError(f"{self.name} does not know the preset {self.preset!r}; choose one of "
                                      f"{', '.join(PRESETS)}")
        if self.pix_fmt not in PIXEL_FORMATS:
            raise ClassicalCodecError(f"pixel format must be one of {', '.join(PIXEL_FORMATS)}, got {self.pix_fmt!r}")
        crfs = tuple(self.crfs) or CLASSICAL_CODECS[self.name][3]
        if any(not 0 <= int(c) <= 51 for c in crfs):
            raise ClassicalCodecError(f"{self.name} CRF values must be in [0, 51], got {list(crfs)}")
        object.__setattr__(self, "crfs", tuple(int(c) for c in crfs))
        if int(self.threads) < 1:
            raise ClassicalCodecError(f"threads must be >= 1, got {self.threads}")
        import av

        encoder = CLASSICAL_CODECS[self.name][0]
        if encoder not in av.codecs_available:
            raise ClassicalCodecError(f"the installed PyAV ({av.__version__}) has no {encoder} encoder, needed for "
                                      f"the {self.name} anchor")

    @property
    def label(self) -> str:
        """Name in reports, e.g. "x264 medium"."""
        extra = f" {self.tune}" if self.tune else ""
        fmt = "" if self.pix_fmt == "yuv420p" else f" {self.pix_fmt}"
        return f"{self.name} {self.preset}{extra}{fmt}"

    def describe(self) -> dict:
        """JSON-able settings (for reports)."""
        return {"codec": self.name, "encoder": CLASSICAL_CODECS[self.name][0], "preset": self.preset,
                "crfs": list(self.crfs), "pix_fmt": self.pix_fmt, "tune": self.tune, "threads": self.threads,
                "b_frames": 0, "scene_cut": False}

    def encoder_options(self, crf: int, gop: int) -> dict[str, str]:
        """FFmpeg options of the encoder for one rate point."""
        _, _, params_key, _ = CLASSICAL_CODECS[self.name]
        if self.name == "x264":
            params = [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0", "bframes=0", "open-gop=0",
                      f"threads={self.threads}"]
        else:
            params = [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0", "bframes=0", "open-gop=0",
                      f"frame-threads={self.threads}", f"pools={self.threads}", "log-level=error"]
        options = {"preset": self.preset, "crf": str(int(crf)), params_key: ":".join(params)}
        if self.tune:
            options["tune"] = self.tune
        return options


#: NAL unit types of SEI messages: H.264 (type 6) and HEVC (prefix 39, suffix 40).
_SEI_TYPES = {"x264": (6,), "x265": (39, 40)}


def sei_bytes(data: bytes, name: str) -> int:
    """Bytes of the SEI NAL units (with their start codes) in an Annex-B packet of codec ``name``."""
    starts = []
    index = data.find(b"\x00\x00\x01")
    while index >= 0:
        starts.append(index)
        index = data.find(b"\x00\x00\x01", index + 3)
    total = 0
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        if start + 3 >= len(data):
            break
        header = data[start + 3]
        nal_type = header & 0x1F if name == "x264" else (header >> 1) & 0x3F
        if nal_type in _SEI_TYPES[name]:
            total += end - start
    return total


def _to_uint8_hwc(frame: torch.Tensor, height: int, width: int) -> np.ndarray:
    """[3, H, W] in [0, 1] -> uint8 [height, width, 3], edge-replicated to the (even) coded size."""
    image = (frame.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pad_h, pad_w = height - image.shape[0], width - image.shape[1]
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(image)


def _coded_size(height: int, width: int, pix_fmt: str) -> tuple[int, int]:
    if pix_fmt == "yuv420p":
        return height + height % 2, width + width % 2
    return height, width


def _encode(codec: ClassicalCodec, frames: Sequence[np.ndarray], crf: int, gop: int, height: int,
            width: int) -> list:
    import av

    encoder = av.CodecContext.create(CLASSICAL_CODECS[codec.name][0], "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = codec.pix_fmt
    encoder.time_base = Fraction(1, 25)
    encoder.framerate = Fraction(25, 1)
    encoder.options = codec.encoder_options(crf, gop)
    try:
        encoder.open()
    except av.error.FFmpegError as error:
        raise ClassicalCodecError(f"{codec.name} refused its settings {codec.encoder_options(crf, gop)}: "
                                  f"{error}") from error
    packets = []
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=codec.pix_fmt)
        frame.pts = index
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    return packets


def _decode(codec: ClassicalCodec, packets: list) -> list:
    import av

    decoder = av.CodecContext.create(CLASSICAL_CODECS[codec.name][1], "r")
    decoder.thread_count = 1
    frames = []
    for packet in packets:
        frames.extend(decoder.decode(packet))
    frames.extend(decoder.decode(None))
    return frames


def code_sequence_classical(codec: ClassicalCodec, sequence: PaddedSequence, crf: int,
                            settings: GopSettings) -> dict:
    """Code ``sequence`` at one CRF and measure every frame like :func:`~lwdvc.eval.sequence.code_sequence`.

    Returns:
        ``{"name", "frames", "crf", "sei_bytes_left_out", "bpp", "psnr", "psnr_y", "ms_ssim",
        "per_frame"}``; ``per_frame``
        has ``type`` ("I"/"P" from the decoder), ``bpp`` (the frame's packet), ``psnr``, ``psnr_y``,
        ``ms_ssim``.

    Raises:
        ClassicalCodecError: the encoder refuses its options, or the decoded stream does not have
            one frame per input frame.
    """
    count = min(len(sequence), settings.frames)
    height, width = sequence.original_size
    coded_h, coded_w = _coded_size(height, width, codec.pix_fmt)
    originals = [sequence.original(i) for i in range(count)]
    packets = _encode(codec, [_to_uint8_hwc(f, coded_h, coded_w) for f in originals], crf, settings.gop,
                      coded_h, coded_w)
    decoded = _decode(codec, packets)
    if len(decoded) != count or len(packets) != count:
        raise ClassicalCodecError(f"{codec.name} gave {len(packets)} packets / {len(decoded)} frames for "
                                  f"{count} input frames of {sequence.name!r}")
    weights = msssim_weights_for(height, width)
    per_frame: dict[str, list] = {"type": [], "bpp": [], "psnr": [], "psnr_y": [], "ms_ssim": []}
    sei = 0
    for packet, frame, original in zip(packets, decoded, originals):
        rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")[:height, :width]).permute(2, 0, 1)
        recon = rgb.to(torch.float32) / 255.0
        data = bytes(packet)
        skipped = sei_bytes(data, codec.name)
        sei += skipped
        per_frame["type"].append("I" if frame.key_frame else "P")
        per_frame["bpp"].append((len(data) - skipped) * 8.0 / (height * width))
        per_frame["psnr"].append(float(psnr(recon, original)))
        per_frame["psnr_y"].append(float(psnr_y(recon, original)))
        per_frame["ms_ssim"].append(float(ms_ssim(recon, original, weights=weights)))
    result = {"name": sequence.name, "frames": count, "crf": int(crf), "sei_bytes_left_out": sei}
    for key in ("bpp", "psnr", "psnr_y", "ms_ssim"):
        result[key] = mean_finite(per_frame[key])
    result["per_frame"] = per_frame
    return result


def classical_curve(codec: ClassicalCodec, sequences: Sequence[PaddedSequence], settings: GopSettings,
                    progress: bool = True) -> list[dict]:
    """One RD point per CRF of ``codec`` (in its order), averaged over sequences like
    :func:`lwdvc.eval.rd.rd_curve`.

    Returns:
        ``[{"rate", "crf", "bpp", "psnr", "psnr_y", "ms_ssim", "sequences": [...]}, ...]``.
    """
    if not sequences:
        raise BadArgumentError("no test sequences to evaluate")
    points = []
    for index, crf in enumerate(tqdm(codec.crfs, desc=f"eval {codec.label}", unit="crf", disable=not progress,
                                     dynamic_ncols=True)):
        results = [code_sequence_classical(codec, seq, crf, settings) for seq in sequences]
        point = {"rate": index, "crf": int(crf)}
        for key in ("bpp", "psnr", "psnr_y", "ms_ssim"):
            point[key] = sum(r[key] for r in results) / len(results)
        point["sequences"] = results
        points.append(point)
    return points
