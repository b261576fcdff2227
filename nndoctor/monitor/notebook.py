"""Sites in notebooks: a frame in a Jupyter cell is named like IPython names it, ``Cell In[3], line 5``.

IPython compiles each cell under a file name of its own (``/tmp/ipykernel_<pid>/<hash>.py`` in
Jupyter, ``<ipython-input-3-<hash>>`` in older IPython) and keeps the execution count of each
name (``compile.format_code_name``). :func:`code_site` uses that map, so a finding points at the
cell the user sees (``In [3]``) instead of a temporary file. Outside IPython it costs one
dictionary look-up per file name.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["cell_label", "code_site", "is_cell"]

_OLD_STYLE = re.compile(r"^<ipython-input-(\d+)-[0-9a-f]+>$")
_LABELS: dict[str, str | None] = {}  # file name -> "Cell In[3]" or None (cached: a cell's name never changes)


def _lookup(filename: str) -> str | None:
    m = _OLD_STYLE.match(filename)
    if m:
        return f"Cell In[{m.group(1)}]"
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
        named = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # another IPython version: fall back to the file name
        return None
    if not named:
        return None
    return f"{named[0]} {named[1]}"


def cell_label(filename: str) -> str | None:
    """``"Cell In[3]"`` for the file name of a notebook cell, else None."""
    try:
        return _LABELS[filename]
    except KeyError:
        pass
    label = _lookup(filename)
    if len(_LABELS) >= 4096:  # bounded, whatever makes up file names
        _LABELS.clear()
    _LABELS[filename] = label
    return label


def is_cell(filename: str) -> bool:
    """Whether ``filename`` names a notebook or IPython cell."""
    return cell_label(filename) is not None


def code_site(filename: str, lineno: int | None) -> str:
    """``train.py:41``, or ``Cell In[3], line 5`` in a notebook."""
    label = cell_label(filename)
    if label is not None:
        return f"{label}, line {lineno}"
    return f"{os.path.basename(filename)}:{lineno}"
