"""shape: channels-last data read as channels-first (a reshape/view where a permute was meant).

Images stored (N, H, W, C) - numpy, PIL, OpenCV, a CSV of RGB rows - must be permuted to (N, C, H, W)
for ``nn.Conv2d``. ``x.reshape(N, C, H, W)`` / ``x.view(...)`` / ``np.reshape`` has the right sizes but
keeps the memory order, so each "channel" plane is a strip of interleaved R, G, B values of
different pixels: the convolution sees scrambled images, nothing fails and accuracy stays low. The
same holds for (N, L, C) signals reshaped to (N, C, L) for ``nn.Conv1d``. Where the reshape happens
(data loading in numpy, a Dataset's ``__getitem__``, the training loop) does not matter: the
evidence is in the values.

Evidence: a data batch (no autograd history) enters a model whose first weighted layer is a
convolution reading ``C = x.shape[1]`` channels (2 <= C <= 16). Along each sample's values in
memory order, the mean squared difference of values ``k`` apart, ``D(k)``, is measured for
``k = 1..2C``. In real channels-first data neighbours in memory are neighbouring pixels of one
channel, so ``D`` grows with ``k`` (smooth images) or is flat (noise). Interleaved channels make
``D(C)`` and ``D(2C)`` (the same channel of the next pixels) far smaller than every other lag:
both below ``RATIO`` times the smallest lag between them, over >= ``MIN_SAMPLES`` samples of
>= ``MIN_BATCHES`` sampled batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput, RunEnd

__all__ = ["InterleavedChannels", "lag_differences"]

MIN_BATCHES, MIN_SAMPLES = 2, 16
#: D(C) and D(2C) must both be below this share of the other lags
RATIO = 0.5
#: samples of one batch that are measured
SAMPLES_PER_BATCH = 32
MAX_CHANNELS = 16


def lag_differences(x: torch.Tensor, lags: int) -> torch.Tensor:
    """Mean squared difference of values ``k`` apart in each sample's memory order, ``k = 1..lags``."""
    flat = x.reshape(x.shape[0], -1).double()
    return torch.stack([(flat[:, k:] - flat[:, :-k]).square().mean() for k in range(1, lags + 1)])


def _first_conv(model: torch.nn.Module) -> torch.nn.Module | None:
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.RNNBase, torch.nn.Embedding, torch.nn.EmbeddingBag,
                          torch.nn.modules.conv._ConvNd)):
            return m if isinstance(m, torch.nn.modules.conv._ConvNd) else None
    return None


@dataclass
class _Tally:
    shape: tuple[int, ...]
    layer: str
    batches: int = 0
    samples: int = 0
    first_step: int = 0
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    done: bool = False


@register
class InterleavedChannels(Check):
    """A convolution's input whose channels are interleaved in memory: channels-last data reshaped, not permuted."""

    code = "shape.channels-last-read-as-channels-first"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._tallies: dict[int, _Tally] = {}
        self._layers: dict[int, torch.nn.Module | None] = {}

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return [f for key in list(self._tallies) for f in self._judge(key)]
        if not event.grad_enabled:
            return ()
        x = next((a for a in event.args if isinstance(a, torch.Tensor)), None)
        if x is None or x.dim() not in (3, 4, 5) or not x.is_floating_point() or x.grad_fn is not None:
            return ()
        key = id(event.model)
        if key not in self._layers:
            self._layers[key] = _first_conv(event.model)
        conv = self._layers[key]
        channels = int(x.shape[1])
        if (conv is None or getattr(conv, "in_channels", None) != channels or x.dim() != len(conv.kernel_size) + 2
                or not 2 <= channels <= MAX_CHANNELS or x[0].numel() < 8 * channels):
            return ()
        tally = self._tallies.get(key)
        if tally is None:
            name = next((n for n, m in event.model.named_modules() if m is conv), "") or type(conv).__name__
            tally = self._tallies[key] = _Tally(shape=tuple(x.shape), layer=f"{event.name}.{name}".rstrip("."),
                                                first_step=event.step)
        if tally.done:
            return ()
        sample = x[:SAMPLES_PER_BATCH].detach()
        if not bool(torch.isfinite(sample).all()):
            return ()
        d = lag_differences(sample, 2 * channels).cpu() * sample.shape[0]
        tally.sums = d if tally.sums.numel() == 0 else tally.sums + d
        tally.batches += 1
        tally.samples += int(sample.shape[0])
        if tally.batches >= MIN_BATCHES + 2:
            return self._judge(key)
        return ()

    def _judge(self, key: int) -> list[Finding]:
        tally = self._tallies[key]
        if tally.done or tally.batches < MIN_BATCHES or tally.samples < MIN_SAMPLES:
            return []
        tally.done = True
        c = tally.shape[1]
        d = (tally.sums / tally.samples).tolist()
        first, second = d[c - 1], d[2 * c - 1]
        others_first, others_second = min(d[:c - 1]), min(d[c:2 * c - 1])
        if not (0 < first < RATIO * others_first and 0 < second < RATIO * others_second):
            return []
        n, shape = tally.shape[0], tally.shape
        if len(shape) == 4:
            stored, fix = f"({n}, {shape[2]}, {shape[3]}, {c})", "x.permute(0, 3, 1, 2)"
        elif len(shape) == 3:
            stored, fix = f"({n}, {shape[2]}, {c})", "x.permute(0, 2, 1)"
        else:
            stored, fix = f"({n}, {shape[2]}, {shape[3]}, {shape[4]}, {c})", "x.permute(0, 4, 1, 2, 3)"
        ev = {"model": tally.layer.split(".")[0], "layer": tally.layer, "input_shape": shape, "channels": c,
              "stored_as": stored, "permute": fix, "lag_c": round(first, 6), "lag_2c": round(second, 6),
              "smallest_other_lag": round(min(others_first, others_second), 6),
              "lag_differences": [round(v, 6) for v in d], "batches": tally.batches, "samples": tally.samples}
        return [self.finding(
            f"the input {shape} of {tally.layer} has its {c} channels interleaved in memory: values {c} and "
            f"{2 * c} apart differ {first:.3g} and {second:.3g} on average (mean squared) against >= "
            f"{min(others_first, others_second):.3g} at every other lag up to {2 * c} ({tally.samples} samples): the data "
            f"is stored channels-last {stored} and was reshaped/viewed to channels-first instead of permuted, so each "
            f"channel plane mixes the colours of different pixels",
            ev, location=tally.layer, step=tally.first_step)]
