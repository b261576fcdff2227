"""Shared helpers of the training-dynamics checks: layer order, producers, cheap norms.

Not a check module (the leading underscore keeps the autoloader away). Everything here is
called from inside checks, under ``torch.no_grad()``, on sampled events only.
"""

from __future__ import annotations

import math
import weakref
from typing import Iterable, Sequence

import torch
from torch import nn

__all__ = [
    "LayerOrder",
    "Producers",
    "fmt",
    "host_floats",
    "is_finite",
    "unit_dims",
    "weight_params",
]

#: modules whose weight is a lookup table, not a layer in the gradient chain
_LOOKUP = (nn.Embedding, nn.EmbeddingBag)
#: modules whose 3-D outputs are (N, C, L): the units are channels, not the last dim
_CHANNELS_FIRST = (nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d, nn.InstanceNorm1d, nn.MaxPool1d,
                   nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)


def fmt(value: float) -> str:
    """A short human number: ``3.2e-07``, ``0.41``, ``1.5e+04``."""
    if value != value or value in (math.inf, -math.inf):
        return str(value)
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def is_finite(value: float) -> bool:
    return not (value != value or value in (math.inf, -math.inf))


def host_floats(values: Sequence[torch.Tensor]) -> list[float]:
    """Scalars living on (possibly different) devices, brought to the host in one transfer each."""
    if not values:
        return []
    by_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(values):
        by_device.setdefault(v.device, []).append(i)
    out = [0.0] * len(values)
    for idx in by_device.values():
        flat = torch.stack([values[i].reshape(()).float() for i in idx]).tolist()
        for i, f in zip(idx, flat):
            out[i] = float(f)
    return out


def weight_params(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The module's own matrices (dim >= 2), lookup tables excluded."""
    if isinstance(module, _LOOKUP):
        return []
    return [(n, p) for n, p in module._parameters.items() if p is not None and p.dim() >= 2]


def unit_dims(t: torch.Tensor, channels_first: bool = False) -> tuple[int, tuple[int, ...]]:
    """Which dimension holds the units (features/channels) and which to reduce over.

    (N, F) and (N, C, H, W...) use dim 1; 3-D tensors use the last dim ((N, L, F)
    sequences) unless their producer is channels-first ((N, C, L) of ``nn.Conv1d``).
    """
    nd = t.dim()
    unit = nd - 1 if nd == 1 or (nd == 3 and not channels_first) else 1
    return unit, tuple(d for d in range(nd) if d != unit)


class LayerOrder:
    """The order in which modules holding weight matrices run in training forwards.

    Fed with ``module_output`` events; answers "which weight comes first in the
    forward pass" for a set of parameters (falling back to the given order).
    """

    def __init__(self) -> None:
        self._index: dict[int, int] = {}
        self._module_of: dict[int, str] = {}
        self._kind: dict[int, str] = {}

    def see(self, module: nn.Module, name: str) -> None:
        if not module._parameters:
            return
        for _, param in weight_params(module):
            pid = id(param)
            if pid not in self._index:
                self._index[pid] = len(self._index)
                self._module_of[pid] = name
                self._kind[pid] = type(module).__name__

    def seen(self, param: torch.Tensor) -> bool:
        return id(param) in self._index

    def module_of(self, param: torch.Tensor) -> str:
        return self._module_of.get(id(param), "")

    def kind_of(self, param: torch.Tensor) -> str:
        return self._kind.get(id(param), "")

    def order(self, params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
        """Weight matrices of ``params`` in forward order (given order if too few were seen)."""
        mats = [p for p in params if p.dim() >= 2]
        known = [p for p in mats if id(p) in self._index]
        if len(known) >= 2:
            return sorted(known, key=lambda p: self._index[id(p)])
        return mats


class Producers:
    """Which module produced a tensor: outputs of recent module calls, by id (weakly held).

    Also remembers whether the producer lays out 3-D outputs channels-first ((N, C, L) of
    ``nn.Conv1d``) rather than features-last ((N, L, F) of ``nn.Linear`` on sequences).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._out: dict[int, tuple[weakref.ReferenceType[torch.Tensor], str, bool]] = {}
        self.capacity = capacity

    def see(self, module: nn.Module, name: str, inputs: tuple[object, ...], output: object) -> None:
        """A module ran: layers with parameters produce; parameter-free ones pass the name on."""
        if not isinstance(output, torch.Tensor):
            return
        if module._parameters and any(p is not None for p in module._parameters.values()):
            self.record(output, name, isinstance(module, _CHANNELS_FIRST))
        elif inputs and not any(True for _ in module.children()):
            entry = self._entry(inputs[0])
            if entry is not None:
                self.record(output, entry[1], entry[2] or isinstance(module, _CHANNELS_FIRST))

    def record(self, output: torch.Tensor, name: str, channels_first: bool = False) -> None:
        if len(self._out) >= self.capacity:
            self._out = {k: v for k, v in self._out.items() if v[0]() is not None}
            if len(self._out) >= self.capacity:
                self._out.clear()
        self._out[id(output)] = (weakref.ref(output), name, channels_first)

    def _entry(self, tensor: object) -> tuple[weakref.ReferenceType[torch.Tensor], str, bool] | None:
        if not isinstance(tensor, torch.Tensor):
            return None
        entry = self._out.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry

    def name_of(self, tensor: object) -> str:
        entry = self._entry(tensor)
        return entry[1] if entry is not None else ""

    def channels_first(self, tensor: object) -> bool:
        entry = self._entry(tensor)
        return bool(entry and entry[2])
