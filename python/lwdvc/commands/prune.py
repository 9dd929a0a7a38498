"""``lwdvc prune``."""
from __future__ import annotations

HELP = "prune (not available yet)"


def add_parser(subparsers):
    return subparsers.add_parser("prune", help=HELP, description=HELP)


def run(args) -> int:
    raise NotImplementedError("lwdvc prune is not available yet")
