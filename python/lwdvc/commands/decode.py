"""``lwdvc decode``: decode a ``.lwdv`` bitstream to a ``.y4m`` file or a folder of PNG frames."""
from __future__ import annotations

import argparse

from lwdvc.commands.common import OPTIMIZE_CHOICES, add_threads_option, load_codec, set_threads

HELP = "decode an .lwdv bitstream to a .y4m file or a folder of lossless RGB PNG frames"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("decode", help=HELP, description=HELP)
    parser.add_argument("input", help="the .lwdv file")
    parser.add_argument("-o", "--output", required=True,
                        help="a .y4m file (8-bit 4:2:0, full-range BT.709) or a folder for frame_0001.png, ...")
    parser.add_argument("--model", help="the model to decode with (default: the one the file names)")
    parser.add_argument("--optimize", choices=OPTIMIZE_CHOICES,
                        help="run the P-frame decoder optimised by lwdvc_kernels.optimize in this dtype (default: "
                             "as the file was encoded; a file decodes only with the networks that encoded it)")
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lwdvc.bitstream import BitstreamError
    from lwdvc.bitstream.video import decode_video
    from lwdvc.data.frame_writers import frame_writer
    from lwdvc.eval import DTYPES, optimize_codec

    set_threads(args)

    def codec_for(header):
        spec = args.model or header.get("model")
        if not spec:
            raise BitstreamError(f"{args.input} names no model: give --model")
        optimization = args.optimize or header.get("optimize")
        if optimization is not None and optimization not in DTYPES:
            raise BitstreamError(f"{args.input} was encoded with an unknown decoder optimisation {optimization!r} "
                                 f"(known: {', '.join(DTYPES)})")
        codec = load_codec(spec)
        return codec if optimization is None else optimize_codec(codec, DTYPES[optimization])

    header, frames = decode_video(args.input, codec_for)  # checks the whole file before any output
    writer = frame_writer(args.output, int(header["height"]), int(header["width"]))
    try:
        with tqdm(total=int(header["frames"]), desc="decode", unit="frame", disable=args.no_progress,
                  dynamic_ncols=True) as bar:
            for frame in frames:
                writer.write(frame)
                bar.update(1)
    except BaseException:
        writer.abort()
        raise
    path = writer.close()
    print(f"wrote {path}: {writer.frames} frames of {header['width']}x{header['height']}")
    return 0
