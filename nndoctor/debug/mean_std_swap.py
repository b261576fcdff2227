"""preprocessing: images normalised with the mean and the std swapped, ``(x - std) / mean``.

The published per-channel statistics of a dataset (ImageNet's mean ``(0.485, 0.456, 0.406)`` and std
``(0.229, 0.224, 0.225)``, CIFAR's, MNIST's ``0.1307`` / ``0.3081``...) are pasted into
``Normalize(mean, std)`` or ``(x - mean) / std`` in the wrong order. The inputs are then neither
centred nor of unit scale (``(x - 0.229) / 0.485``: values in [-0.47, 1.6] instead of [-2.1, 2.6]),
a pretrained backbone sees inputs unlike the ones it was trained on, and evaluation code that
normalises correctly sees other inputs than training did.

Evidence: pixels in [0, 1] normalised with the statistics ``(m, s)`` span exactly
``[-m/s, (1-m)/s]`` per channel when a batch holds a black and a white pixel in every channel (any
batch of natural images does); normalised with ``(s, m)`` they span ``[-s/m, (1-s)/m]``. On sampled
training steps, the model's first floating input shaped like images (``(N, C, H, W)`` or
``(N, H, W, C)`` with ``C`` = 1 or 3, ``(N, H, W)``, or flattened ``(N, >= 64)`` single-channel
images) is compared per channel with the swapped ranges of the statistics in ``KNOWN``: its minimum
AND maximum within ``TOL`` of ``-s/m`` and ``(1-s)/m`` in every channel. ``MIN_BATCHES`` such batches
and at least half of the batches judged make a warning. Statistics whose swap gives the same range
(``0.5`` / ``0.5``), the correct order, unnormalised pixels and batches that do not reach both
ends are quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput, RunEnd

__all__ = ["KNOWN", "MeanStdSwapped", "TOL", "swapped_stats"]

#: name -> (mean, std) per channel, as published (and pasted) for the common datasets
KNOWN: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "ImageNet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "CIFAR-10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "CIFAR-10 (0.2023)": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "CIFAR-100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "CLIP": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "SVHN": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "MNIST": ((0.1307,), (0.3081,)),
    "Fashion-MNIST": ((0.2860,), (0.3530,)),
}
TOL = 0.01  # on the normalised minimum and maximum (constants pasted with fewer digits still match)
MIN_BATCHES = 2
MIN_FLAT = 64


def _channels(x: torch.Tensor) -> torch.Tensor | None:
    """``(C, values)`` of an image-like batch, or None."""
    if x.dim() == 4 and x.shape[1] in (1, 3):
        return x.transpose(0, 1).reshape(x.shape[1], -1)
    if x.dim() == 4 and x.shape[-1] in (1, 3):
        return x.reshape(-1, x.shape[-1]).t()
    if x.dim() == 3 or (x.dim() == 2 and x.shape[1] >= MIN_FLAT):
        return x.reshape(1, -1)
    return None


def swapped_stats(lo: list[float], hi: list[float]) -> str | None:
    """The name of the statistics whose swapped use gives exactly these per-channel ranges."""
    for name, (mean, std) in KNOWN.items():
        if len(mean) != len(lo):
            continue
        ok = all(abs(lo[c] + s / m) <= TOL and abs(hi[c] - (1.0 - s) / m) <= TOL
                 and abs(s / m - m / s) > 10 * TOL for c, (m, s) in enumerate(zip(mean, std)))
        if ok:
            return name
    return None


@register
class MeanStdSwapped(Check):
    """Image inputs normalised as ``(x - std) / mean`` with a dataset's published statistics."""

    code = "preprocessing.mean-std-swapped"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._judged = 0
        self._hits: list[dict[str, Any]] = []

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "model_input":
            self._on_input(event)
            return ()
        return self._on_end(event)

    def _on_input(self, event: ModelInput) -> None:
        if not event.grad_enabled or not event.training:
            return
        # (the first batch-like tensor: an ODE function's forward(t, y) reads a 0-dim time first)
        x = next((v for v in list(event.args) + list(event.kwargs.values())
                  if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dim() > 0), None)
        if x is None or x.shape[0] < 2 or x.numel() == 0:
            return
        ch = _channels(x.detach())
        if ch is None:
            return
        lo = ch.amin(dim=1).float().tolist()
        hi = ch.amax(dim=1).float().tolist()
        self._judged += 1
        name = swapped_stats(lo, hi)
        if name is not None:
            self._hits.append({"model": event.name, "stats": name, "step": event.step,
                               "min": [round(v, 4) for v in lo], "max": [round(v, 4) for v in hi],
                               "shape": tuple(x.shape)})

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if len(self._hits) < MIN_BATCHES or len(self._hits) < 0.5 * self._judged:
            return []
        hit = self._hits[0]
        mean, std = KNOWN[hit["stats"]]
        evidence = {**hit, "mean": list(mean), "std": list(std), "batches": len(self._hits),
                    "judged": self._judged}
        return [self.finding(
            f"{hit['model']}'s inputs span {hit['min']}..{hit['max']} per channel in {len(self._hits)} sampled "
            f"batches: exactly what pixels in [0, 1] become with the {hit['stats']} statistics swapped, "
            f"(x - std) / mean with mean={list(mean)}, std={list(std)}; correctly normalised they would "
            f"span {[round(-m / s, 3) for m, s in zip(mean, std)]}..{[round((1 - m) / s, 3) for m, s in zip(mean, std)]}",
            evidence, location=hit["model"], step=hit["step"])]
