"""Transforms on uint8 image tensors (H, W) or (H, W, C), where torchvision takes PIL images."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["Compose", "ToTensor", "Normalize", "Lambda", "Resize", "CenterCrop", "RandomHorizontalFlip", "Pad", "RandomCrop"]


class Compose:
    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x


class ToTensor:
    def __call__(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor) and hasattr(img, "mode") and hasattr(img, "size"):
            import numpy as np  # a PIL image (a script that makes one itself, e.g. Image.fromarray)

            img = np.asarray(img)
        t = torch.as_tensor(img)
        if t.dim() == 2:
            t = t[None]
        elif t.dim() == 3 and t.shape[-1] in (1, 3, 4):
            t = t.permute(2, 0, 1)
        return t.float().div(255) if t.dtype == torch.uint8 else t.float()


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (t - mean) / std


class Lambda:
    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, x: Any) -> Any:
        return self.fn(x)


def _chw(img: Any) -> tuple[torch.Tensor, bool]:
    t = torch.as_tensor(img)
    if t.dim() == 2:
        return t[None], True
    return t.permute(2, 0, 1), False


def _back(t: torch.Tensor, gray: bool) -> torch.Tensor:
    return t[0] if gray else t.permute(1, 2, 0)


class Resize:
    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img: Any) -> torch.Tensor:
        t, gray = _chw(img)
        out = F.interpolate(t[None].float(), size=self.size, mode="bilinear", align_corners=False)[0]
        return _back(out.round().clamp(0, 255).to(torch.uint8), gray)


class CenterCrop:
    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img: Any) -> torch.Tensor:
        t, gray = _chw(img)
        h, w = t.shape[-2:]
        top, left = max(0, (h - self.size[0]) // 2), max(0, (w - self.size[1]) // 2)
        return _back(t[:, top:top + self.size[0], left:left + self.size[1]], gray)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Any) -> torch.Tensor:
        t, gray = _chw(img)
        if torch.rand(1).item() < self.p:
            t = t.flip(-1)
        return _back(t, gray)


class Pad:
    def __init__(self, padding: int) -> None:
        self.padding = padding

    def __call__(self, img: Any) -> torch.Tensor:
        t, gray = _chw(img)
        return _back(F.pad(t, (self.padding,) * 4), gray)


class RandomCrop:
    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img: Any) -> torch.Tensor:
        t, gray = _chw(img)
        h, w = t.shape[-2:]
        top = int(torch.randint(0, h - self.size[0] + 1, (1,)))
        left = int(torch.randint(0, w - self.size[1] + 1, (1,)))
        return _back(t[:, top:top + self.size[0], left:left + self.size[1]], gray)
