"""Export a Jupyter notebook's code cells to a script, unchanged but for IPython-only lines.

    python benchmarks/real_data/nb_export.py NOTEBOOK.ipynb OUT.py

Used by manifest entries whose public code is a notebook: the code cells are written in order;
a line that only IPython understands (``%magic``, ``!shell``, ``?help``) becomes ``pass`` with the
line kept as a comment, at the same indentation, so that the cell still parses. Nothing else is
changed: no cell is dropped, edited or reordered.
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


def export(notebook: Path) -> str:
    """The notebook's code cells, in order, as one script."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    parts = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        text = "".join(src) if isinstance(src, list) else src
        parts.append(f"# --- cell {i}\n" + "\n".join(_line(ln) for ln in text.splitlines()))
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
