"""Known results on built-in reference tasks, so users can compare (field guide, step 2c).

The table lives in ``known_results.json`` beside this module and is MEASURED, not copied:
``benchmarks/known_results.py`` regenerates it (fixed split, 3 seeds, the same models
``nndoctor baseline`` trains). :func:`matching` picks the rows of the reference task that
looks like the user's data (same input shape and number of classes).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Any

__all__ = ["known_results", "matching"]

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_results.json")


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    try:
        with open(_PATH, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"rows": []}


def known_results(task: str | None = None) -> list[dict[str, Any]]:
    """All rows, or the rows whose task name contains ``task``."""
    rows = list(_table().get("rows", []))
    if task:
        rows = [r for r in rows if task.lower() in r["task"].lower()]
    return rows


def matching(input_shape: tuple[int, ...], classes: int | None) -> list[dict[str, Any]]:
    """Rows of the reference task with this per-example input shape and class count (None: regression)."""
    features = 1
    for s in input_shape:
        features *= int(s)
    images = len(input_shape) >= 2
    out = []
    for row in known_results():
        m = re.search(r"\((?:(\d+)x(\d+) images|(\d+) features), (?:(\d+) classes|regression)\)", row["task"])
        if not m:
            continue
        row_images = m.group(1) is not None
        row_features = int(m.group(1)) * int(m.group(2)) if row_images else int(m.group(3))
        row_classes = int(m.group(4)) if m.group(4) else None
        if row_features == features and row_classes == classes and row_images == images:
            out.append(row)
    return out
