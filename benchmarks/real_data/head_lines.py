"""Cut a text file shipped in a repository to its first lines: ``python head_lines.py SRC DST N [SKIP]``.

For data sets whose training split is missing from the snapshot (files of 4 MiB and more are
not kept) or too large for a short CPU run: the split is made from the repository's own text.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    src, dst, n = args[0], args[1], int(args[2])
    skip = int(args[3]) if len(args) > 3 else 0
    with open(src, encoding="utf-8") as fh:
        lines = fh.readlines()
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(dst, "w", encoding="utf-8") as fh:
        fh.writelines(lines[skip:skip + n])


if __name__ == "__main__":
    main()
