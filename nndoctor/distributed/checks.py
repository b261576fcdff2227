"""Per-rank checks of data-parallel training (each rank judges its own run; the merge says on which
ranks a finding was seen): a sampler never told the epoch, batch norm on tiny per-rank batches,
gradient accumulation that all-reduces on every backward, an lr not scaled with the global batch."""

from __future__ import annotations

import ast
import os
import sys
from collections import Counter
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.distributed.fingerprints import _first_tensor
from nndoctor.distributed.rankinfo import current_rank
from nndoctor.findings import Finding

__all__ = ["AccumulationWithoutNoSync", "BatchNormTinyBatch", "LrNotScaled", "SamplerEpochNotSet",
           "scales_with_world_size"]

#: a per-rank batch of at most this many samples gives batch norm noisy statistics
TINY_BATCH = 8


def _world_size() -> int:
    info = current_rank()
    return info.world_size if info is not None else 1


@register
class SamplerEpochNotSet(Check):
    """A shuffling sampler with ``set_epoch`` (DistributedSampler) read in several epochs, always with
    the same epoch: it yields the same order every epoch."""

    code = "distributed.sampler-epoch-not-set"
    needs = ("end",)

    def check(self, event: Any) -> Iterable[Finding]:
        tracker = self.state.loaders
        out = []
        for name, cls, shuffle, epochs in getattr(tracker, "sampler_epochs", {}).values():
            if not shuffle or len(epochs) < 2 or len(set(epochs)) > 1:
                continue
            loader = name or "the DataLoader"
            out.append(self.finding(
                f"{cls} of {loader} shuffled {len(epochs)} epochs with the same epoch number ({epochs[0]}): "
                "every epoch reads the data in the same order (set_epoch is never called)",
                {"loader": loader, "loader_sampler": f"{name}.sampler" if name else "the sampler",
                 "sampler": cls, "epochs_read": len(epochs), "epoch_value": epochs[0]},
                location=name))
        return out


@register
class BatchNormTinyBatch(Check):
    """BatchNorm (not SyncBatchNorm) in a data-parallel model whose per-rank batch is tiny."""

    code = "distributed.batchnorm-not-synced"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.world = _world_size()
        self.batches: dict[str, Counter[int]] = {}
        self.bn: dict[str, list[str]] = {}
        self.first: dict[str, int] = {}

    def inert(self) -> bool:
        return self.world < 2  # (a single process: no per-rank batch, no global one)

    def check(self, event: Any) -> Iterable[Finding]:
        if self.world < 2:
            return ()
        if event.kind == "model_input":
            if event.training and event.grad_enabled:
                self._record(event)
            return ()
        out = []
        for model, sizes in self.batches.items():
            names = self.bn.get(model)
            total = sum(sizes.values())
            small = sum(n for size, n in sizes.items() if size <= TINY_BATCH)
            if not names or small < 2 or small * 2 < total:
                continue
            batch = sizes.most_common(1)[0][0]
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            out.append(self.finding(
                f"{len(names)} BatchNorm layer(s) of {model} ({shown}) normalise over a per-rank batch of "
                f"{batch} sample(s) ({self.world} ranks, global batch {batch * self.world}): their statistics "
                "are computed per rank, on tiny batches",
                {"per_rank_batch": batch, "world_size": self.world, "global_batch": batch * self.world,
                 "batchnorm_layers": names[:16], "tiny": TINY_BATCH, "sampled_forwards": total},
                location=model, step=self.first.get(model)))
        return out

    def _record(self, event: Any) -> None:
        model = event.name
        if model not in self.bn:
            self.bn[model] = [self.state.module_name(m) for m in event.model.modules()
                              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                              and not isinstance(m, torch.nn.SyncBatchNorm)]
        if not self.bn[model]:
            return
        tensor = _first_tensor(event.args, 0)
        if tensor is None or tensor.dim() < 2:
            return
        size = int(tensor.shape[0])
        self.batches.setdefault(model, Counter())[size] += 1
        if size <= TINY_BATCH:
            self.first.setdefault(model, event.step)


@register
class AccumulationWithoutNoSync(Check):
    """Several backward calls per optimizer step on a DDP model, none of them under ``no_sync()``."""

    code = "distributed.accumulation-without-no-sync"
    needs = ("model_input", "backward", "step")
    sampled_only = frozenset({"model_input", "backward", "step"})
    step_phases = frozenset({"post"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.synced: dict[int, int] = {}  # step -> forwards of a DDP model that will all-reduce
        self.unsynced: dict[int, int] = {}
        self.backwards: dict[int, int] = {}
        self.model = ""
        self.hits = 0
        self.done = False

    def check(self, event: Any) -> Iterable[Finding]:
        if self.done:
            return ()
        kind = event.kind
        if kind == "model_input":
            flag = getattr(event.model, "require_backward_grad_sync", None)
            if isinstance(flag, bool) and event.training and event.grad_enabled:
                table = self.synced if flag else self.unsynced
                table[event.step] = table.get(event.step, 0) + 1
                self.model = event.name
        elif kind == "backward":
            self.backwards[event.step] = self.backwards.get(event.step, 0) + 1
        else:
            step = event.step
            synced, unsynced = self.synced.pop(step, 0), self.unsynced.pop(step, 0)
            backwards = self.backwards.pop(step, 0)
            if backwards >= 2 and synced >= 2 and not unsynced:
                self.hits += 1
                if self.hits >= 2:
                    self.done = True
                    return [self.finding(
                        f"{backwards} backward passes per optimizer step on {self.model} (DDP), each one "
                        "all-reducing the gradients: gradient accumulation without no_sync() communicates "
                        f"{backwards}x more than needed",
                        {"backwards_per_step": backwards, "model": self.model},
                        location=self.model)]
        return ()


@register
class LrNotScaled(Check):
    """Advice: the script's lr is not derived from the world size while the global batch grew."""

    code = "distributed.lr-not-scaled"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.world = _world_size()
        self.batch: int | None = None

    def inert(self) -> bool:
        return self.world < 2  # (a single process: no per-rank batch, no global one)

    def check(self, event: Any) -> Iterable[Finding]:
        if self.world < 2:
            return ()
        if event.kind == "model_input":
            tensor = _first_tensor(event.args, 0) if self.batch is None and event.training else None
            if tensor is not None and tensor.dim() >= 1:
                self.batch = int(tensor.shape[0])
            return ()
        script = sys.argv[0] if sys.argv else ""
        opts = list(self.state.optimizers.values())
        if not opts or not script.endswith(".py") or not os.path.isfile(script):
            return ()
        try:
            with open(script, encoding="utf-8") as fh:
                scaled = scales_with_world_size(fh.read())
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            return ()
        if scaled is not False:
            return ()
        lr = opts[0].lr
        global_batch = self.batch * self.world if self.batch else "world_size x the per-rank batch"
        return [self.finding(
            f"the lr ({lr}) does not depend on the world size: with {self.world} ranks the global batch is "
            f"{global_batch}; an lr tuned for one process may now be too small",
            {"lr": lr, "world_size": self.world, "per_rank_batch": self.batch, "global_batch": global_batch},
            location=opts[0].name)]


_WORLD_WORDS = ("world_size", "worldsize", "get_world_size", "num_replicas", "ngpus", "n_gpus", "num_gpus",
                "nprocs", "nproc", "num_processes", "num_nodes", "scale_lr")


def _mentions_world(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        word = (sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute)
                else sub.value if isinstance(sub, ast.Constant) and isinstance(sub.value, str) else None)
        if word is not None and (word in tainted or any(w in word.lower() for w in _WORLD_WORDS)):
            return True
    return False


def scales_with_world_size(source: str) -> bool | None:
    """Whether the script's lr (``lr=`` arguments, ``group["lr"] = ...``) is derived from the world size;
    None when the script sets no lr that can be read."""
    tree = ast.parse(source)
    tainted: set[str] = set()
    assigns = [n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))]
    changed = True
    while changed:  # names computed from the world size, transitively
        changed = False
        for node in assigns:
            if node.value is None or not _mentions_world(node.value, tainted):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else None
                    if name is not None and name not in tainted:
                        tainted.add(name)
                        changed = True
    lrs: list[ast.AST] = [kw.value for n in ast.walk(tree) if isinstance(n, ast.Call)
                          for kw in n.keywords if kw.arg == "lr"]
    for node in assigns:  # group["lr"] = ..., group["lr"] *= ...
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is not None and any(isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
                                          and t.slice.value == "lr" for t in targets):
            lrs.append(node.value)
    if not lrs:
        return None
    return any(_mentions_world(value, tainted) for value in lrs)
