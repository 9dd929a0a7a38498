"""``lwdvc eval``."""
from __future__ import annotations

HELP = "eval (not available yet)"


def add_parser(subparsers):
    return subparsers.add_parser("eval", help=HELP, description=HELP)


def run(args) -> int:
    raise NotImplementedError("lwdvc eval is not available yet")
