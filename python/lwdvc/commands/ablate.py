"""``lwdvc ablate``."""
from __future__ import annotations

HELP = "ablate (not available yet)"


def add_parser(subparsers):
    return subparsers.add_parser("ablate", help=HELP, description=HELP)


def run(args) -> int:
    raise NotImplementedError("lwdvc ablate is not available yet")
