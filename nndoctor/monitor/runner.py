"""Run a user's training script unchanged, as ``__main__``, under an :class:`Observer`."""

from __future__ import annotations

import logging
import os
import runpy
import sys
import threading
import tokenize
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NoReturn, Sequence

from nndoctor.findings import Finding, Report
from nndoctor.monitor.observer import Observer, StopTraining
from nndoctor.monitor.sampling import Schedule
from nndoctor.signals import interrupt_exit_code, interrupt_name

logger = logging.getLogger("nndoctor")

__all__ = ["RunResult", "ScriptError", "check_script", "exit_now", "run_script"]


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


_REAL_EXIT = os._exit


def exit_now(code: int) -> NoReturn:
    """End the process at once, past the guard of a running script: nndoctor's own hard exits (a
    re-run stopped as a repeat of the diagnosis) must not write the script's report."""
    _REAL_EXIT(code)


@contextmanager
def _hard_exit_guard(on_exit: Callable[[int], int] | None) -> Iterator[None]:
    """While the script runs, ``os._exit(code)`` in this process first calls ``on_exit(code)``.

    ``os._exit`` ends the process at once (no ``finally``, no ``atexit``): without this a script that
    ends with it (to skip slow interpreter teardown, or after forking workers) would lose its report.
    The script's own behaviour is unchanged: nothing is raised into it and no ``finally`` of its runs;
    ``on_exit`` (the report) runs once, then the real ``os._exit`` with the code it returns. Forked
    children (DataLoader workers, multiprocessing) exit as before: the guard acts in this process only.
    """
    if on_exit is None:
        yield
        return
    real_exit = _REAL_EXIT
    pid = os.getpid()
    once = threading.Lock()

    def guarded_exit(code: int) -> Any:
        if os.getpid() != pid or not once.acquire(blocking=False):
            real_exit(code)
        final = code
        try:
            final = on_exit(code)
        except BaseException as exc:  # a bug of ours must not keep the process alive or change its code
            logger.warning("nndoctor could not write its report before os._exit(%s) (%s: %s)", code,
                           type(exc).__name__, exc)
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # a closed or replaced stream
                    pass
            real_exit(final)

    os._exit = guarded_exit
    try:
        yield
    finally:
        os._exit = _REAL_EXIT


def _result(observer: Observer, path: str, exit_code: int, exception: BaseException | None,
            tb_text: str) -> RunResult:
    report = observer.report()
    report.facts["script"] = path
    report.facts["exit_code"] = exit_code
    if isinstance(exception, KeyboardInterrupt):
        report.facts["signal"] = interrupt_name(exception)
    return RunResult(report=report, exit_code=exit_code, exception=exception, traceback_text=tb_text)


def run_script(
    path: str,
    args: Sequence[str] = (),
    *,
    max_steps: int | None = None,
    schedule: Schedule | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    on_hard_exit: Callable[[RunResult], int] | None = None,
) -> RunResult:
    """Execute ``path`` as ``__main__`` with ``sys.argv = [path, *args]`` and observe it.

    ``on_hard_exit``: called with the run's result if the script ends the process with ``os._exit``
    (the process then exits with the code it returns); without it such a script's report is lost.
    """
    _load(path)
    path = os.path.abspath(path)
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(path))
    exit_code = 0
    exception: BaseException | None = None
    tb_text = ""
    observer = Observer(schedule=schedule, on_finding=on_finding, max_steps=max_steps)

    def hard_exit(code: int) -> int:
        observer.__exit__(None, None, None)
        sys.argv, sys.path[:] = saved_argv, saved_path
        assert on_hard_exit is not None
        return on_hard_exit(_result(observer, path, code, None, ""))

    try:
        with observer, _hard_exit_guard(hard_exit if on_hard_exit is not None else None):
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
    return _result(observer, path, exit_code, exception, tb_text)
