"""A model's Python-side state kept around a probe's extra forwards (nndoctor's own, on the user's model).

Probes that run the user's model on a copy of a batch (the causal-mask probe, the input-dependence probe,
the step-size probe) must leave it as they found it: :func:`kept_state` restores every module attribute
a forward reassigns, adds or deletes, the contents of tensor attributes and buffers changed in place,
and each module's training flag.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

__all__ = ["kept_state"]

_INTERNAL = frozenset({"_parameters", "_buffers", "_modules", "training"})


@contextlib.contextmanager
def kept_state(model: torch.nn.Module) -> Iterator[None]:
    """Whatever the probe's forwards change in the model is the user's again afterwards: every module
    attribute a forward reassigns, adds or deletes (a hidden state kept in ``self.h``, a call counter),
    the contents of tensor attributes and buffers changed in place (a custom running statistic), and
    each module's training flag."""
    saved: list[tuple[torch.nn.Module, dict[str, Any], list[tuple[torch.Tensor, torch.Tensor]]]] = []
    for m in model.modules():
        attrs = {k: v for k, v in vars(m).items() if k not in _INTERNAL}
        tensors = [t for t in (*m._buffers.values(), *attrs.values()) if isinstance(t, torch.Tensor)
                   and not isinstance(t, torch.nn.Parameter)]
        saved.append((m, attrs, [(t, t.detach().clone()) for t in tensors]))
        saved[-1][1]["training"] = m.training
    try:
        yield
    finally:
        for m, attrs, tensors in saved:
            current = vars(m)
            for k in [k for k in current if k not in _INTERNAL and k not in attrs]:
                del current[k]
            current.update(attrs)
            with torch.no_grad():
                for t, copy in tensors:
                    if t.shape == copy.shape and not torch.equal(t, copy):
                        t.copy_(copy)
