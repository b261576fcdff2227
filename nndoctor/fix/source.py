"""The user's script as text and syntax tree, and a small patch of it rendered as a unified diff.

:mod:`nndoctor.fix.edits` finds the line a remedy's edit belongs to (a finding's call site, an
optimizer's construction, a module's definition) and describes the edit here: a call or
argument replaced in place, a line inserted or deleted. Columns come from :mod:`ast` (UTF-8
byte offsets); only spans on one line are replaced, so an edit never reflows the user's code.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from dataclasses import dataclass, field

__all__ = ["Patch", "Source", "dotted", "indent_of"]


def dotted(node: ast.AST) -> str:
    """``torch.nn.Softmax`` for a Name/Attribute chain; ``?.softmax`` when the chain starts with
    an expression (``model(x).softmax``); "" for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif parts:
        parts.append("?")
    return ".".join(reversed(parts))


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


@dataclass
class Source:
    """One Python file: its path, its lines (without newline) and its syntax tree."""

    path: str
    lines: list[str]
    tree: ast.Module

    @classmethod
    def load(cls, path: str) -> Source | None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            return cls(path, text.splitlines(), ast.parse(text))
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            return None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def line(self, lineno: int) -> str:
        return self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment("\n".join(self.lines), node) or ""

    def calls(self, *names: str) -> list[ast.Call]:
        """Calls whose callee's last name is one of ``names`` (``nn.Softmax``, ``F.softmax``,
        ``x.softmax`` all end in their name), in source order."""
        found = [n for n in ast.walk(self.tree) if isinstance(n, ast.Call) and dotted(n.func).split(".")[-1] in names]
        return sorted(found, key=lambda n: (n.lineno, n.col_offset))

    def site_line(self, site: object) -> int | None:
        """The line of a ``file.py:LINE`` site that names this file."""
        m = re.fullmatch(r"(.+?):(\d+)", str(site or "").strip())
        if not m or os.path.basename(m.group(1)) != self.name:
            return None
        n = int(m.group(2))
        return n if 0 < n <= len(self.lines) else None

    def assigned_name(self, call: ast.Call) -> str:
        """The name a call's result is assigned to (``opt`` in ``opt = SGD(...)``, ``self.opt`` ->
        ``opt``), or ""."""
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is call:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                return dotted(targets[0]).split(".")[-1] if targets else ""
        return ""

    def parents(self) -> dict[ast.AST, ast.AST]:
        return {child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)}


@dataclass
class Patch:
    """Edits of a :class:`Source`, one line at a time, rendered as a unified diff."""

    source: Source
    spans: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)  # line -> (col0, col1, text)
    before: dict[int, list[str]] = field(default_factory=dict)
    after: dict[int, list[str]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)

    def replace(self, node: ast.AST, text: str) -> bool:
        """Replace ``node``'s source by ``text``; False (nothing done) when it spans lines."""
        lineno, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        col0, col1 = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if lineno is None or lineno != end or col0 is None or col1 is None:
            return False
        spans = self.spans.setdefault(lineno, [])
        if not any(c0 == col0 and c1 == col1 for c0, c1, _ in spans):  # the same node edited once
            spans.append((col0, col1, text))
        return True

    def insert_at(self, lineno: int, col: int, text: str) -> None:
        spans = self.spans.setdefault(lineno, [])
        if (col, col, text) not in spans:
            spans.append((col, col, text))

    def insert_before(self, lineno: int, text: str) -> None:
        if text not in self.before.setdefault(lineno, []):
            self.before[lineno].append(text)

    def insert_after(self, lineno: int, text: str) -> None:
        if text not in self.after.setdefault(lineno, []):
            self.after[lineno].append(text)

    def delete(self, lineno: int) -> None:
        self.deleted.add(lineno)

    @property
    def first_line(self) -> int | None:
        touched = set(self.spans) | set(self.before) | set(self.after) | self.deleted
        return min(touched) if touched else None

    def new_lines(self) -> list[str]:
        out: list[str] = []
        for i, line in enumerate(self.source.lines, start=1):
            out.extend(self.before.get(i, []))
            if i not in self.deleted:
                raw = line.encode("utf-8")
                for col0, col1, text in sorted(self.spans.get(i, []), reverse=True):
                    raw = raw[:col0] + text.encode("utf-8") + raw[col1:]
                out.append(raw.decode("utf-8", errors="replace"))
            out.extend(self.after.get(i, []))
        return out

    def diff(self) -> str | None:
        """The unified diff (``a/NAME``, ``b/NAME``, one line of context), None when nothing changes."""
        new = self.new_lines()
        if new == self.source.lines:
            return None
        return "\n".join(difflib.unified_diff(self.source.lines, new, f"a/{self.source.name}",
                                              f"b/{self.source.name}", n=1, lineterm=""))
