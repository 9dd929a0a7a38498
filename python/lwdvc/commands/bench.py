"""``lwdvc bench``: P-frame decoder MACs, parameters and latency of codecs at one frame size."""
from __future__ import annotations

import argparse

from lwdvc.commands.common import DEFAULT_MODEL, load_codec

HELP = "measure P-frame decoder MACs, parameters and latency (median of N runs)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("bench", help=HELP, description=HELP)
    parser.add_argument("models", nargs="*", default=[DEFAULT_MODEL], help="codecs (first = reference)")
    parser.add_argument("--height", type=int, default=256, help="padded frame height (multiple of 64)")
    parser.add_argument("--width", type=int, default=448, help="padded frame width (multiple of 64)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs (median reported)")
    return parser


def run(args: argparse.Namespace) -> int:
    from lwdvc.eval import decoder_cost

    rows = []
    for spec in args.models:
        cost = decoder_cost(load_codec(spec).inter, args.height, args.width, repeats=args.repeats)
        rows.append((spec, cost))
    base = rows[0][1]
    print(f"P-frame decoder at {args.width}x{args.height}, median of {args.repeats} runs, "
          f"{base['latency']['threads']} threads")
    print("| model | MACs (G) | MAC reduction | parameters | latency (ms) | speed-up |")
    print("|---|---|---|---|---|---|")
    for spec, cost in rows:
        print(f"| {spec} | {cost['macs'] / 1e9:.3f} | {100 * (1 - cost['macs'] / base['macs']):.1f}% | "
              f"{cost['parameters']:,} | {cost['latency']['median_ms']:.1f} | "
              f"{base['latency']['median_ms'] / cost['latency']['median_ms']:.2f} |")
    return 0
