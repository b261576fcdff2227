"""labels: padding positions counted as labels by a sequence loss.

Sequences of different lengths are padded to one length; the loss must then skip the padded
positions (``CrossEntropyLoss(ignore_index=PAD)``, or targets set to -100 there). Without it
a large share of the loss and of the accuracy is "predict padding": the model learns the
lengths, the loss looks good and the real tokens get a fraction of the gradient.

On sampled training steps, a cross-entropy / NLL loss whose integer targets have as many
elements as an integer ``(N, T)`` input of the model is aligned with that input. The padded
positions of the input are those holding the ``padding_idx`` of one of the model's
``nn.Embedding`` layers, or else a value that only occurs as a trailing (or leading) run of
varying length in >= 20% of the rows (an end-of-sequence token, one per row, does not
qualify). A batch counts when >= 10% of the positions the loss counts are padding (targets
there are not ``ignore_index`` and not of class weight 0); two such sampled batches (and at
least half of the batches judged) make a warning at the end of the run. ``reduction="none"``
(the loss masked by hand afterwards), packed sequences, fixed-length sequences and
per-sequence targets are not judged.
"""

from __future__ import annotations

import weakref
from collections import Counter
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput, RunEnd
from nndoctor.monitor.tensors import ForwardInputs, is_integer

__all__ = ["PaddingNotIgnored"]

_LOSSES = frozenset({"cross_entropy", "nll_loss"})
PAD_SHARE = 0.10  # of the positions the loss counts
MIN_PADDED_ROWS = 0.20  # rows ending (or starting) with the run, when no padding_idx names the pad
MIN_BATCHES = 2
MIN_T = 3


def _run_mask(x: torch.Tensor, trailing: bool) -> tuple[int, torch.Tensor] | None:
    """``(value, mask)`` of a value used only as a trailing/leading run of varying length."""
    edge = x[:, -1] if trailing else x[:, 0]
    values, counts = torch.unique(edge, return_counts=True)
    best = int(counts.argmax())
    if int(counts[best]) < MIN_PADDED_ROWS * x.shape[0]:
        return None
    v = int(values[best])
    m = x == v
    run = (m.flip(1) if trailing else m).to(torch.int8).cumprod(1).bool()
    run = run.flip(1) if trailing else run
    if int((m & ~run).sum()) > 0.02 * int(m.sum()):
        return None  # the value also occurs inside the sequences: a real token
    lengths = run.sum(1)[edge == v]
    if int(torch.unique(lengths).numel()) < 2 or float(lengths.float().mean()) < 1.5:
        return None  # one per row: an end-of-sequence (or start) token, not padding
    return v, run


def _embedding_pads(model: nn.Module) -> list[int]:
    return sorted({int(m.padding_idx) for m in model.modules()
                   if isinstance(m, nn.Embedding) and m.padding_idx is not None and m.padding_idx >= 0})


@register
class PaddingNotIgnored(Check):
    """Padded positions of a sequence batch counted by a cross-entropy loss."""

    code = "labels.padding-not-ignored"
    needs = ("model_input", "loss", "end")
    sampled_only = frozenset({"model_input", "loss"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._inputs = ForwardInputs()  # extra: the padding_idx values of the model's embeddings
        self._pads: dict[int, tuple[weakref.ReferenceType[nn.Module], list[int]]] = {}
        self._judged: Counter[tuple[str, str]] = Counter()
        self._hits: dict[tuple[str, str], dict[str, Any]] = {}

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "model_input":
            self._on_input(event)
        elif event.kind == "loss":
            self._on_loss(event)
        elif event.kind == "end":
            return self._on_end(event)
        return ()

    def _on_input(self, event: ModelInput) -> None:
        if not event.grad_enabled:
            return
        tokens = [v for v in list(event.args) + list(event.kwargs.values())
                  if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] >= MIN_T and is_integer(v)]
        if not tokens:
            self._inputs.clear()
            return
        cached = self._pads.get(id(event.model))
        if cached is None or cached[0]() is not event.model:
            cached = self._pads[id(event.model)] = (weakref.ref(event.model), _embedding_pads(event.model))
        self._inputs.keep(event.step, event.name, tokens, cached[1])

    def _on_loss(self, event: LossCall) -> None:
        if (event.name not in _LOSSES or not event.grad_enabled or event.target is None
                or not is_integer(event.target) or event.kwargs.get("reduction", "mean") == "none"):
            return
        inputs = self._inputs.at(event.step)
        for x in inputs or ():
            if x is not None and x.numel() == event.target.numel():
                self._judge(self._inputs.model, event, x, self._inputs.extra)
                return

    def _judge(self, model: str, event: LossCall, x: torch.Tensor, pads: list[int]) -> None:
        pad: tuple[int, torch.Tensor] | None = None
        how = "padding_idx"
        for p in pads:
            m = x == p
            if bool(m.any()):
                pad = (p, m)
                break
        if pad is None:
            how = "trailing run"
            pad = _run_mask(x, trailing=True)
            if pad is None:
                how, pad = "leading run", _run_mask(x, trailing=False)
        key = (model, event.name)
        self._judged[key] += 1
        if pad is None:
            return
        value, mask = pad
        target = event.target.reshape(x.shape)
        ignore = int(event.kwargs.get("ignore_index", -100))
        counted = target != ignore
        weight = event.kwargs.get("weight")
        if isinstance(weight, torch.Tensor) and weight.dim() == 1 and weight.numel():
            cls = target.clamp(0, weight.numel() - 1).to(weight.device)
            counted &= (weight[cls] > 0).to(counted.device)
        total = int(counted.sum())
        padded = mask & counted
        n_pad = int(padded.sum())
        if total == 0 or n_pad < PAD_SHARE * total:
            return
        pad_targets = target[padded]
        values, counts = torch.unique(pad_targets, return_counts=True)
        hit = self._hits.setdefault(key, {"batches": 0, "pad": 0, "counted": 0, "first_step": event.step,
                                          "pad_value": value, "how": how, "targets": Counter()})
        hit["batches"] += 1
        hit["pad"] += n_pad
        hit["counted"] += total
        for v, c in zip(values.tolist()[:4], counts.tolist()[:4]):
            hit["targets"][int(v)] += int(c)

    def _on_end(self, event: RunEnd) -> list[Finding]:
        found: list[Finding] = []
        for key, hit in self._hits.items():
            model, loss = key
            if hit["batches"] < MIN_BATCHES or hit["batches"] < 0.5 * self._judged[key]:
                continue
            share = hit["pad"] / hit["counted"]
            target_value = hit["targets"].most_common(1)[0][0] if hit["targets"] else hit["pad_value"]
            source = (f"the padding_idx={hit['pad_value']} of {model}'s embedding" if hit["how"] == "padding_idx"
                      else f"token {hit['pad_value']}, which fills the {hit['how'].split()[0]} positions of the inputs")
            ev = {"model": model, "loss": loss, "pad_value": hit["pad_value"], "pad_target": target_value,
                  "pad_share": round(share, 4), "batches": hit["batches"], "how": hit["how"]}
            found.append(self.finding(
                f"{share:.0%} of the positions {loss} counts are padding ({source}; targets there are "
                f"{target_value}) in {hit['batches']} sampled batches: the loss does not ignore them, so a large "
                f"share of the loss and of the accuracy is predicting padding",
                ev, location=model, step=hit["first_step"]))
        return found
