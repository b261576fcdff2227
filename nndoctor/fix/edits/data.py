"""The data: training batches shuffled, float32 instead of float64, a debug slice removed, masks resized
with mode='nearest'."""

from __future__ import annotations

import ast
from typing import Callable

from nndoctor.fix.edits.common import Finding, ev, kwarg, set_kwarg, unique
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


def _full_training_set(f: Finding, src: Source, p: Patch) -> bool:
    """``x[:n]`` (n the measured training rows) -> ``x`` for every such slice; ``Subset(ds,
    range(n))`` -> ``ds``."""
    try:
        n = int(ev(f)["train_rows"])
    except (KeyError, TypeError, ValueError):
        return False
    done = False
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice) and node.slice.lower is None \
                and node.slice.step is None and isinstance(node.slice.upper, ast.Constant) \
                and node.slice.upper.value == n:
            done = p.replace(node, src.segment(node.value)) or done
    for call in src.calls("Subset"):
        idx = call.args[1] if len(call.args) > 1 else None
        if isinstance(idx, ast.Call) and dotted(idx.func) == "range" and len(idx.args) == 1 \
                and isinstance(idx.args[0], ast.Constant) and idx.args[0].value == n and call.args:
            done = p.replace(call, src.segment(call.args[0])) or done
    return done


def _nearest_mask(f: Finding, src: Source, p: Patch) -> bool:
    """The interpolate call at the finding's site resizes with mode="nearest" (align_corners dropped to None)."""
    at = src.site_line(ev(f).get("site"))
    call = unique([c for c in src.calls("interpolate", "resize") if c.lineno == at])
    if call is None:
        return False
    corners = kwarg(call, "align_corners")
    if corners is not None and not p.replace(corners.value, "None"):
        return False
    name = dotted(call.func).split(".")[-1]
    if name == "resize":  # torchvision: resize(img, size, interpolation=...)
        return set_kwarg(p, call, "interpolation", "InterpolationMode.NEAREST", position=2)
    return set_kwarg(p, call, "mode", '"nearest"', position=3)


TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    "shuffle-training-batches": _shuffle, "float32": _float32, "full-training-set": _full_training_set,
    "nearest-mask-resize": _nearest_mask}
