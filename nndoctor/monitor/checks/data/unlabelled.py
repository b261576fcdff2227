"""Training inputs used without their labels (domain adaptation, semi-supervised steps).

A step of domain-adversarial training (DANN) or of transductive semi-supervised learning runs
the model on two batches: a labelled source batch whose outputs reach the task loss with its
labels, and a batch of target-domain (often the evaluation) inputs whose outputs reach only a
loss with constant per-batch targets (the domain classifier's "this is a target example") or
no targets at all. Those inputs are trained on without their labels: an evaluation on them is
transductive, not leakage of labels.

On sampled steps with two or more data batches (root-model forwards of tensors no trained
module computed), nndoctor follows each training loss's graph back to the batches' root-model
outputs (bounded walk): a loss whose targets are not constant over the batch it reaches labels
that batch; a loss over several batches whose targets are one constant per batch (domain or
real/fake labels) labels none. When a step labelled some of its batches and not others, the
fingerprints of the others are kept in :attr:`ObservedData.unlabelled_hashes`; the leakage
check (:mod:`.leakage`) reports evaluation examples that match only such inputs as ``info``.
Nothing is marked in a step where no batch was labelled (a GAN, a hand-written loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.grad_cut import walk_graph
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.sample import ObservedData, example_hashes, first_tensor
from nndoctor.monitor.events import ModelInput, ModuleOutput, RunEnd, StepEvent, Targets

__all__ = ["UnlabelledBatches", "only_unlabelled", "reached"]

MAX_BATCHES = 8  # data batches followed per step
MAX_NODES = 20_000  # autograd nodes walked per loss call
MAX_HASHES = 200_000
#: rows a batch's single constant target needs to be taken as a domain label (a small batch of one class is not)
MIN_CONSTANT_ROWS = 16


@dataclass
class _Batch:
    model: torch.nn.Module
    x: torch.Tensor
    args: tuple[Any, ...]  # the forward's inputs (an example is all of them: :func:`.sample.example_hashes`)
    kwargs: dict[str, Any]
    node: Any = None  # grad_fn of the root model's output for this batch
    labelled: bool = False


def reached(root: Any, nodes: list[Any]) -> set[int]:
    """Indices of ``nodes`` (autograd nodes) found walking back from ``root`` (at most MAX_NODES nodes)."""
    wanted = {id(n): i for i, n in enumerate(nodes) if n is not None}
    found: set[int] = set()
    if root is None or not wanted:
        return found
    for node in walk_graph(root, MAX_NODES):
        i = wanted.get(id(node))
        if i is not None:
            found.add(i)
            if len(found) == len(wanted):
                break
    return found


def _constant_blocks(t: torch.Tensor, sizes: list[int]) -> bool:
    """``t`` is one constant value per block of rows of the given sizes (in order)."""
    if t.dim() == 0 or int(t.shape[0]) != sum(sizes):
        return False
    start = 0
    for n in sizes:
        block = t[start:start + n].detach()
        if block.numel() and not bool((block == block.reshape(-1)[0]).all()):
            return False
        start += n
    return True


def only_unlabelled(data: ObservedData, h: int) -> bool:
    """The example ``h`` was trained on only in steps that did not use its label."""
    n = data.unlabelled_hashes.get(h, 0)
    return n > 0 and n >= data.train_hashes.get(h, 0)


@register
class UnlabelledBatches(Check):
    """Records the training inputs a step used without labels; reports nothing itself."""

    code = "data.observed-sample"
    needs = ("model_input", "module_output", "targets", "step", "end")
    sampled_only = frozenset({"model_input", "module_output", "targets", "step.post"})
    step_phases = frozenset({"post"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._step = -1
        self._batches: list[_Batch] = []
        self._losses: list[tuple[Any, torch.Tensor]] = []  # this step's training loss calls: (graph, targets)

    def check(self, event: ModelInput | ModuleOutput | Targets | StepEvent | RunEnd) -> Iterable[Finding]:
        kind = event.kind
        if kind == "module_output":
            if self._batches and event.grad_enabled:  # type: ignore[union-attr]
                self._on_output(event)  # type: ignore[arg-type]
        elif kind == "model_input":
            if event.grad_enabled:  # type: ignore[union-attr]
                self._on_input(event)  # type: ignore[arg-type]
        elif kind == "targets":
            if event.training and self._batches:  # type: ignore[union-attr]
                self._on_targets(event)  # type: ignore[arg-type]
        else:
            self._flush()
        return ()

    def _on_input(self, event: ModelInput) -> None:
        if event.step != self._step:
            self._flush()
            self._step = event.step
        x = first_tensor(event.args, event.kwargs)
        if x is None or x.grad_fn is not None or x.dim() == 0 or len(self._batches) >= MAX_BATCHES:
            return  # an activation another module computed, or too many batches
        self._batches.append(_Batch(model=event.model, x=x, args=event.args, kwargs=event.kwargs))

    def _on_output(self, event: ModuleOutput) -> None:
        for b in reversed(self._batches):
            if b.model is event.module and b.node is None:
                out = event.output if isinstance(event.output, torch.Tensor) else first_tensor(
                    tuple(event.output) if isinstance(event.output, (tuple, list)) else (), {})
                b.node = getattr(out, "grad_fn", None)
                return

    def _on_targets(self, event: Targets) -> None:
        t = event.target
        if not isinstance(t, torch.Tensor) or t.grad_fn is not None or t.dim() == 0:
            return  # targets a model computed (a distillation teacher's, a critic's): not labels
        if event.step != self._step:
            self._flush()
            self._step = event.step
        if len(self._losses) < MAX_BATCHES:  # (judged at the step's end: a later forward may add a batch)
            self._losses.append((event.input.grad_fn, t.detach()))

    def _label(self, batches: list[_Batch], root: Any, t: torch.Tensor) -> None:
        """Mark the batches the loss with graph ``root`` and targets ``t`` labels."""
        hit = sorted(reached(root, [b.node for b in batches]))
        if not hit:
            return
        sizes = [int(batches[i].x.shape[0]) for i in hit]
        if len(hit) >= 2 and _constant_blocks(t, sizes):
            return  # one constant target per batch: domain (or real/fake) labels, not the examples' labels
        if len(hit) == 1 and t.shape[0] >= MIN_CONSTANT_ROWS and bool((t == t.reshape(-1)[0]).all()):
            return  # one constant target for a whole batch: a domain (real/fake) label of its own loss
        for i in hit:
            batches[i].labelled = True

    def _flush(self) -> None:
        batches = [b for b in self._batches if b.node is not None]
        losses, self._batches, self._losses = self._losses, [], []
        if len(batches) < 2 or not losses:
            return
        for root, t in losses:
            self._label(batches, root, t)
        if not any(b.labelled for b in batches):
            return
        data = ObservedData.of(self.state)
        if data is None:
            return
        for b in batches:
            if b.labelled or len(data.unlabelled_hashes) >= MAX_HASHES:
                continue
            hashes, constant = example_hashes(b.x, b.args, b.kwargs)
            data.unlabelled_hashes.update({h for h, c in zip(hashes, constant) if not c})

