"""Encode a sequence to a ``.lwdv`` file and decode it back: the codec-level coder.

The frames are padded like evaluation pads them (replicate, to multiples of 64), coded in
low-delay order (an I-frame every ``gop`` frames, P-frames between) at one rate point, and
cropped back to the original size after decoding. The header names the model and carries its
fingerprint (SHA-256 of its parameters), so a file is only decoded by the model that wrote it,
and says whether the P-frame decoder networks ran optimised (``"optimize": "fp32"`` / ``"bf16"``,
:func:`lwdvc.eval.optimize_codec`; null: as trained): the encoder reconstructs every reference
with the decoder's networks, so a file decodes only with the same ones.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

from lwdvc.bitstream.container import BitstreamWriter, read_bitstream
from lwdvc.bitstream.dcvc_frames import DcvcFrameCoder
from lwdvc.bitstream.fvc_frames import FvcFrameCoder
from lwdvc.bitstream.hem_frames import HemFrameCoder
from lwdvc.bitstream.symbols import BitstreamError
from lwdvc.errors import BadArgumentError
from lwdvc.models.frames import padding_for

__all__ = ["FORMAT_NAME", "FRAME_CODERS", "check_model", "check_settings", "decode_video", "decoder_optimization",
           "deterministic_kernels", "encode_video", "frame_coder", "model_fingerprint", "padded_size"]

FORMAT_NAME = "lwdvc-video"


@contextlib.contextmanager
def deterministic_kernels():
    """Compute with kernels whose results do not depend on the thread count.

    Encoder and decoder must compute the same probability models and reference frames to the
    last bit. oneDNN's CPU convolutions change their summation order with the thread count
    (a 1x1 convolution of 48 to 192 channels on a 16x32 map differs by 1.5e-7 between one and
    two threads), so coding runs convolutions through PyTorch's own im2col + GEMM kernels
    instead; on CUDA, cuDNN is held to deterministic algorithms without autotuning.
    """
    mkldnn, cudnn = torch.backends.mkldnn, torch.backends.cudnn
    saved = mkldnn.enabled, cudnn.benchmark, cudnn.deterministic
    mkldnn.enabled, cudnn.benchmark, cudnn.deterministic = False, False, True
    try:
        yield
    finally:
        mkldnn.enabled, cudnn.benchmark, cudnn.deterministic = saved


def model_fingerprint(codec: torch.nn.Module) -> str:
    """SHA-256 (hex) of a codec's parameters and buffers: names, dtypes, shapes and values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(codec.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


#: The frame coder of each codec family that has one.
FRAME_CODERS = {"dcvc_hem": HemFrameCoder, "dcvc_hem_skip": HemFrameCoder, "dcvc": DcvcFrameCoder,
                "fvc": FvcFrameCoder}


def frame_coder(codec):
    """The entropy coder of ``codec``'s frames (:data:`FRAME_CODERS`).

    Raises:
        BadArgumentError: a family without a bitstream coder (names it).
    """
    family = getattr(codec, "family", type(codec).__name__)
    if family in FRAME_CODERS:
        return FRAME_CODERS[family](codec)
    raise BadArgumentError(f"bitstreams are written for the families {', '.join(FRAME_CODERS)}; "
                           f"the {family} family has no entropy coder yet")


def check_settings(codec, rate: int, gop: int) -> None:
    """Raise BadArgumentError for a rate point the codec lacks or an intra period below 1."""
    if not 0 <= rate < codec.num_rates:
        raise BadArgumentError(f"--rate {rate} is out of range: the codec has rate points 0..{codec.num_rates - 1}")
    if gop < 1:
        raise BadArgumentError(f"--gop must be >= 1, got {gop}")


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The coded (padded) size of frames of ``height`` x ``width``: multiples of 64."""
    _, right, _, bottom = padding_for(height, width)
    return height + bottom, width + right


@torch.no_grad()
def encode_video(codec, sequence, path: str | os.PathLike, *, rate: int, gop: int, frames: int | None = None,
                 model: str = "", progress: Callable[[int], None] | None = None,
                 keep_recon: bool = False) -> dict[str, Any]:
    """Encode ``sequence`` (a :class:`~lwdvc.data.PaddedSequence`) to the file ``path``.

    Args:
        codec: the codec (eval mode is set for the call).
        sequence: padded frames [3, H', W'] with ``original_size`` and ``original(index)``.
        rate: rate-point index. gop: intra period. frames: at most this many frames (None: all).
        model: the model's name as the user gave it (stored in the header).
        progress: called with 1 after each frame.
        keep_recon: also return the decoder's frames (the encoder reconstructs them itself);
            off by default, as a long video's frames need not all stay in memory.

    Returns:
        ``{"path", "frames", "bytes", "bpp", "per_frame": {"type", "bits"}, "recon": [3, H, W] list}``
        (``recon`` empty unless ``keep_recon``).
    """
    check_settings(codec, rate, gop)
    count = len(sequence) if frames is None else min(len(sequence), int(frames))
    if count < 1:
        raise BadArgumentError("nothing to encode: the sequence has no frames (or --frames is 0)")
    height, width = sequence.original_size
    if tuple(sequence[0].shape[-2:]) != padded_size(height, width):
        raise BadArgumentError(f"frames of {height}x{width} must come padded to {padded_size(height, width)}, "
                               f"got {tuple(sequence[0].shape[-2:])}")
    coder = frame_coder(codec)
    header = {"format": FORMAT_NAME, "family": codec.family, "codec": dict(codec.config), "model": model,
              "model_sha256": model_fingerprint(codec), "optimize": decoder_optimization(codec),
              "height": height, "width": width, "frames": count, "rate": int(rate), "gop": int(gop)}
    was_training = codec.training
    codec.eval()
    per_frame: dict[str, list] = {"type": [], "bits": []}
    recon_frames = []
    try:
        with deterministic_kernels(), BitstreamWriter(path, header) as writer:
            state = None
            for index in range(count):
                x = sequence[index].unsqueeze(0)
                if index % gop == 0:
                    payload, recon, state = coder.encode_intra(x, rate)
                    kind = "I"
                else:
                    payload, recon, state = coder.encode_inter(x, state, rate)
                    kind = "P"
                writer.add(kind, payload)
                per_frame["type"].append(kind)
                per_frame["bits"].append(8 * len(payload))
                if keep_recon:
                    recon_frames.append(sequence.crop(recon)[0])
                if progress is not None:
                    progress(1)
            total = writer.bytes
    finally:
        codec.train(was_training)
    return {"path": os.fspath(path), "frames": count, "bytes": total, "bpp": 8 * total / (count * height * width),
            "per_frame": per_frame, "recon": recon_frames}


def decoder_optimization(codec) -> str | None:
    """How ``codec``'s P-frame decoder networks run: "fp32" / "bf16" when optimised, None as trained."""
    return getattr(codec, "optimized_decoder", None)


def _decoder_name(optimization: str | None) -> str:
    if optimization is None:
        return "as trained (no --optimize)"
    return f"optimised in {optimization} (--optimize {optimization})"


def check_model(header: dict[str, Any], codec, path: str) -> None:
    """Raise BitstreamError unless ``codec`` is the model that wrote the file, with the same decoder
    networks (optimised in the same dtype, or not at all)."""
    if header.get("format") != FORMAT_NAME:
        raise BitstreamError(f"{path} holds {header.get('format')!r}, not an {FORMAT_NAME} stream")
    fingerprint = model_fingerprint(codec)
    if header.get("model_sha256") != fingerprint:
        raise BitstreamError(f"{path} was encoded with another model ({header.get('model') or 'unnamed'}, "
                             f"fingerprint {str(header.get('model_sha256'))[:12]}); the given model's is "
                             f"{fingerprint[:12]}")
    written, given = header.get("optimize"), decoder_optimization(codec)
    if written != given:
        raise BitstreamError(f"{path} was encoded with the P-frame decoder {_decoder_name(written)}; it decodes only "
                             f"with the same networks, not {_decoder_name(given)} (the references would differ "
                             "from the encoder's)")


@torch.no_grad()
def decode_video(path: str | os.PathLike, codec_for: Callable[[dict[str, Any]], Any],
                 progress: Callable[[int], None] | None = None) -> tuple[dict[str, Any], Iterator[torch.Tensor]]:
    """Decode a ``.lwdv`` file.

    Args:
        path: the file.
        codec_for: ``codec_for(header)`` returns the codec to decode with (e.g. the model the
            header names, or one the user chose); it is checked against the header's fingerprint.
        progress: called with 1 after each frame.

    Returns:
        (header, iterator of decoded frames [3, H, W] in [0, 1] at the original size).

    Raises:
        BitstreamError: bad, truncated or corrupted file, or a file of another model.
    """
    path = os.fspath(path)
    header, frames = read_bitstream(path)
    try:
        height, width = int(header["height"]), int(header["width"])
        rate, gop = int(header["rate"]), int(header["gop"])
    except (KeyError, TypeError, ValueError) as error:
        raise BitstreamError(f"{path} has an incomplete header ({error})") from None
    if height < 1 or width < 1:
        raise BitstreamError(f"{path}: frame size {height}x{width} in its header is not valid")
    padded = padded_size(height, width)
    codec = codec_for(header)
    check_model(header, codec, path)
    if not 0 <= rate < codec.num_rates or gop < 1:
        raise BitstreamError(f"{path}: rate point {rate} or intra period {gop} is not valid for this codec")
    coder = frame_coder(codec)
    codec.eval()

    def frames_out() -> Iterator[torch.Tensor]:
        state = None
        with deterministic_kernels():
            for index, frame in enumerate(frames):
                expected = "I" if index % gop == 0 else "P"
                if frame.kind != expected:
                    raise BitstreamError(f"{path}: frame {index} is a {frame.kind}-frame, "
                                         f"the intra period says {expected}")
                if frame.kind == "I":
                    recon, state = coder.decode_intra(frame.payload, padded, rate)
                else:
                    recon, state = coder.decode_inter(frame.payload, state, rate)
                if progress is not None:
                    progress(1)
                yield recon[0, :, :height, :width]

    return header, frames_out()
