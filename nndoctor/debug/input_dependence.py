"""shape: what a model's per-sample prediction depends on, charted with backprop on a copy of a batch.

Two silent bugs show in what the output of one sample depends on (Karpathy's "use backprop to chart
dependencies"), not in any shape:

* :attr:`InputDependence.code`, ``shape.samples-mixed-across-batch``: a reshape / view / permute mixes
  samples: ``x.view(-1, N)`` or ``x.reshape(F, N).t()`` on an ``(N, F)`` tensor, ``(T, N, H)`` flattened as
  ``(N, T * H)`` without a transpose. Sample i's prediction is computed from pieces of other samples.
  Evidence: the gradient of one probed sample's output reaches the other samples' inputs (>= ``LEAK`` of
  it, for the first or the last probed sample), and the model is not equivariant to the order of the
  batch (rolling the batch by one sample does not roll the outputs): attention or pooling over a set of
  samples on purpose is symmetric and stays quiet, batch-norm is probed in eval mode, and a loss that
  compares samples (contrastive, ranking) is not looked at (the model's output is). An output with two
  dims of the batch's size (pairwise scores), a graph (an ``(N, N)`` argument or buffer) and per-position
  targets of a sequence model are not judged.
* ``shape.prediction-from-one-time-step``: a sequence model (a recurrent or attention layer inside) whose
  per-sample prediction depends on one time step of a ``T >= MIN_STEPS`` input: ``out[:, 0]`` of a
  batch_first output where the last step was meant, ``out[0]`` of a time-major output, a cell loop that
  reads ``x[:, 0]`` every step. Evidence: the gradient of both probed samples' outputs is exactly zero on
  every time step of their input but one, the same step. A bidirectional RNN read at step 0, a
  Transformer's CLS token, a last-step readout, pooling and per-position outputs reach every step.

The probe (:mod:`nndoctor.debug.dependence_probe`) runs after the optimizer step of a sampled training
step whose loss had targets of the batch's size; a finding needs ``MIN_PROBES`` probes (two batches)
that agree; a clean probe retires the check, so a healthy run pays for one probe.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.dependence_probe import FULL_ROWS, ROWS, SEQUENCE_MODULES, Dependence, probe
from nndoctor.findings import Finding
from nndoctor.monitor.events import LossCall, ModelInput
from nndoctor.monitor.tensors import is_integer

__all__ = ["InputDependence", "LEAK", "MIN_PROBES", "MIN_STEPS"]

logger = logging.getLogger("nndoctor")

LEAK = 0.05  # share of one sample's output gradient on the other samples' inputs
MIN_STEPS = 4
MIN_PROBES = 2
MAX_TRIES = 3  # probes that could not judge before the check gives up
#: more specific findings of the same mistake: the mixing is not reported again
_SPECIFIC = frozenset({"shape.rnn-batch-time-swapped", "shape.batch-fed-as-one-sequence",
                       "shape.attention-batch-seq-swapped"})


def _batch_dim(x: torch.Tensor, y: torch.Tensor) -> int | None:
    """The dim of the model's input that holds the loss's samples (dim 0, or 1 for sequence-first input)."""
    if y.dim() == 0 or x.dim() == 0:
        return None
    n0, n1 = x.shape[0], (x.shape[1] if x.dim() >= 2 else None)
    if n0 == n1:
        return None
    if y.shape[0] == n0:
        return 0
    # (T, N, ...) sequence-first; not (1, T, ...), one sequence with a target per step
    return 1 if y.shape[0] == n1 and n0 > 1 else None


def _graph_like(model: torch.nn.Module, n: int) -> bool:
    """A buffer or tensor attribute of shape (N, N): the batch is the node set of one graph (its adjacency)."""
    for m in model.modules():
        for t in (*m._buffers.values(), *vars(m).values()):
            if isinstance(t, torch.Tensor) and t.dim() == 2 and t.shape[0] == t.shape[1] == n:
                return True
    return False


class _Batch:
    """The copied rows of one training batch, with how they are laid out."""

    def __init__(self, model: torch.nn.Module, name: str, args: tuple[Any, ...], batch_dim: int, time_axis: bool,
                 shape: tuple[int, ...], step: int) -> None:
        self.model = weakref.ref(model)
        self.name, self.args, self.batch_dim, self.time_axis = name, args, batch_dim, time_axis
        self.shape, self.step = shape, step
        self.fingerprint = 0.0  # of the copied rows: the same batch at every step (full-batch training) or not


@register
class InputDependence(Check):
    """A sample's prediction that depends on other samples of the batch, or on one time step only."""

    code = "shape.samples-mixed-across-batch"
    extra_codes = ("shape.prediction-from-one-time-step",)
    needs = ("model_input", "loss", "step", "end")
    sampled_only = frozenset({"model_input", "loss", "step.post"})
    step_phases = frozenset({"post"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._input: tuple[int, weakref.ReferenceType[Any], str, tuple[Any, ...]] | None = None  # the latest
        self._batch: _Batch | None = None
        self._results: list[tuple[_Batch, Dependence]] = []
        self._tries = 0
        self._done = False

    def check(self, event: Any) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, ModelInput):
            self._on_input(event)
        elif isinstance(event, LossCall):
            self._on_loss(event)
        elif event.kind == "step":
            self._input = None
            return self._probe() if self._batch is not None else ()
        elif event.kind == "end":
            self._done, self._input = True, None
            return self._probe() if self._batch is not None else ()
        return ()

    def _on_input(self, event: ModelInput) -> None:
        self._input = None
        if not event.training or not event.grad_enabled or event.kwargs or not event.args:
            return
        x = event.args[0]
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.requires_grad or x.is_sparse:
            return  # (a computed tensor - a generator's output fed to a discriminator - is no data batch)
        # held until the loss of the same step (a batch indexed in the call, model(X[idx]), is freed after it)
        self._input = (event.step, weakref.ref(event.model), event.name, tuple(event.args))

    def _on_loss(self, event: LossCall) -> None:
        if self._input is None or self._input[0] != event.step or not event.grad_enabled:
            return
        step, model_ref, name, args = self._input
        self._input = None
        model, target = model_ref(), event.target
        if model is None or not isinstance(target, torch.Tensor):
            return
        x = args[0]
        dim = _batch_dim(x, target)
        if dim is None:
            return
        n = int(x.shape[dim])
        sequence = any(isinstance(m, SEQUENCE_MODULES) for m in model.modules())
        per_position = x.dim() >= 2 and target.dim() >= 2 and tuple(target.shape[:2]) == tuple(x.shape[:2])
        if per_position and (sequence or is_integer(x) or target.dim() < x.dim()):
            return  # (per-position targets of tokens or time steps: which dim is the batch is unclear)
        for a in args[1:]:
            if not isinstance(a, torch.Tensor):
                continue
            sized = [d for d in range(a.dim()) if a.shape[d] == n]
            if len(sized) > 1 or (sized and sized != [dim]) or (not sized and is_integer(a)) or a.is_sparse:
                return  # (an adjacency, edge indices, a state with its batch elsewhere: not one batch)
        if _graph_like(model, n):
            return
        rows = n if n <= FULL_ROWS else ROWS
        copied = tuple(a.detach().narrow(dim, 0, rows).clone() if isinstance(a, torch.Tensor) and a.dim() > dim
                       and a.shape[dim] == n else a for a in args)
        steps = int(x.shape[1 - dim]) if x.dim() >= 2 else 0
        time_axis = sequence and steps >= MIN_STEPS and (x.dim() == 3 and x.is_floating_point()
                                                         or x.dim() == 2 and is_integer(x))
        self._batch = _Batch(model, name, copied, dim, time_axis, tuple(x.shape), event.step)
        self._batch.fingerprint = float(copied[0].detach().double().sum()) if x.numel() else 0.0

    def _probe(self) -> list[Finding]:
        batch, self._batch = self._batch, None
        model = batch.model() if batch is not None else None
        if model is None or batch is None:
            return []
        locate = len(self._results) == 1 and _mixed(self._results[0][1])  # (confirming a mix: find where)
        result = probe(model, batch.args, 0, batch.batch_dim, batch.time_axis, locate=locate)
        logger.debug("input-dependence probe of %s at step %d: %s", batch.name, batch.step, result)
        if result is None:
            self._tries += 1
            if self._tries >= MAX_TRIES:
                self._retire()
            return []
        if result.rows == batch.shape[batch.batch_dim] and any(
                b.fingerprint == batch.fingerprint and b.shape == batch.shape for b, _ in self._results):
            # the whole batch (a slice could not run) and the same batch at every step: the batch may be
            # one graph or one set (a model with a fixed adjacency out of sight): not judged
            self._retire()
            return []
        self._results.append((batch, result))
        mixed = [r for _, r in self._results if _mixed(r)]
        one_step = [r for _, r in self._results if _one_step(r) is not None]
        if not mixed and not one_step:
            self._retire()  # a clean probe: the run looks healthy, no more probes
            return []
        if len(self._results) < MIN_PROBES:
            return []  # (one more batch to confirm)
        self._retire()
        if len(mixed) >= MIN_PROBES:
            return self._mixed_finding()
        steps = {_one_step(r) for r in one_step}
        if len(one_step) >= MIN_PROBES and len(steps) == 1:
            return self._one_step_finding()
        return []

    def _retire(self) -> None:
        self._done = True
        self._input = self._batch = None
        self.retire()

    def _mixed_finding(self) -> list[Finding]:
        batch, r = self._results[-1]
        if any(f.code in _SPECIFIC for f in _reported(self.state)):
            return []
        name = batch.name
        leak = max(res.leak for _, res in self._results)
        where, location = "", name
        evidence: dict[str, Any] = {}
        if r.boundary is not None:
            after, before = (f"{name}.{m}" for m in r.boundary)
            where, location = f" between {after} and {before} (or inside {before})", before
            evidence.update(mixed_after=after, mixed_before=before)
        msg = (f"{name}'s prediction for one sample depends on the other samples of its batch: backpropagating one "
               f"sample's output (of {r.output_shape}) to the input ({batch.shape}, samples along dim "
               f"{batch.batch_dim}) puts {leak:.0%} of the gradient on other samples' inputs, and rolling the batch by "
               f"one sample does not roll the outputs; a reshape/view/permute{where} interleaves samples "
               f"(x.view(-1, N) or x.reshape(F, N).t() on an (N, F) tensor, (T, N, H) flattened to (N, T*H) without "
               f"a transpose)")
        evidence.update({"model": name, "input_shape": batch.shape, "batch_dim": batch.batch_dim,
                         "rows_probed": r.rows, "output_shape": r.output_shape, "leak_share": round(leak, 4),
                         "probes": len(self._results), "steps": [b.step for b, _ in self._results]})
        return [self.finding(msg, evidence, location=location, step=self._results[0][0].step)]

    def _one_step_finding(self) -> list[Finding]:
        batch, r = self._results[-1]
        step = _one_step(r)
        t = r.seq_len
        where = "first step" if step == 0 else "last step" if step == t - 1 else "step"
        usual = ("out[:, 0] read where out[:, -1] was meant, out[0] of a time-major output where out[-1] was "
                 "meant, or a loop that reads x[:, 0] at every step" if step == 0 else
                 "a recurrent layer whose batch_first does not match its input, or a readout of one position")
        name = batch.name
        msg = (f"{name}'s prediction depends on one time step of its {t}-step input sequences: backpropagating a "
               f"sample's output (of {r.output_shape}) to its input ({batch.shape}) reaches the {where} "
               f"(index {step}) and no other, so the other {t - 1} steps are never read ({usual})")
        evidence = {"model": name, "input_shape": batch.shape, "batch_dim": batch.batch_dim, "seq_len": t,
                    "time_step": step, "output_shape": r.output_shape, "rows_probed": r.rows,
                    "probes": len(self._results), "steps": [b.step for b, _ in self._results]}
        return [self.finding(msg, evidence, location=name, code="shape.prediction-from-one-time-step",
                             step=self._results[0][0].step)]


def _mixed(r: Dependence) -> bool:
    return r.leak >= LEAK and r.equivariant is False


def _one_step(r: Dependence) -> int | None:
    """The one time step both probed samples' gradients reach, if so (and the samples do not mix)."""
    if r.single_steps is None or r.leak >= LEAK or r.seq_len < MIN_STEPS:
        return None
    steps = set(r.single_steps)
    return steps.pop() if len(steps) == 1 and -1 not in steps else None


def _reported(state: Any) -> list[Finding]:
    observer = getattr(state, "observer", None)
    sink = getattr(observer, "sink", None)
    return list(sink.findings()) if sink is not None else []
