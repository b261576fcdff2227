"""What every command's parser shares: the usage error, argparse value types and ``--fail-on``.

Imports nothing heavy (no torch, no rich): ``nndoctor --help`` and the output-path checks of
:mod:`nndoctor.report.output` use it.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["SEPARATOR", "Parser", "UsageError", "add_fail_on", "fail_on_exit", "nonneg_int", "positive_float",
           "positive_int", "rate"]

#: stands for a ``--`` of ``nndoctor run``'s command line while argparse parses it (argparse would
#: drop the ``--``); nndoctor.cli.run reads it back
SEPARATOR = "\x00--"


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are a :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _number(text: str, convert: Any, what: str) -> Any:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _at_least(text: str, value: float, low: float, strict: bool) -> None:
    if value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"expected a number {'>' if strict else '>='} {low:g}, got {text!r}")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (the message echoes the bad value)."""
    value = _number(text, int, "a whole number")
    _at_least(text, value, 1, strict=False)
    return int(value)


def nonneg_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    value = _number(text, int, "a whole number")
    _at_least(text, value, 0, strict=False)
    return int(value)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    _at_least(text, value, 0, strict=True)
    return float(value)


def rate(text: str) -> float:
    """argparse type: a fraction in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def add_fail_on(parser: argparse.ArgumentParser, text: str = "exit 1 on a finding this severe") -> None:
    """The ``--fail-on {error,warning,info}`` option (read by :func:`fail_on_exit`)."""
    parser.add_argument("--fail-on", choices=["error", "warning", "info"], help=text)


def fail_on_exit(report: Any, fail_on: str | None, code: int = 0) -> int:
    """The exit code: ``code`` (e.g. the script's own), or 1 when ``--fail-on`` finds something and
    ``code`` is 0."""
    from nndoctor.findings import Severity

    if fail_on and report.at_least(Severity.parse(fail_on)):
        return code if code != 0 else 1
    return code
