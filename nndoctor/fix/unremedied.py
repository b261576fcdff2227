"""Root causes no runtime remedy answers: what ``nndoctor fix`` says instead of re-running.

Labels that belong to other rows (a header line read as a data row into the labels only, a sort
or shuffle of one side), a model too small for the data, over-fitting with nothing to stop at:
nothing changed through hooks can realign or re-read a data set in general, so nothing is re-run.
The user gets, per finding, the edit to make, where it goes when the script shows it (``file:line``:
the finding's own call site, else, for a data or label finding, the line that reads the data from
a file, else the line that splits inputs and labels, else the one that pairs them; for a sample-mixing
reshape or a one-time-step readout, the model's line that does it: :mod:`nndoctor.fix.shape_sites`) and
the evidence the diagnosis measured.
"""

from __future__ import annotations

import re
from typing import Any

from nndoctor.fix.shape_sites import SHAPE_CODES, shape_line
from nndoctor.fix.source import Source

__all__ = ["describe_unremedied", "data_line"]

Finding = dict[str, Any]

#: lines that read a data set from a file (their parsing is where labels go astray)
_READS = re.compile(r"read_csv|read_table|loadtxt|genfromtxt|np\.load\(|fromfile|csv\.reader|json\.load|"
                    r"read_parquet|pickle\.load")
#: lines that split inputs and labels side by side (``X_train, y_train = X[idx], y[:n]``)
_SPLITS = re.compile(r"^\s*\w*(x|X|input|feature)\w*\s*,\s*\w*(y|Y|label|target)\w*\s*=[^=].*\[")
#: lines that pair inputs with their labels
_PAIRS = re.compile(r"TensorDataset\(|train_test_split\(|\bzip\(")
#: evidence keys that hold a ``file:line`` call site
_SITE_KEYS = ("site", "loss_site", "call_site", "defined_at")
_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+)$")


def data_line(src: Source) -> int | None:
    """The first line that reads data from a file, else the first that splits inputs and labels side
    by side, else the first that pairs them (a dataset, a split function)."""
    for rx in (_READS, _SPLITS, _PAIRS):
        for i, ln in enumerate(src.lines, start=1):
            if rx.search(ln) and not ln.lstrip().startswith("#"):
                return i
    return None


def _site(f: Finding, script: str | None) -> tuple[str | None, int | None]:
    ev = f.get("evidence") or {}
    for key in _SITE_KEYS:
        m = _LINE.match(str(ev.get(key) or ""))
        if m:
            return m.group("file"), int(m.group("line"))
    code = str(f.get("code", ""))
    if script and code in SHAPE_CODES:
        src = Source.load(script)
        line = shape_line(f, src) if src is not None else None
        return (script, line) if line is not None else (None, None)
    if script and code.split(".")[0] in ("labels", "data"):
        src = Source.load(script)
        line = data_line(src) if src is not None else None
        if line is not None:
            return script, line
    return None, None


def _evidence(f: Finding, limit: int = 6) -> str:
    ev = f.get("evidence") or {}
    items = [f"{k}={v}" for k, v in ev.items() if isinstance(v, (int, float, str, bool)) and len(str(v)) <= 60]
    return ", ".join(items[:limit])


def describe_unremedied(f: Finding, script: str | None) -> dict[str, Any]:
    """``code``, ``location``, ``edit`` (the catalogue's first fix), ``file``/``line``/``source_line``
    where the script shows where to make it, the finding's ``message`` and a short ``evidence``."""
    fixes = f.get("fixes") or []
    out: dict[str, Any] = {"code": f.get("code"), "location": f.get("location", ""),
                           "edit": fixes[0] if fixes else "see `nndoctor explain " + str(f.get("code")) + "`",
                           "file": None, "line": None, "source_line": None,
                           "message": f.get("message", ""), "evidence": _evidence(f)}
    try:
        file, line = _site(f, script)
    except Exception:  # noqa: BLE001 - an unreadable script: the edit without its place
        file, line = None, None
    if file and line:
        out["file"], out["line"] = file, line
        src = Source.load(file)
        if src is not None:
            out["source_line"] = src.line(line).strip()
    return out
