"""``lwdvc eval``: RD curves, BD metrics and decoder cost of one or more codecs on test videos."""
from __future__ import annotations

import argparse

from lwdvc.commands.common import (
    DEFAULT_MODEL,
    OPTIMIZE_CHOICES,
    add_classical_options,
    add_gop_options,
    add_sequence_options,
    add_threads_option,
    classical_codecs,
    gop_settings,
    load_codec,
    set_threads,
    test_sequences,
)
from lwdvc.errors import BadArgumentError

HELP = "evaluate codecs: bpp, PSNR (RGB, Y), MS-SSIM per rate point, BD metrics, decoder MACs and latency"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("eval", help=HELP, description=HELP)
    parser.add_argument("models", nargs="*", default=[DEFAULT_MODEL],
                        help="pretrained:<name>, model .json or training checkpoint .pt; the first is "
                             f"the BD anchor (default: {DEFAULT_MODEL})")
    parser.add_argument("--labels", nargs="+", help="names of the models in the report")
    parser.add_argument("--rates", type=int, nargs="+", help="rate-point indices (default: all)")
    add_sequence_options(parser)
    add_gop_options(parser)
    parser.add_argument("--optimize", nargs="+", default=[], choices=OPTIMIZE_CHOICES, metavar="DTYPE",
                        help="also evaluate each model with its P-frame decoder optimised by lwdvc_kernels.optimize "
                             "(fused ops, channels_last) computing in fp32 and/or bf16")
    add_classical_options(parser)
    parser.add_argument("--all-intra", action="store_true",
                        help="also code every frame as an I-frame with each model and report what P-frame coding saves")
    parser.add_argument("--bd-reference", metavar="LABEL",
                        help="label of the BD reference: a model's label or a classical codec's (e.g. 'x264 medium'); "
                             "default: the first model")
    parser.add_argument("--bitstream", action="store_true",
                        help="rates of the learnt models from real .lwdv files (entropy-coded, then decoded and "
                             "measured) instead of the estimated entropy (DCVC-HEM family)")
    parser.add_argument("--latency-repeats", type=int, default=10, help="timed decoder runs (0: skip timing)")
    add_threads_option(parser, " for coding")
    parser.add_argument("--out", default="lwdvc-eval", help="report folder (default ./lwdvc-eval)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from lwdvc.eval import DTYPES, evaluate_models, markdown_report, optimize_codec, write_report

    set_threads(args)
    labels = args.labels or [f"model{i}" if len(args.models) > 1 else "model" for i in range(len(args.models))]
    if len(labels) != len(args.models):
        raise BadArgumentError(f"{len(labels)} labels for {len(args.models)} models")
    classical = classical_codecs(args)  # an unknown encoder or preset fails before any coding
    models = {label: load_codec(spec) for label, spec in zip(labels, args.models)}
    settings = gop_settings(args)
    sequences = test_sequences(args, max_frames=settings.frames)  # bad input fails before optimising
    sources = {}
    for label, codec in list(models.items()):
        for name in args.optimize:
            sources[f"{label} [optimized {name}]"] = codec
            models[f"{label} [optimized {name}]"] = optimize_codec(codec, DTYPES[name])
    report = evaluate_models(models, sequences, settings, rates=args.rates,
                             latency_repeats=args.latency_repeats, progress=not args.no_progress,
                             mac_sources=sources, classical=classical, anchor=args.bd_reference,
                             all_intra=args.all_intra, bitstream=args.bitstream)
    report["inputs"] = dict(zip(labels, args.models))
    paths = write_report(report, args.out)
    print(markdown_report(report))
    print(f"wrote {paths['json']}, {paths['markdown']}, {paths['plot']} and {paths['frames_plot']}")
    return 0
