"""shape: a sequence-first attention layer fed batch-major tensors: it attends across the batch.

``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` (and the
``nn.Transformer*`` stacks built from them) are sequence-first unless ``batch_first=True``. Fed
``(N, T, E)`` batches, they read the N samples as N positions of T sequences: every sample attends to
the other samples of its batch at the same position, predictions depend on what else is in the batch,
and ``h[:, 0]`` / ``h.mean(1)`` pool over something other than the sequence. Nothing crashes.

Evidence (the rule of :class:`nndoctor.debug.sequence.RecurrentBatchTimeSwapped`): on the same
sampled training step, an ``nn.MultiheadAttention`` with ``batch_first=False`` (the one inside each
Transformer layer mirrors the layer's flag) gets a 3-D query whose dim 0 equals the batch size the loss
sees (the first dim of its target) while its dim 1 does not. Time-major inputs, targets laid out like
the input (per-position targets: ambiguous) and ``batch_first=True`` layers are quiet. One finding per
run (the first attention layer; the others of the stack read the same tensors).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import register
from nndoctor.debug.sequence import RecurrentBatchTimeSwapped
from nndoctor.findings import Finding

__all__ = ["AttentionBatchSeqSwapped"]


@register
class AttentionBatchSeqSwapped(RecurrentBatchTimeSwapped):
    """A ``batch_first=False`` attention layer fed ``(batch, seq, embed)``: it attends across the batch."""

    code = "shape.attention-batch-seq-swapped"
    module_types = (torch.nn.MultiheadAttention,)

    def check(self, event: Any) -> Iterable[Finding]:
        if self._reported and event.kind == "module_output":
            return ()  # one finding per run: the layers of a stack all read the same layout
        found = list(super().check(event))
        if found:
            self._seen.clear()
            self._reported.add("*")
        return found[:1]

    def message(self, name: str, module: torch.nn.Module | None, shape: tuple[int, ...], n: int, d1: int) -> str:
        return (f"{name} (MultiheadAttention, batch_first=False) gets {shape} while the loss sees a batch "
                f"of {n}: it reads the {n} samples as {n} positions of {d1} sequences, so each sample attends "
                f"to the other samples of its batch, and pooling over dim 1 pools over the wrong axis")
