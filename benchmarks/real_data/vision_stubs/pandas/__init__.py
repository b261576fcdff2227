"""A stand-in for pandas (not installed here), for scripts that import it only for data sets they do not use.

``DataFrame`` and ``Series`` exist (so that ``isinstance`` checks, as in scikit-learn, say no);
anything else raises, so a script that really reads data with pandas fails loudly. One exception:
``DataFrame.from_dict`` of a script's own numbers, which the real scripts only plot (timbmg's VAE plots
its latent codes with seaborn), gives the matplotlib stand-in's ``Anything``: it draws nothing, and it
cannot be trained on (torch refuses it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataFrame", "Series"]


class DataFrame:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError("pandas is a stub in benchmarks/real_data/vision_stubs")

    @classmethod
    def from_dict(cls, *args: Any, **kwargs: Any) -> Any:
        from matplotlib import Anything  # the do-nothing plot stand-in of benchmarks/real_data/stubs

        return Anything()


class Series(DataFrame):
    pass


def __getattr__(name: str) -> Any:
    raise AttributeError(f"pandas stub has no {name!r}")
