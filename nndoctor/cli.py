"""The ``nndoctor`` command line.

Each command lives with its field-guide step and exposes ``register(subparsers)``;
this module only assembles them and turns bad input into one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from typing import Sequence

from nndoctor import __version__

__all__ = ["COMMAND_MODULES", "SEPARATOR", "UsageError", "main", "nonneg_int", "positive_float", "positive_int",
           "rate"]

#: modules that each add one or more sub-commands through ``register(subparsers)``
COMMAND_MODULES = [
    "nndoctor.monitor.cli",
    "nndoctor.evaluate.cli",
    "nndoctor.guided_cli",
    "nndoctor.tune.cli",
    "nndoctor.diagnose",
    "nndoctor.fix.cli",
    "nndoctor.distributed.cli",
]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


#: stands for a ``--`` of ``nndoctor run``'s command line while argparse parses it (argparse would
#: drop the ``--``); nndoctor.monitor.cli reads it back
SEPARATOR = "\x00--"


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (the message echoes the bad value)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def rate(text: str) -> float:
    """argparse type: a fraction in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


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


def _protect_separators(argv: list[str]) -> list[str]:
    """Hide ``run``'s ``--`` from argparse, which would drop it wherever it stands."""
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is None or argv[command] != "run":
        return argv
    return argv[:command + 1] + [SEPARATOR if a == "--" else a for a in argv[command + 1:]]


def main(argv: Sequence[str] | None = None) -> int:
    from nndoctor.signals import interrupt_exit_code, interrupt_name

    argv = _protect_separators(list(sys.argv[1:] if argv is None else argv))
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
        print(f"nndoctor: error: {str(exc).replace(SEPARATOR, '--')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"nndoctor: interrupted ({interrupt_name(exc)})", file=sys.stderr)
        return interrupt_exit_code(exc)
