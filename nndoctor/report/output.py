"""Output files of every command: checked before any work starts, written safely at the end.

:func:`check_outputs` is called right after the command line is parsed: a path that cannot
be written (a folder, ``/proc/...``, a read-only place) is one usage line and exit code 2
before training starts, not a traceback after it. :func:`write_outputs` writes each output
at the end; if one still fails (a full disk), it says so in one line, writes the others and
leaves the command's exit code alone. Files are written atomically (a temporary file beside
the target, then a rename), and ``-`` means standard output where an option accepts it.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

__all__ = ["check_output_path", "check_outputs", "write_outputs", "write_text"]

#: (option, path or None, a function making the text) for :func:`write_outputs`
Output = tuple[str, "str | None", Callable[[], str]]


def _usage(message: str) -> Exception:
    from nndoctor.cli import UsageError

    return UsageError(message)


def _nearest_existing(folder: str) -> str:
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def _probe(folder: str) -> None:
    """Create and remove a file in ``folder``: the only test that also holds for root and /proc."""
    probe = os.path.join(folder, f".nndoctor-write-check-{os.getpid()}")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(probe)


def check_output_path(path: str | None, option: str, *, allow_stdout: bool = False) -> None:
    """Raise a one-line usage error unless ``path`` can be written (``None``: nothing to check)."""
    if path is None:
        return
    if path == "-":
        if allow_stdout:
            return
        raise _usage(f"{option} -: standard output is not accepted here; give a file path")
    if not path.strip():
        raise _usage(f"{option}: empty path; give a file path")
    full = os.path.abspath(path)
    if os.path.isdir(full) or path.endswith(("/", os.sep)):
        raise _usage(f"{option} {path}: is a folder; give a file path such as "
                     f"{os.path.join(path, 'report' + ('.html' if 'html' in option else '.json'))}")
    if os.path.exists(full) and not os.path.isfile(full):  # /dev/null, a named pipe: written in place
        if not os.access(full, os.W_OK):
            raise _usage(f"{option} {path}: not writable")
        return
    anchor = _nearest_existing(os.path.dirname(full))
    if not os.path.isdir(anchor):
        raise _usage(f"{option} {path}: {anchor} is a file, not a folder")
    try:
        _probe(anchor)
    except OSError as exc:
        raise _usage(f"{option} {path}: cannot create a file in {anchor} ({exc.strerror or exc})") from None
    if os.path.isfile(full) and not os.access(full, os.W_OK):
        raise _usage(f"{option} {path}: the file exists and is read-only")


def check_outputs(paths: Mapping[str, str | None], *, stdout_ok: Sequence[str] = ("--json",)) -> None:
    """Check every ``{option: path}`` and that no two options name the same file."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        check_output_path(path, option, allow_stdout=option in stdout_ok)
        if path is None:
            continue
        key = path if path == "-" else os.path.realpath(path)
        if key in seen:
            raise _usage(f"{seen[key]} and {option} both name {path}; give them different files")
        seen[key] = option


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (``-``: standard output) through a temporary file and a rename."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    full = os.path.abspath(path)
    if os.path.exists(full) and not os.path.isfile(full) and not os.path.isdir(full):
        with open(full, "w", encoding="utf-8") as fh:  # a device or pipe: no rename possible
            fh.write(text)
        return
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = f"{full}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, full)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_outputs(outputs: Sequence[Output], say: Callable[[str], None] | None = None) -> list[str]:
    """Write each output; a failure is one line (``say``, default stderr) and the rest still go.

    Returns the options whose output could not be written.
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    failed: list[str] = []
    for option, path, make_text in outputs:
        if path is None:
            continue
        try:
            write_text(path, make_text())
        except OSError as exc:
            failed.append(option)
            say(f"nndoctor: error: could not write {option} {path}: {exc.strerror or exc}")
        except Exception as exc:  # a bug in a renderer must not hide the other outputs
            failed.append(option)
            say(f"nndoctor: error: could not write {option} {path}: internal error "
                f"{type(exc).__name__}: {exc}")
    return failed
