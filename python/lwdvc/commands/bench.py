"""``lwdvc bench``."""
from __future__ import annotations

HELP = "bench (not available yet)"


def add_parser(subparsers):
    return subparsers.add_parser("bench", help=HELP, description=HELP)


def run(args) -> int:
    raise NotImplementedError("lwdvc bench is not available yet")
