"""A stand-in for ``requests`` (not installed here): scripts that import it to download data they
find already prepared (``setup`` made it) never call it; any call fails loudly, nothing is fetched."""

from __future__ import annotations

from typing import Any

__all__ = ["get"]


def get(url: str, *args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(f"the benchmark downloads nothing: {url}")
