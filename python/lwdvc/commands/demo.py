"""``lwdvc demo``."""
from __future__ import annotations

HELP = "demo (not available yet)"


def add_parser(subparsers):
    return subparsers.add_parser("demo", help=HELP, description=HELP)


def run(args) -> int:
    raise NotImplementedError("lwdvc demo is not available yet")
