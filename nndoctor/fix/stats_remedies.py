"""Runtime remedy for images normalised with a dataset's mean and std swapped, ``(x - std) / mean``
(preprocessing.mean-std-swapped): the model's inputs are mapped back onto ``(x - mean) / std``, per
channel, ``x' = (x_swapped * mean + std - mean) / std``, which is exact. Same contract as
:mod:`nndoctor.fix.remedies` (``install(finding, stack)`` changes the re-run through hooks; the stack
undoes it).

Only batches that carry the swap's mark are mapped: in every channel their minimum is the swapped
image of a black pixel, ``-std / mean`` (the check's own evidence; within its tolerance). Inputs
normalised the right way (an evaluation loop that does it correctly, minimum ``-mean / std``) and
inputs of another scale are left as they are.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from nndoctor.debug.mean_std_swap import TOL, _channels
from nndoctor.fix.remedies import Remedy, _transform_root_inputs

__all__ = ["STATS_REMEDIES", "unswap"]

Finding = dict[str, Any]


def unswap(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """``x`` mapped from ``(p - std) / mean`` to ``(p - mean) / std`` per channel when its channels'
    minima carry the swap's mark (``-std / mean``); else ``x`` itself."""
    ch = _channels(x.detach())
    if ch is None or ch.shape[0] != len(mean):
        return x
    lows = ch.amin(dim=1).float().tolist()
    if not all(abs(lo + s / m) <= TOL for lo, m, s in zip(lows, mean, std)):
        return x
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)
    s = torch.tensor(std, dtype=x.dtype, device=x.device)
    if x.dim() == 4 and x.shape[1] in (1, 3):               # (N, C, H, W), as _channels reads it
        m, s = m.view(1, -1, 1, 1), s.view(1, -1, 1, 1)
    # else (N, H, W, C) broadcasts over the last dimension, and one channel is one number
    return (x * m + s - m) / s


def _stats(f: Finding) -> tuple[list[float], list[float]]:
    ev = f.get("evidence") or {}
    mean, std = [float(v) for v in ev.get("mean") or ()], [float(v) for v in ev.get("std") or ()]
    if not mean or len(mean) != len(std) or min(mean) <= 0 or min(std) <= 0:
        raise ValueError("the finding names no statistics")
    return mean, std


def _install_unswap(f: Finding, stack: contextlib.ExitStack) -> None:
    mean, std = _stats(f)
    _transform_root_inputs(stack, lambda x: unswap(x, mean, std))


def _pair(f: Finding) -> str:
    ev = f.get("evidence") or {}
    return f"mean={ev.get('mean')}, std={ev.get('std')}"


STATS_REMEDIES: tuple[Remedy, ...] = (
    Remedy("unswap-mean-std", ("preprocessing.mean-std-swapped",),
           lambda f: f"{f.get('location') or 'the model'}'s inputs mapped from (x - std) / mean onto (x - mean) / std "
                     f"({_pair(f)})",
           lambda f: f"Swap the statistics back: Normalize(mean, std) / (x - mean) / std with {_pair(f)}.",
           _install_unswap),
)
