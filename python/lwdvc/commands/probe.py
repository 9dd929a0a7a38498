"""``lwdvc probe``: P-frames coded from the original previous frame (open loop), per rate point."""
from __future__ import annotations

import argparse
import json

from lwdvc.commands.common import DEFAULT_MODEL, add_sequence_options, add_threads_option, load_codec, set_threads

HELP = ("code each P-frame against the original previous frame: PSNR, gain over copying the reference, "
        "and the bits of the motion and contextual latents")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("probe", help=HELP, description=HELP)
    parser.add_argument("models", nargs="*", default=[DEFAULT_MODEL],
                        help=f"pretrained:<name>, model .json or training checkpoint .pt (default: {DEFAULT_MODEL})")
    parser.add_argument("--rates", type=int, nargs="+", help="rate-point indices (default: all)")
    parser.add_argument("--start", type=int, default=0, help="index of the first reference frame (default 0)")
    parser.add_argument("--frames", type=int, default=5,
                        help="frames of the window; all but the first are coded (default 5)")
    add_sequence_options(parser)
    add_threads_option(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def format_row(label: str, result: dict) -> str:
    """One Markdown table row of an :func:`~lwdvc.eval.open_loop.code_open_loop` result."""
    first, last = result["start"] + 1, result["start"] + result["frames"] - 1
    return (f"| {label} | {result['name']} | {result['rate']} | {first}-{last} "
            f"| {result['psnr']:.2f} | {result['copy_psnr']:.2f} | {result['gain']:+.2f} | {result['bpp']:.4f} "
            f"| {result['bpp_mv']:.4f} | {result['bpp_y']:.4f} |")


def run(args: argparse.Namespace) -> int:
    from lwdvc.checkpoint import write_text_atomic
    from lwdvc.commands.common import test_sequences
    from lwdvc.errors import BadArgumentError
    from lwdvc.eval.open_loop import code_open_loop

    set_threads(args)
    if args.frames < 2 or args.start < 0:
        raise BadArgumentError(f"--frames must be >= 2 and --start >= 0, got --frames {args.frames} "
                               f"--start {args.start}")
    codecs = {spec: load_codec(spec) for spec in args.models}
    sequences = test_sequences(args, max_frames=args.start + args.frames)
    print("| model | sequence | rate | frames | PSNR dB | copy dB | gain dB | bpp | bpp mv | bpp y |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for spec, codec in codecs.items():
        rates = args.rates if args.rates is not None else list(range(codec.num_rates))
        for sequence in sequences:
            for rate in rates:
                result = code_open_loop(codec, sequence, rate, start=args.start, frames=args.frames)
                print(format_row(spec, result), flush=True)
                results.append(dict(result, model=spec))
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=1))
    return 0
