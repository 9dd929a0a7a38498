"""``lwdvc compact``."""
from __future__ import annotations

HELP = "compact (not available yet)"


def add_parser(subparsers):
    return subparsers.add_parser("compact", help=HELP, description=HELP)


def run(args) -> int:
    raise NotImplementedError("lwdvc compact is not available yet")
