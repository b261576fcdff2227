"""A stand-in for h5py (not installed here), for scripts that import it only for data sets they do not use."""

from __future__ import annotations

from typing import Any

__all__ = ["File"]


class File:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError("h5py is a stub in benchmarks/real_data/vision_stubs")
