"""optimizer: a full-batch method (Rprop, L-BFGS) stepped on mini-batches that change every step.

Rprop adapts each weight's step size from the SIGN of successive gradients (grow while the sign
stays, shrink when it flips); on mini-batches the noise flips the signs at random and the step
sizes swing between their limits. L-BFGS builds its curvature model from differences of
successive gradients and line-searches one fixed objective: on a different batch per step both are
measured on different functions. Both are meant for the full batch.

On sampled training steps the inputs of the model's forward are fingerprinted (one hash per row,
first 16 values of each of up to 4096 rows). Judged from 6 sampled batches on (else at the end of
the run), for each Rprop/LBFGS optimizer over the model: over at least 3 pairs of successive
sampled steps, at least 80% of the pairs share under 10% of their rows (the batch changes every step), and there is evidence of
mini-batches drawn from a finite set: the batch came from a DataLoader whose dataset is at least
1.5x the batch, or rows came back in later batches (an epoch loop). Fresh random inputs every step
(resampled collocation points, full-batch augmentation) never come back and stay quiet; so does a
fixed full batch, shuffled or not. Rprop: warning; L-BFGS (sometimes run on large batches on
purpose): info.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import ModelInput, RunEnd
from nndoctor.monitor.tensors import local, param_ids

__all__ = ["FullBatchOptimizerOnMiniBatches", "row_set"]

FULL_BATCH = {"Rprop": Severity.WARNING, "LBFGS": Severity.INFO}
MAX_ROWS = 4096  # rows fingerprinted per batch
ROW_VALUES = 16  # values per row hashed
CHANGED = 0.1  # successive batches sharing less than this share of rows are different batches
MIN_PAIRS = 3
EARLY_BATCHES = 6  # judged during the run from this many sampled batches on (else at its end)
CHANGED_SHARE = 0.8
LOADER_RATIO = 1.5  # the loader's dataset holds at least this many batches' worth of rows
MAX_SEEN = 100_000  # row fingerprints kept to spot rows coming back


def row_set(x: torch.Tensor) -> frozenset[int]:
    """Fingerprints of the rows (dim 0) of ``x``: the first values of each of its first rows."""
    t = x.detach()[:MAX_ROWS]
    n = int(t.shape[0])
    rows = t.reshape(n, -1)[:, :ROW_VALUES]
    if rows.dtype in (torch.bfloat16, torch.float16) or rows.is_complex():
        rows = rows.float() if not rows.is_complex() else torch.view_as_real(rows).reshape(n, -1)
    a = np.ascontiguousarray(rows.cpu().numpy())
    return frozenset(hash(a[i].tobytes()) for i in range(n))


@dataclass
class _Batch:
    step: int
    rows: frozenset[int]
    n: int
    loader_len: int | None
    came_back: int  # rows already seen in an earlier sampled batch that was not the same batch


@register
class FullBatchOptimizerOnMiniBatches(Check):
    """Rprop / L-BFGS stepped on a different mini-batch every step."""

    code = "optimizer.full-batch-method-on-minibatches"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._off = False
        self._batches: dict[str, list[_Batch]] = {}  # model name -> its sampled training batches
        self._seen: Counter[int] = Counter()
        #: the Rprop/LBFGS optimizers seen: (name, class) -> the models whose parameters they hold
        #: (kept: in a script's main() both are freed before the end of the run is judged)
        self._optimizers: dict[tuple[str, str], set[str]] = {}
        self._known = 0  # len(state.optimizers) when the table above was last brought up to date
        self._reported: set[tuple[str, str]] = set()  # (optimizer, model)

    def _full_batch_optimizers(self) -> dict[tuple[str, str], set[str]]:
        if len(self.state.optimizers) != self._known:
            self._known = len(self.state.optimizers)
            for info, opt in self.state.live_optimizers():
                cls = type(opt).__name__
                if cls not in FULL_BATCH or (info.name, cls) in self._optimizers:
                    continue
                held = param_ids(opt)
                self._optimizers[(info.name, cls)] = {
                    m.name for m, model in self.state.live_models() if any(id(p) in held for p in model.parameters())}
        return self._optimizers

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        if self._off or not (event.sampled and event.grad_enabled and event.training):
            return ()
        if self.state.optimizers and not self._full_batch_optimizers():
            self._off = True  # (optimizers are known from the first step on: none of these)
            self.retire()  # (it looks no more: nothing more to hear but the end)
            return ()
        x = next((a for a in (*event.args, *event.kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if x is None or x.dim() == 0 or x.shape[0] < 2:
            return ()
        batches = self._batches.setdefault(event.name, [])
        if batches and batches[-1].step == event.step:
            return ()  # one batch per step (L-BFGS evaluates its closure several times)
        x = local(x)
        if x.numel() == 0:
            return ()
        rows = row_set(x)
        back = 0
        prev = batches[-1].rows if batches else frozenset()
        if len(prev & rows) < CHANGED * len(rows):
            back = sum(1 for h in rows if h in self._seen)
            if len(self._seen) < MAX_SEEN:
                self._seen.update(rows)
        loader = getattr(self.state.loaders, "current", None) if self.state.loaders is not None else None
        size = getattr(loader, "dataset_len", None)
        if len(batches) >= 256:
            del batches[1:128]
        batches.append(_Batch(step=event.step, rows=rows, n=int(x.shape[0]),
                              loader_len=size if isinstance(size, int) else None, came_back=back))
        if len(batches) >= EARLY_BATCHES and self.state.optimizers:
            return self._judge(only=event.name)
        return ()

    def _judge(self, only: str | None = None) -> list[Finding]:
        out: list[Finding] = []
        for (opt_name, cls), models in list(self._full_batch_optimizers().items()):
            for model_name in sorted(models):
                batches = self._batches.get(model_name, [])
                if len(batches) < MIN_PAIRS + 1 or (opt_name, model_name) in self._reported or (
                        only is not None and model_name != only):
                    continue
                pairs = list(zip(batches, batches[1:]))
                changed = sum(1 for a, b in pairs if len(a.rows & b.rows) < CHANGED * min(len(a.rows), len(b.rows)))
                if changed < MIN_PAIRS or changed < CHANGED_SHARE * len(pairs):
                    continue
                n = sorted(b.n for b in batches)[len(batches) // 2]
                lens = [b.loader_len for b in batches if b.loader_len is not None]
                from_loader = bool(lens) and sorted(lens)[len(lens) // 2] >= LOADER_RATIO * n
                came_back = sum(b.came_back for b in batches)
                if not (from_loader or came_back > 0):
                    continue  # fresh inputs every step: resampled points, not mini-batches of a dataset
                ev: dict[str, Any] = {"optimizer": opt_name, "optimizer_class": cls, "model": model_name,
                                      "batch_size": n, "sampled_steps": len(batches),
                                      "changed_pairs": changed, "pairs": len(pairs), "rows_came_back": came_back}
                if lens:
                    ev["dataset_len"] = sorted(lens)[len(lens) // 2]
                of = f" of a dataset of {ev['dataset_len']}" if from_loader else ""
                self._reported.add((opt_name, model_name))
                out.append(self.finding(
                    f"{opt_name} ({cls}) is a full-batch method but steps on a different mini-batch of {n} "
                    f"rows{of} at every step ({changed} of {len(pairs)} pairs of sampled steps share no "
                    f"batch): the batch noise flips the gradient's signs and scrambles "
                    f"{'its step sizes' if cls == 'Rprop' else 'its curvature pairs and line search'}",
                    ev, location=opt_name, severity=FULL_BATCH[cls]))
                break
        return out
