"""Run a user's training script unchanged, as ``__main__``, under an :class:`Observer`."""

from __future__ import annotations

import os
import runpy
import sys
import tokenize
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

from nndoctor.findings import Finding, Report
from nndoctor.monitor.observer import Observer, StopTraining
from nndoctor.monitor.sampling import Schedule
from nndoctor.signals import interrupt_exit_code, interrupt_name

__all__ = ["RunResult", "ScriptError", "check_script", "run_script"]


class ScriptError(Exception):
    """The script cannot be run at all (missing, unreadable, syntax error)."""


@dataclass
class RunResult:
    report: Report
    exit_code: int
    exception: BaseException | None
    traceback_text: str = ""


def _load(path: str) -> str:
    if not os.path.exists(path):
        raise ScriptError(f"script {path!r} does not exist: give the path of a Python training script")
    if os.path.isdir(path):
        raise ScriptError(f"{path!r} is a folder: give the path of a Python training script")
    try:
        # the way Python reads a script: a BOM or a coding cookie decides the encoding, else UTF-8
        with tokenize.open(path) as fh:
            source = fh.read()
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:  # SyntaxError: an unknown coding cookie
        raise ScriptError(f"cannot read script {path!r}: {exc}") from None
    try:
        compile(source, path, "exec")
    except SyntaxError as exc:
        raise ScriptError(
            f"{path}:{exc.lineno}: syntax error: {exc.msg}; fix the script, then run nndoctor again"
        ) from None
    return source


def check_script(path: str) -> None:
    """Raise :class:`ScriptError` (one line) if ``path`` is not a readable Python script."""
    _load(path)


def _user_traceback(exc: BaseException) -> str:
    """The traceback without nndoctor's and runpy's own frames."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tb = traceback.extract_tb(exc.__traceback__)
    keep = [f for f in tb if not f.filename.startswith(here) and "runpy" not in os.path.basename(f.filename)]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(keep)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def run_script(
    path: str,
    args: Sequence[str] = (),
    *,
    max_steps: int | None = None,
    schedule: Schedule | None = None,
    on_finding: Callable[[Finding], None] | None = None,
) -> RunResult:
    """Execute ``path`` as ``__main__`` with ``sys.argv = [path, *args]`` and observe it."""
    _load(path)
    path = os.path.abspath(path)
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(path))
    exit_code = 0
    exception: BaseException | None = None
    tb_text = ""
    observer = Observer(schedule=schedule, on_finding=on_finding, max_steps=max_steps)
    try:
        with observer:
            try:
                runpy.run_path(path, run_name="__main__")
            except StopTraining:
                observer.end_reason = "max-steps"
            except SystemExit as exc:
                code = exc.code
                exit_code = code if isinstance(code, int) else (0 if code is None else 1)
                if code is not None and not isinstance(code, int):
                    print(code, file=sys.stderr)
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under terminate_as_interrupt()
                observer.end_reason = "interrupted"
                exception, exit_code = exc, interrupt_exit_code(exc)
            except Exception as exc:  # the user's script crashed
                exception, exit_code = exc, 1
                tb_text = _user_traceback(exc)
                observer.on_crash(exc)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    report = observer.report()
    report.facts["script"] = path
    report.facts["exit_code"] = exit_code
    if isinstance(exception, KeyboardInterrupt):
        report.facts["signal"] = interrupt_name(exception)
    return RunResult(report=report, exit_code=exit_code, exception=exception, traceback_text=tb_text)
