"""Cheap per-rank fingerprints, compared across ranks after the run (no communication in the hot path).

On sampled steps only (the same optimizer steps on every rank: the schedule counts optimizer steps),
each rank records

* after ``optimizer.step``: a float64 sum and sum of squares of the optimizer's parameters, and one
  sum per parameter tensor (the first ones), keyed by the optimizer and its step count; and one sum
  per floating-point buffer of the models (running statistics change every forward; a buffer that
  stays constant on every rank yet differs across ranks was never broadcast);
* the batch it trained on: the shape and a few evenly spaced values of the model's first input;
* before ``optimizer.step``: the norm of the gradient the optimizer uses and the norm of this rank's
  own (local) gradient as autograd delivered it to each parameter, before any all-reduce (only on
  steps with one backward call, where the local gradient is exactly that contribution).

The records go to ``state.extra["distributed"]`` at the end of the run (hence into the facts of the
per-rank result); :mod:`nndoctor.distributed.compare` turns them into cross-rank findings. This
check itself reports nothing during the run: it declares the codes that the comparison emits.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.distributed.rankinfo import current_rank
from nndoctor.findings import Finding
from nndoctor.monitor.tensors import fsdp_sharded, is_sharded, local

__all__ = ["MAX_RECORDS", "RankFingerprints", "batch_fingerprint"]

#: sampled steps kept per record kind (the schedule samples ~8 + 1 in 50 steps)
MAX_RECORDS = 256
#: parameter tensors with their own checksum (the others count in the totals only)
MAX_PARAMS = 256
_VALUES = 8


def batch_fingerprint(value: Any) -> str | None:
    """The shape and a few evenly spaced values of the first tensor in ``value`` (a cheap hash)."""
    tensor = _first_tensor(value, 0)
    if tensor is None or tensor.numel() == 0:
        return None
    flat = tensor.detach().reshape(-1)
    n = flat.numel()
    idx = torch.linspace(0, n - 1, steps=min(_VALUES, n), device=flat.device).long()
    values = flat[idx].double().tolist() if flat.dtype != torch.bool else flat[idx].int().tolist()
    return f"{tuple(tensor.shape)}:" + ",".join(f"{v:.9g}" for v in values)


def _first_tensor(value: Any, depth: int) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if depth > 3:
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item, depth + 1)
            if found is not None:
                return found
    return None


@register
class RankFingerprints(Check):
    """Records fingerprints for the cross-rank comparison; off in a single-process run."""

    code = "distributed.replicas-diverged"
    needs = ("model_input", "grad", "backward", "step", "end")
    sampled_only = frozenset({"model_input", "grad", "backward", "step"})
    extra_codes = ("distributed.same-data-every-rank", "distributed.gradients-not-averaged")
    end_cost = -1  # the merge of the ranks compares what it records: never left out of the end of run

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        info = current_rank()
        self.on = info is not None and info.world_size > 1
        self.params: dict[str, list[Any]] = {}  # "opt:step" -> [sum, sumsq, [per-tensor sums]]
        self.param_names: dict[str, list[str]] = {}  # optimizer name -> the per-tensor names
        self.batches: dict[str, str] = {}  # str(step) -> batch fingerprint
        self.grads: dict[str, list[float]] = {}  # "opt:step" -> [local norm, used norm]
        self.buffers: dict[str, dict[str, float]] = {}  # "opt:step" -> {buffer name: sum}
        self._local: dict[int, float] = {}  # id(param) -> squared local grad norm, this step
        self._backwards: dict[int, int] = {}  # step -> backward calls seen
        self.sharded = False  # parameters sharded across ranks (FSDP): no parameter/gradient records
        self.optimizer_classes: dict[str, str] = {}  # optimizer name -> its class (does the gradient's scale count)

    def inert(self) -> bool:
        return not self.on  # (a single process: nothing to compare across ranks)

    def check(self, event: Any) -> Iterable[Finding]:
        if not self.on:
            return ()
        kind = event.kind
        if kind == "model_input":
            self._on_input(event)
        elif kind == "grad":
            self._local[id(event.param)] = self._local.get(id(event.param), 0.0) + _sq(event.grad)
        elif kind == "backward":
            self._backwards[event.step] = self._backwards.get(event.step, 0) + 1
        elif kind == "step":
            if event.phase == "pre":
                self._on_pre(event)
            else:
                self._on_post(event)
        elif kind == "end":
            self.state.extra["distributed"] = {
                "sharded": self.sharded, "params": self.params, "param_names": self.param_names,
                "batches": self.batches, "grads": self.grads, "buffers": self.buffers,
                "optimizer_classes": self.optimizer_classes}
        return ()

    def _on_input(self, event: Any) -> None:
        if not (event.training and event.grad_enabled and event.sampled):
            return
        key = str(event.step)
        if key in self.batches or len(self.batches) >= MAX_RECORDS:
            return
        fp = batch_fingerprint(event.args) or batch_fingerprint(event.kwargs)
        if fp is not None:
            self.batches[key] = fp

    def _on_pre(self, event: Any) -> None:
        local, self._local = self._local, {}
        if len(self.optimizer_classes) < MAX_PARAMS:
            self.optimizer_classes.setdefault(event.optimizer_name, type(event.optimizer).__name__)
        if self._backwards.get(event.step, 0) != 1 or len(self.grads) >= MAX_RECORDS or self.sharded:
            return
        used = local_sq = 0.0
        for group in event.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None and id(p) in local:
                    used += _sq(p.grad)
                    local_sq += local[id(p)]
        if local_sq > 0:
            self.grads[f"{event.optimizer_name}:{event.optimizer_step}"] = [local_sq ** 0.5, used ** 0.5]

    def _on_post(self, event: Any) -> None:
        self._local = {}
        self._backwards.pop(event.step - 1, None)
        if len(self.params) >= MAX_RECORDS:
            return
        params = [p for group in event.optimizer.param_groups for p in group["params"]]
        if not params or self.sharded:
            return
        if any(is_sharded(p) for p in params) or fsdp_sharded(m for _, m in self.state.live_models()):
            # FSDP / DTensor: each rank holds its own shard, equal checksums are not expected
            self.sharded = True
            self.params.clear()
            self.grads.clear()
            return
        sums = [float(p.detach().double().sum()) for p in params]
        sq = sum(_sq(p) for p in params)
        name = event.optimizer_name
        if name not in self.param_names:
            self.param_names[name] = [self.state.param_name(p) or f"param{i}"
                                      for i, p in enumerate(params[:MAX_PARAMS])]
        key = f"{name}:{event.optimizer_step}"
        self.params[key] = [sum(sums), sq, sums[:MAX_PARAMS]]
        buffers = {}
        for info, module in self.state.live_models():
            for bname, buf in module.named_buffers():
                if len(buffers) >= MAX_PARAMS:
                    break
                if buf.is_floating_point() and buf.numel():
                    buffers[f"{info.name}.{bname}"] = float(buf.detach().double().sum())
        if buffers:
            self.buffers[key] = buffers


def _sq(tensor: torch.Tensor) -> float:
    t = local(tensor).detach()
    if t.is_sparse:
        t = t.coalesce().values()
    return float(t.double().pow(2).sum())
