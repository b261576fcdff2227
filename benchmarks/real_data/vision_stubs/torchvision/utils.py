"""``save_image`` writes nothing; ``make_grid`` lays a batch side by side (only looked at, never trained on)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["save_image", "make_grid"]


def save_image(tensor: Any, fp: Any = None, **kwargs: Any) -> None:
    return None


def make_grid(tensor: Any, **kwargs: Any) -> torch.Tensor:
    """A batch (B, C, H, W) as one image (C, H, B * W), as torchvision's grid of one row (no padding)."""
    t = torch.stack(list(tensor)) if isinstance(tensor, (list, tuple)) else torch.as_tensor(tensor)
    if t.dim() == 3:
        return t
    return torch.cat(list(t), dim=-1)
