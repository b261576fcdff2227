"""Tensors a check follows through the ops it sees: a bounded map from a live tensor to what it is.

Checks that follow a value from where it is made to where it is used (a resized mask to a loss
target, an argmax to a comparison, a last hidden state to a linear layer) tag the tensors by
identity. Ids are reused once a tensor dies, so each tag keeps a weak reference and is only read
back for the very tensor it was put on; dead tags are pruned when the map is full.
"""

from __future__ import annotations

import weakref
from typing import Any, Generic, TypeVar

import torch

__all__ = ["TensorMarks"]

T = TypeVar("T")


class TensorMarks(Generic[T]):
    """``tensor -> tag`` for live tensors, at most ``limit`` of them."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._tags: dict[int, tuple[weakref.ReferenceType[torch.Tensor], T]] = {}

    def __bool__(self) -> bool:
        return bool(self._tags)

    def get(self, t: Any) -> T | None:
        """The tag of ``t`` (None for an untagged tensor or anything else)."""
        entry = self._tags.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0]() is t else None

    def put(self, t: torch.Tensor, tag: T) -> None:
        """Tag ``t`` (dropped silently when ``limit`` live tensors are already tagged)."""
        if len(self._tags) >= self.limit:
            self._tags = {k: v for k, v in self._tags.items() if v[0]() is not None}
            if len(self._tags) >= self.limit:
                return
        self._tags[id(t)] = (weakref.ref(t), tag)

    def clear(self) -> None:
        self._tags.clear()
