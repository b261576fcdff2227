"""A stand-in for ``imageio`` (not installed here): imported at module level by scripts that only use it
to read image data sets or write GIFs that the benchmark does not need. Writing does nothing; reading
raises, so that a script that needs real images fails plainly rather than training on nothing."""

from __future__ import annotations

from typing import Any

__all__ = ["imread", "imwrite", "mimsave", "mimwrite", "get_writer"]


def imread(*args: Any, **kwargs: Any) -> Any:
    raise OSError("imageio stand-in: no image files are read in the real-scripts benchmark")


def imwrite(*args: Any, **kwargs: Any) -> None:
    return None


mimsave = mimwrite = imwrite


class _Writer:
    def append_data(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def get_writer(*args: Any, **kwargs: Any) -> _Writer:
    return _Writer()
