"""improve step of the field guide."""

from __future__ import annotations

__all__: list[str] = []
