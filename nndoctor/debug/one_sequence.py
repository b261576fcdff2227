"""shape: a batch of independent samples fed to a recurrent layer as one long sequence.

A model that gets ``(N, F)`` rows (one time step per sample, or tabular features) and adds the
missing axis on the wrong side - ``self.lstm(x.unsqueeze(0))`` with ``batch_first=True``, or
``x.unsqueeze(1)`` with the default ``batch_first=False`` - hands the LSTM / GRU / RNN a batch of one
sequence whose ``N`` time steps are the ``N`` samples. It runs, the output has the right number of
rows, and the recurrence carries each sample's hidden state into the next, unrelated sample: the
prediction for a sample depends on the samples that happen to precede it in the batch.

Evidence, on one sampled training step: the root model's input is 2-D with ``N >= MIN_BATCH`` rows,
the loss targets have ``N`` rows, and a recurrent layer of that model gets a 3-D input whose batch
axis (by its ``batch_first``) has size 1 and whose time axis has size ``N``. A single real sequence
fed with its batch axis (``(1, T, F)``, as a character model or a time-series model does) has a 3-D
root input and stays quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput, ModuleOutput

__all__ = ["BatchFedAsOneSequence"]

MIN_BATCH = 8


@register
class BatchFedAsOneSequence(Check):
    """An RNN whose single sequence is the batch of samples (``x.unsqueeze(0)`` on batch-first rows)."""

    code = "shape.batch-fed-as-one-sequence"
    needs = ("model_input", "module_output", "loss")
    sampled_only = frozenset({"model_input", "module_output", "loss"})
    module_types = (torch.nn.RNNBase,)
    needs_module = True

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._root: tuple[int, int, str] | None = None  # (step, rows, model) of the latest 2-D training input
        self._seen: dict[str, tuple[int, tuple[int, ...], bool, str]] = {}  # rnn -> (step, shape, batch_first, type)
        self._reported: set[str] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if isinstance(event, ModelInput):
            x = next((a for a in event.args if isinstance(a, torch.Tensor)), None)
            ok = event.grad_enabled and x is not None and x.dim() == 2 and x.shape[0] >= MIN_BATCH
            self._root = (event.step, int(x.shape[0]), event.name) if ok and x is not None else None
            return ()
        if isinstance(event, ModuleOutput):
            module = event.module
            if (isinstance(module, torch.nn.RNNBase) and event.name not in self._reported and event.inputs
                    and isinstance(event.inputs[0], torch.Tensor) and event.inputs[0].dim() == 3):
                self._seen[event.name] = (event.step, tuple(event.inputs[0].shape), bool(module.batch_first),
                                          type(module).__name__)
            return ()
        if not isinstance(event, LossCall) or not self._seen or self._root is None:
            return ()
        step, rows, model = self._root
        target = event.target
        if step != event.step or not isinstance(target, torch.Tensor) or target.dim() < 1 or target.shape[0] != rows:
            return ()
        out: list[Finding] = []
        for name, (seen_step, shape, batch_first, kind) in list(self._seen.items()):
            if seen_step != step:
                continue
            batch, time = (shape[0], shape[1]) if batch_first else (shape[1], shape[0])
            if batch != 1 or time != rows:
                continue
            self._reported.add(name)
            del self._seen[name]
            fix = "x.unsqueeze(1)" if batch_first else "x.unsqueeze(0)"
            ev = {"module": name, "model": model, "input_shape": shape, "batch_first": batch_first,
                  "batch_size": rows, "target_shape": tuple(target.shape), "loss": event.name, "fix": fix,
                  "per_sample_shape": f"({rows}, 1, {shape[2]})" if batch_first else f"(1, {rows}, {shape[2]})"}
            out.append(self.finding(
                f"{name} ({kind}, batch_first={batch_first}) gets {shape} while {model}'s input and the loss "
                f"targets hold {rows} samples: the batch was turned into one sequence of {rows} time steps, so the "
                f"recurrence carries each sample's hidden state into the next, unrelated sample and a prediction "
                f"depends on the samples before it in the batch",
                ev, location=name))
        return out
