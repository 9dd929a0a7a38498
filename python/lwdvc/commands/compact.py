"""``lwdvc compact``: compact a saved prune state again (e.g. rounding channels for the hardware)."""
from __future__ import annotations

import argparse

HELP = "compact the masked model of a prune state (from `lwdvc prune`) into a smaller model"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("compact", help=HELP, description=HELP)
    parser.add_argument("state", help="prune_state.pt written by `lwdvc prune`")
    parser.add_argument("--out", required=True, help="output path without extension (writes .json + .safetensors)")
    parser.add_argument("--round-to", type=int, default=None,
                        help="round kept channels up to multiples of this (default: the --round-to of the prune run)")
    parser.add_argument("--no-verify", action="store_true", help="skip the masked-vs-compacted check")
    return parser


def run(args: argparse.Namespace) -> int:
    from lwdvc.models.pretrained import save_compacted
    from lwdvc.train.prune_state import compact_prune_state

    codec, report = compact_prune_state(args.state, round_to=args.round_to, verify=not args.no_verify)
    paths = save_compacted(codec, args.out, description=f"compacted from {args.state} (round_to {report['round_to']})")
    print(f"decoder MACs {report['dense_macs'] / 1e6:.1f} M -> {report['macs'] / 1e6:.1f} M "
          f"({100 * report['mac_reduction']:.1f}% fewer); wrote {paths[0]} and {paths[1]}")
    return 0
