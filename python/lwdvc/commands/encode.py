"""``lwdvc encode``: code a video to a ``.lwdv`` bitstream with a learnt codec."""
from __future__ import annotations

import argparse

from lwdvc.commands.common import (
    DEFAULT_MODEL,
    OPTIMIZE_CHOICES,
    add_frame_size_options,
    add_threads_option,
    load_codec,
    set_threads,
)

HELP = "encode a video (file, raw .yuv or PNG folder) to an .lwdv bitstream (entropy-coded latents)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("encode", help=HELP, description=HELP)
    parser.add_argument("input", nargs="?", default=None,
                        help="video file, raw .yuv or PNG folder (default: the held-out embedded clip)")
    parser.add_argument("-o", "--output", required=True, help="the .lwdv file to write")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"pretrained:<name>, model .json or training checkpoint .pt (default: {DEFAULT_MODEL})")
    parser.add_argument("--rate", type=int, default=0, help="rate-point index (default 0, the lowest rate)")
    parser.add_argument("--gop", type=int, default=32, help="intra period (default 32)")
    parser.add_argument("--frames", type=int, help="code at most this many frames (default: all)")
    parser.add_argument("--optimize", choices=OPTIMIZE_CHOICES,
                        help="run the P-frame decoder networks optimised by lwdvc_kernels.optimize in this dtype "
                             "(recorded in the file: its decoder then runs the same ones)")
    add_frame_size_options(parser)
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lwdvc.bitstream.video import check_settings, encode_video
    from lwdvc.commands.common import test_sequences

    set_threads(args)
    codec = load_codec(args.model)
    if args.optimize:
        from lwdvc.eval import DTYPES, optimize_codec

        codec = optimize_codec(codec, DTYPES[args.optimize])
    check_settings(codec, args.rate, args.gop)
    args.video = [args.input] if args.input else []
    sequence = test_sequences(args, max_frames=args.frames)[0]
    count = len(sequence) if args.frames is None else min(len(sequence), args.frames)
    with tqdm(total=count, desc="encode", unit="frame", disable=args.no_progress, dynamic_ncols=True) as bar:
        result = encode_video(codec, sequence, args.output, rate=args.rate, gop=args.gop, frames=args.frames,
                              model=args.model, progress=bar.update)
    height, width = sequence.original_size
    print(f"wrote {result['path']}: {result['frames']} frames of {width}x{height}, {result['bytes']} bytes, "
          f"{result['bpp']:.4f} bpp")
    return 0
