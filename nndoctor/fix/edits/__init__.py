"""The edit that makes a verified remedy permanent, at file:line in the user's script.

Each remedy kind has a locator: the finding's call site (``evidence.site``: the loss call), the
optimizer's construction (the one assigned to the finding's optimizer name, else the only
one), the module's definition (the only ``nn.Softmax(...)``), the ``loss.backward()``
statement, the DataLoader. When the location is found and a conservative textual transform
applies (a keyword value replaced, ``nn.Softmax(dim=1)`` -> ``nn.Identity()``, one line
inserted before ``loss.backward()``), the edit is a unified diff; when only the line is
known, it is that line with the instruction; otherwise the instruction alone (no diff).

One module per remedy family (:mod:`.loss`, :mod:`.optim`, :mod:`.model`, :mod:`.data`), each
with its ``TRANSFORMS`` (remedy name -> transform); :mod:`.common` holds the shared locators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from nndoctor.fix.edits import data, loss, model, optim, site
from nndoctor.fix.edits.common import Finding, ev
from nndoctor.fix.source import Patch, Source

__all__ = ["TRANSFORMS", "SourceEdit", "source_edit"]

#: remedy name -> transform(finding, source, patch) -> whether it patched
TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    **loss.TRANSFORMS, **optim.TRANSFORMS, **model.TRANSFORMS, **data.TRANSFORMS, **site.TRANSFORMS}


@dataclass(frozen=True)
class SourceEdit:
    instruction: str
    file: str | None = None
    line: int | None = None
    diff: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "diff": self.diff, "instruction": self.instruction}

    def text(self) -> str:
        """One line for the terminal: where, and what (the diff is shown apart)."""
        where = f"{self.file}:{self.line}: " if self.file and self.line else ""
        return where + self.instruction


def _first_line(src: Source, pattern: str) -> int | None:
    rx = re.compile(pattern)
    return next((i for i, ln in enumerate(src.lines, start=1) if rx.search(ln) and not ln.lstrip().startswith("#")),
                None)


#: remedy -> the line to show when no diff applies (the custom init, the freezing, the scheduler)
_LOCATORS: dict[str, Callable[[Source], int | None]] = {
    "reinitialise": lambda src: _first_line(src, r"nn\.init\.(constant|zeros|ones|normal|uniform|trunc_normal)_"
                                                 r"|\.weight\.(data\.)?(fill_|zero_|normal_|uniform_)"),
    "unfreeze": lambda src: _first_line(src, r"requires_grad\s*=\s*False|requires_grad_\(False\)"),
    "schedule-per-epoch": lambda src: _first_line(src, r"\b\w*sched\w*\.step\("),
}


def source_edit(items: list[tuple[str, Finding]], instruction: str, script: str | None) -> SourceEdit:
    """The edit for each ``(remedy, finding)`` in ``script``, as one diff where the locations
    are known and a safe transform applies, else the located line and the instruction, else
    the instruction alone. Never raises (a parse failure is 'location unknown')."""
    src = Source.load(script) if script else None
    if src is None or not items:
        return SourceEdit(instruction)
    patch = Patch(src)
    for remedy, finding in items:
        transform = TRANSFORMS.get(remedy)
        try:
            if transform is not None:
                transform(finding, src, patch)
        except Exception:  # noqa: BLE001 - an edit that cannot be made is shown as the instruction
            continue
    try:
        diff = patch.diff()
    except Exception:  # noqa: BLE001
        diff = None
    if diff:
        return SourceEdit(instruction, src.path, patch.first_line, diff)
    at = src.site_line(ev(items[0][1]).get("site"))
    locate = _LOCATORS.get(items[0][0])
    if at is None and locate is not None:
        at = locate(src)
    if at is not None:
        return SourceEdit(f"{instruction} (the line: `{src.line(at).strip()}`)", src.path, at)
    return SourceEdit(instruction)
