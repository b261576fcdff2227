"""A stand-in for pandas (not installed here), for scripts that import it only for data sets they do not use.

``DataFrame`` and ``Series`` exist (so that ``isinstance`` checks, as in scikit-learn, say no);
anything else raises, so a script that really reads data with pandas fails loudly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataFrame", "Series"]


class DataFrame:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError("pandas is a stub in benchmarks/real_data/vision_stubs")


class Series(DataFrame):
    pass


def __getattr__(name: str) -> Any:
    raise AttributeError(f"pandas stub has no {name!r}")
