"""``save_image`` writes nothing; ``make_grid`` returns the batch (only looked at, never trained on)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["save_image", "make_grid"]


def save_image(tensor: Any, fp: Any = None, **kwargs: Any) -> None:
    return None


def make_grid(tensor: Any, **kwargs: Any) -> torch.Tensor:
    return torch.as_tensor(tensor) if not isinstance(tensor, list) else torch.stack(tensor)
