"""Export a Jupyter notebook's code cells to a script, unchanged but for IPython-only lines.

    python benchmarks/real_data/nb_export.py NOTEBOOK.ipynb OUT.py

Used by manifest entries whose public code is a notebook: the code cells are written in order;
a line that only IPython understands (``%magic``, ``!shell``, ``?help``) becomes ``pass`` with the
line kept as a comment, at the same indentation, so that the cell still parses. Nothing else is
changed: no cell is dropped, edited or reordered. A line inside an open bracket, a string over several
lines or after a backslash continues a statement and is kept as it is (``%(a, b)`` there is Python's
``%`` operator, not a magic).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["export", "main"]


def _line(line: str) -> str:
    body = line.lstrip()
    if body.startswith(("%", "!")) or (body.endswith("?") and body[:-1].isidentifier()):
        indent = line[: len(line) - len(body)]
        return f"{indent}pass  # IPython: {body}"
    return line


def _scan(line: str, depth: int, quote: str) -> tuple[int, str, bool]:
    """Bracket depth and open string (``quote``) after ``line``, and whether it ends in a backslash."""
    i = 0
    while i < len(line):
        if quote:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
            i += 1
            continue
        c = line[i]
        if c == "#":
            break
        if c in "'\"":
            quote = c * 3 if line.startswith(c * 3, i) else c
            i += len(quote)
            continue
        depth += (c in "([{") - (c in ")]}")
        i += 1
    if len(quote) == 1:  # a one-line string cannot stay open
        quote = ""
    return max(depth, 0), quote, line.rstrip().endswith("\\") and not quote


def _cell(text: str) -> str:
    out, depth, quote, cont = [], 0, "", False
    for ln in text.splitlines():
        out.append(ln if (depth or quote or cont) else _line(ln))
        depth, quote, cont = _scan(ln, depth, quote)
    return "\n".join(out)


def export(notebook: Path) -> str:
    """The notebook's code cells, in order, as one script."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    parts = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        text = "".join(src) if isinstance(src, list) else src
        parts.append(f"# --- cell {i}\n" + _cell(text))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    Path(args[1]).write_text(export(Path(args[0])), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
