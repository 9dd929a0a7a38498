"""Shared pieces of the subcommands: loading codecs, test sequences and common options."""
from __future__ import annotations

import argparse
import os

from lwdvc.errors import BadArgumentError

__all__ = ["make_output_folder", "load_codec", "add_sequence_options", "add_frame_size_options",
           "add_threads_option", "set_threads", "test_sequences", "add_gop_options",
           "gop_settings", "add_classical_options", "classical_codecs", "DEFAULT_MODEL", "OPTIMIZE_CHOICES"]

#: The teacher shipped with the package.
DEFAULT_MODEL = "pretrained:dcvc_hem_w025_v4"
#: ``--optimize`` values: the keys of :data:`lwdvc.eval.DTYPES`, written out so that the CLI
#: starts without importing torch (tests/cli/test_encode_decode.py checks that they agree).
OPTIMIZE_CHOICES = ("fp32", "bf16")


def make_output_folder(path: str, option: str = "--out") -> str:
    """Create the output folder ``path`` (and its parents) unless it exists.

    Raises:
        BadArgumentError: ``path`` (or a parent) is an existing file.
    """
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise BadArgumentError(f"{option} {path}: a file is in the way of the output folder ({error})") from None
    return path


def load_codec(spec: str):
    """A VideoCodec from ``pretrained:<name>``, a model ``.json`` or a training checkpoint ``.pt``.

    Raises:
        FileNotFoundError / UnknownNameError / CheckpointError / InputFileError: with the spec named.
    """
    from lwdvc.checkpoint import checkpoint_codec, load_checkpoint
    from lwdvc.models.pretrained import load_weights, pretrained
    from lwdvc.models.video_codec import VideoCodec

    if spec.startswith("pretrained:"):
        return pretrained(spec.split(":", 1)[1])
    if not os.path.exists(spec):
        raise FileNotFoundError(f"no model at {spec} (give pretrained:<name>, a model .json or a "
                                "training checkpoint .pt)")
    if spec.endswith(".json"):
        return load_weights(spec)
    payload = load_checkpoint(spec)
    codec = VideoCodec.from_config(checkpoint_codec(payload))
    codec.load_state_dict(payload["model"])
    return codec.eval()


def add_sequence_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", nargs="+", default=[], metavar="PATH",
                        help="test videos, raw .yuv files or PNG folders (default: the held-out embedded clip)")
    add_frame_size_options(parser)


def add_frame_size_options(parser: argparse.ArgumentParser) -> None:
    """``--yuv-size`` and ``--max-side``, read by :func:`test_sequences`."""
    parser.add_argument("--yuv-size", metavar="WxH", help="frame size of raw .yuv files without WxH in their name")
    parser.add_argument("--max-side", type=int, help="downscale videos so their longest side is at most this")


def add_threads_option(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--threads``; :func:`set_threads` applies it."""
    parser.add_argument("--threads", type=int, default=0, help=f"torch threads{what} (0: default)")


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (0 leaves torch's default)."""
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)


def add_gop_options(parser: argparse.ArgumentParser, gop: int = 32, frames: int = 96) -> None:
    parser.add_argument("--gop", type=int, default=gop, help=f"intra period (default {gop})")
    parser.add_argument("--frames", type=int, default=frames, help=f"frames to code per sequence (default {frames})")


def add_classical_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--anchor", nargs="+", default=[], metavar="CODEC",
                        help="also code the frames with classical codecs (x264, x265 through PyAV): low-delay P, "
                             "no B-frames, the same intra period, rate from the coded bytes")
    parser.add_argument("--anchor-preset", default="medium", help="preset of the classical codecs (default medium)")
    parser.add_argument("--anchor-crf", type=int, nargs="+", metavar="CRF",
                        help="CRF of each classical rate point (default 37 32 27 22)")
    parser.add_argument("--anchor-pix-fmt", default="yuv420p", help="yuv420p (default) or yuv444p")
    parser.add_argument("--anchor-tune", help="encoder tune of the classical codecs (e.g. zerolatency)")


def classical_codecs(args: argparse.Namespace) -> list:
    """The :class:`~lwdvc.eval.classical.ClassicalCodec` list the ``--anchor*`` options ask for."""
    from lwdvc.eval.classical import ClassicalCodec

    return [ClassicalCodec(name, preset=args.anchor_preset, crfs=tuple(args.anchor_crf or ()),
                           pix_fmt=args.anchor_pix_fmt, tune=args.anchor_tune) for name in args.anchor]


def gop_settings(args: argparse.Namespace):
    from lwdvc.eval import GopSettings

    return GopSettings(gop=args.gop, frames=args.frames)


def _yuv_size(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise BadArgumentError(f"--yuv-size must look like 176x144, got {text!r}") from error
    return width, height


def test_sequences(args: argparse.Namespace, max_frames: int | None = None):
    """Padded test sequences from ``--video`` (or the default held-out clip)."""
    from lwdvc.data import PaddedSequence, default_sequences, open_sequence

    width, height = _yuv_size(getattr(args, "yuv_size", None))
    if args.video:
        sources = [open_sequence(path, width=width, height=height, max_frames=max_frames, max_side=args.max_side)
                   for path in args.video]
    else:
        sources = default_sequences("test", max_frames=max_frames, max_side=args.max_side)
    sequences = [PaddedSequence(source, max_frames=max_frames) for source in sources]
    for sequence in sequences:
        sequence[0]  # decode the first frame now: unreadable files fail here, with their name
    return sequences
