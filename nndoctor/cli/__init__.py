"""The ``nndoctor`` command line: one module per command in this package.

Each module of :data:`COMMAND_MODULES` exposes ``register(subparsers)`` that adds its sub-command
(``p.set_defaults(func=...)``); this module only assembles them and turns bad input
(:class:`UsageError`) into one clear line and exit code 2. To add a command, write
``nndoctor/cli/<name>.py`` with ``register`` and add it to :data:`COMMAND_MODULES` (the order is
the order of ``nndoctor --help``). Shared helpers: :mod:`nndoctor.cli.options` (argparse types,
``--fail-on``) and :mod:`nndoctor.cli.common` (experiment loading, JSON, progress, numbers).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from nndoctor import __version__
from nndoctor.cli.options import SEPARATOR, Parser, UsageError, nonneg_int, positive_float, positive_int, rate

__all__ = ["COMMAND_MODULES", "SEPARATOR", "UsageError", "build_parser", "main", "nonneg_int", "positive_float",
           "positive_int", "rate"]

#: modules that each add one sub-command through ``register(subparsers)``, in ``--help`` order
COMMAND_MODULES = [
    "nndoctor.cli.run",
    "nndoctor.cli.evaluate",
    "nndoctor.cli.data",
    "nndoctor.cli.start",
    "nndoctor.cli.overfit",
    "nndoctor.cli.baseline",
    "nndoctor.cli.lr_find",
    "nndoctor.cli.tune",
    "nndoctor.cli.diagnose",
    "nndoctor.cli.fix",
    "nndoctor.cli.merge",
    "nndoctor.cli.explain",
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone when it names one (a run then does not
    import the modules of the other commands: report, fix, evaluate, tune...)."""
    parser = Parser(
        prog="nndoctor",
        description="Find out why a PyTorch model trains badly, and what to do next.",
    )
    parser.add_argument("--version", action="version", version=f"nndoctor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log nndoctor's internals")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    only = f"nndoctor.cli.{command.replace('-', '_')}" if command else None
    for name in [only] if only in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command named by ``argv`` when only ``--verbose`` stands before it (``--help`` or
    ``--version`` first need every command)."""
    for arg in argv:
        if arg not in ("-v", "--verbose"):
            return None if arg.startswith("-") else arg
    return None


def _protect_separators(argv: list[str]) -> list[str]:
    """Hide ``run``'s and ``fix``'s ``--`` from argparse, which would drop it wherever it stands."""
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is None or argv[command] not in ("run", "fix"):
        return argv
    return argv[:command + 1] + [SEPARATOR if a == "--" else a for a in argv[command + 1:]]


def main(argv: Sequence[str] | None = None) -> int:
    from nndoctor.signals import interrupt_exit_code, interrupt_name

    argv = _protect_separators(list(sys.argv[1:] if argv is None else argv))
    try:
        parser = build_parser(_command(argv))
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
