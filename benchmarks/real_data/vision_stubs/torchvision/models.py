"""No models here: names other packages import at their own import time (torchmetrics' image metrics
import ``resnet50`` / ``vgg16``) resolve to a stand-in that refuses to be called."""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"torchvision.models.{name} is not available in the benchmark's torchvision stand-in")

    unavailable.__name__ = name
    return unavailable
