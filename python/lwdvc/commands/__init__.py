"""Subcommands of the ``lwdvc`` command line; each module offers ``add_parser(subparsers)`` and
``run(args) -> int``."""

COMMANDS = ("train", "eval", "prune", "compact", "demo", "ablate", "bench", "encode", "decode", "probe")
