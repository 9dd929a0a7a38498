"""The ``lwdvc`` command line: ``lwdvc {train,eval,prune,compact,demo,ablate,bench} ...``.

``main(argv)`` returns the exit status, so tests call it in-process. Errors a user can cause
(:class:`lwdvc.errors.UserError`: bad options, unreadable videos, bad sizes, checkpoints of another
codec, diverged training; and missing or unreadable paths) are printed as one line on stderr with
exit status 2, without a traceback. Any other exception is a bug and propagates with its
traceback. ``lwdvc --debug ...`` re-raises user errors too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from lwdvc.commands import COMMANDS
from lwdvc.errors import UserError

__all__ = ["main", "build_parser", "USER_ERRORS"]

#: What the command reports in one line: the project's user errors and paths that are missing or
#: cannot be read.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError, PermissionError,
                                               IsADirectoryError, NotADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwdvc", description="Prune learnt video decoders (gradient decay + layer-wise "
                                  "distillation) and compact them into smaller, faster decoders.")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of every error, also of errors in the input")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"lwdvc.commands.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(run=module.run)
    return parser


def _message(error: BaseException) -> str:
    """The error's message on one line (a file error's text names the path)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    In a fresh process (torch not imported yet) it first asks torch's CPU allocator for
    transparent huge pages on tensors of >= 2 MiB (``THP_MEM_ALLOC_ENABLE=1`` unless set):
    decoding latency then falls by 20-40% and stops varying from process to process
    (docs/results/compact.md). Set ``THP_MEM_ALLOC_ENABLE=0`` to opt out.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return int(exit_.code or 0)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"lwdvc {args.command}: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lwdvc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
