"""De-duplication of findings: one per code and location, with a count."""

from __future__ import annotations

import dataclasses
from typing import Callable

from nndoctor.findings import Finding, Severity

__all__ = ["FindingSink"]


class FindingSink:
    """Keeps the first finding per ``(code, location)`` and counts repeats.

    ``on_new`` is called once per new key (live printing); at most ``max_locations``
    distinct locations are kept per code, further ones only add to the count of the first.
    """

    def __init__(self, on_new: Callable[[Finding], None] | None = None, max_locations: int = 8) -> None:
        self.on_new = on_new
        self.max_locations = max_locations
        self._items: dict[tuple[str, str], Finding] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._per_code: dict[str, list[tuple[str, str]]] = {}
        self.alarms = 0  # new warnings and errors (the sampling schedule stays dense while this grows)

    def add(self, finding: Finding) -> bool:
        """Record ``finding``; return True if it is new."""
        key = finding.key
        if key in self._items:
            self._counts[key] += 1
            return False
        keys = self._per_code.setdefault(finding.code, [])
        if len(keys) >= self.max_locations:
            self._counts[keys[0]] += 1
            return False
        keys.append(key)
        self._items[key] = finding
        self._counts[key] = 1
        if finding.severity is not Severity.INFO:
            self.alarms += 1
        if self.on_new is not None:
            self.on_new(finding)
        return True

    def findings(self) -> list[Finding]:
        return [dataclasses.replace(f, count=self._counts[k]) for k, f in self._items.items()]

    def __len__(self) -> int:
        return len(self._items)
