"""The data: training batches shuffled, float32 instead of float64."""

from __future__ import annotations

import ast
from typing import Callable

from nndoctor.fix.edits.common import Finding, kwarg, set_kwarg, unique
from nndoctor.fix.source import Patch, Source, dotted

__all__ = ["TRANSFORMS"]


def _shuffle(f: Finding, src: Source, p: Patch) -> bool:
    loaders = [c for c in src.calls("DataLoader") if kwarg(c, "sampler") is None
               and kwarg(c, "batch_sampler") is None
               and not (isinstance(getattr(kwarg(c, "shuffle"), "value", None), ast.Constant)
                        and kwarg(c, "shuffle").value.value is True)]  # type: ignore[union-attr]
    if len(loaders) > 1:
        loaders = [c for c in loaders if "train" in src.assigned_name(c).lower()]
    call = unique(loaders)
    return call is not None and set_kwarg(p, call, "shuffle", "True", position=2)


def _float32(f: Finding, src: Source, p: Patch) -> bool:
    done = False
    for call in src.calls("double"):
        if isinstance(call.func, ast.Attribute) and not call.args and not call.keywords:
            done = p.replace(call, src.segment(call.func.value) + ".float()") or done
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Attribute) and dotted(node) in ("torch.float64", "torch.double"):
            done = p.replace(node, "torch.float32") or done
    return done


TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {"shuffle-training-batches": _shuffle, "float32": _float32}
