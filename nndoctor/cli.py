"""The ``nndoctor`` command line.

Each command lives with its field-guide step and exposes ``register(subparsers)``;
this module only assembles them and turns bad input into one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from nndoctor import __version__

__all__ = ["COMMAND_MODULES", "UsageError", "main"]

#: modules that each add one or more sub-commands through ``register(subparsers)``
COMMAND_MODULES = [
    "nndoctor.monitor.cli",
    "nndoctor.evaluate.cli",
    "nndoctor.guided_cli",
    "nndoctor.tune.cli",
    "nndoctor.diagnose",
    "nndoctor.fix.cli",
]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nndoctor",
        description="Find out why a PyTorch model trains badly, and what to do next.",
    )
    parser.add_argument("--version", action="version", version=f"nndoctor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log nndoctor's internals")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        if ns.verbose:
            logging.basicConfig(level=logging.DEBUG, format="nndoctor: %(message)s")
        if not getattr(ns, "command", None) or not hasattr(ns, "func"):
            parser.print_help(sys.stderr)
            return 2
        return int(ns.func(ns) or 0)
    except UsageError as exc:
        print(f"nndoctor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nndoctor: interrupted", file=sys.stderr)
        return 130
