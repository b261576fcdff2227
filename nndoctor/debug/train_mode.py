"""train-mode: dropout / batch-norm behaving in the wrong mode.

Two symptoms of the field guide's bug #4:

* optimizer steps taken while the trained model is in eval mode (``model.eval()`` for
  validation, never ``model.train()`` again): dropout is off and batch-norm normalises with
  its running statistics instead of the batch's;
* evaluation passes (forwards under ``torch.no_grad()`` / ``inference_mode`` not followed by
  a backward) of a trained model whose dropout / batch-norm modules are in train mode:
  running statistics absorb evaluation data and metrics are noisy.

Only models whose parameters are in an optimizer count: a teacher, EMA or target network
evaluated under ``no_grad`` is not "the model"; one input fed three or more times in a row
with dropout on (no batch-norm) is Monte-Carlo dropout, on purpose; and a GAN's generator (its output goes into a
discriminator that also sees real data) is sampled in train mode on purpose. Batch-norm or dropout inside a frozen part
of the network (intentionally frozen BN, a frozen backbone kept in eval) stays quiet.
The per-forward cost is a dictionary look-up and a flag test; the list of dropout and
batch-norm modules is computed once per model.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput, OpCall, RunEnd, StepEvent
from nndoctor.monitor.tensors import own_parameters, param_ids

__all__ = ["TrainMode"]

logger = logging.getLogger("nndoctor")

_DROPOUT_OPS = frozenset({"dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d",
                          "dropout3d"})
_MAX_NAMES = 6
_MAX_PROBES = 16  # training forwards per model whose input's producers are looked up
_MAX_GRAPH_NODES = 64  # autograd nodes walked per look-up
#: no-grad forwards of one input in a row, dropout on (no batch-norm): Monte-Carlo dropout, on purpose
MC_REPEATS = 3


def _names(items: Iterable[str]) -> str:
    items = list(items)
    text = ", ".join(items[:_MAX_NAMES])
    return text + (f" and {len(items) - _MAX_NAMES} more" if len(items) > _MAX_NAMES else "")


def _same_tensor(x: Any, first: Any) -> bool:
    """``x`` is ``first`` again (the same tensor, or equal values of the same shape)."""
    if x is first:
        return x is not None
    if not isinstance(x, torch.Tensor) or not isinstance(first, torch.Tensor) or x.shape != first.shape:
        return False
    try:
        return bool(torch.equal(x, first))
    except RuntimeError:
        return False


def _mode_sensitive(module: nn.Module) -> bool:
    """Dropout with p > 0, or a norm layer that keeps running statistics."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return float(module.p) > 0
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return bool(module.track_running_stats)
    return False


def _flag_on_root_only(model: nn.Module, flag: bool) -> bool:
    """``model.training = flag`` was assigned on the model itself: every submodule still holds the
    other flag (``train()`` / ``eval()`` set all of them; a deliberate partial switch, MC dropout
    or BatchNorm frozen for fine-tuning, leaves the plain layers with the model's flag)."""
    children = [m for m in model.modules() if m is not model]
    return bool(children) and all(m.training is (not flag) for m in children)


@dataclass
class _Model:
    ref: weakref.ReferenceType[nn.Module]
    name: str
    sensitive: list[tuple[str, weakref.ReferenceType[nn.Module]]]
    parents: dict[int, weakref.ReferenceType[nn.Module]]
    params: set[int]
    eval_step: int | None = None  # step of the latest grad-enabled forward in eval mode
    eval_since: int | None = None
    last_train_step: int | None = None  # latest grad-enabled forward in train mode
    nograd_run: int = 0  # no-grad forwards in train mode since the last backward
    nograd_first: int = 0
    nograd_backwards: int = 0
    pending: bool = False
    key: int = 0  # id() of the model when it was seen
    nograd_on: list[str] = field(default_factory=list)  # modules in train mode at a no-grad forward
    bn_names: set[str] = field(default_factory=set)
    functional_off: set[str] = field(default_factory=set)
    fed_by: set[int] = field(default_factory=set)  # keys of trained models whose output it takes
    data_fed: bool = False  # it also takes inputs that no model made (data, or a detached fake)
    probes: int = 0
    root_only: bool = False  # the mode was set as an attribute on the model only (model.training = ...)
    first_input: Any = None  # the input of the first no-grad forward in train mode (while it may repeat)
    same_input: int = 0  # no-grad forwards in a row, from the first, that took that same input
    mc_wait: bool = False  # two no-grad forwards of one input, dropout only: Monte-Carlo dropout if more follow
    mc: bool = False  # Monte-Carlo dropout recognised: train-mode evaluation on purpose


@register
class TrainMode(Check):
    """Training with dropout/BN in eval mode, or evaluating with them in train mode."""

    code = "train-mode.training-in-eval-mode"
    needs = ("model_input", "eval_input", "op", "backward", "step", "end")
    step_phases = frozenset({"pre"})
    # training forwards and steps are judged on sampled steps; forwards without gradient (the
    # evaluation loops) arrive as eval_input on every step
    sampled_only = frozenset({"model_input", "backward", "step"})
    ops = _DROPOUT_OPS
    extra_codes = ("train-mode.eval-in-train-mode",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._models: dict[int, _Model] = {}
        self._reported_eval: set[int] = set()
        self._trained: set[int] = set()  # ids of models with parameters in an optimizer
        self._opt_seen: dict[int, int] = {}  # optimizer id -> number of models when last mapped
        self._last_grad_model = 0  # id of the model of the latest grad-enabled forward

    # ------------------------------------------------------------------ events
    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "eval_input" or (kind == "model_input" and event.grad_enabled):
            return self._on_forward(event)
        if kind == "model_input":
            return ()  # a forward without gradient: it also arrives as eval_input
        if kind == "backward":
            for m in self._models.values():
                m.nograd_run = 0
            if not self.state.optimizers and self._last_grad_model:
                self._trained.add(self._last_grad_model)  # trained by a manual update loop
            return ()
        if kind == "op":
            self._on_dropout_op(event)
            return ()
        if kind == "step" and event.phase == "pre":
            return self._on_step(event)
        if kind == "end":
            return self._on_end(event)
        return ()

    def _info(self, model: nn.Module, name: str) -> _Model:
        info = self._models.get(id(model))
        if info is None or info.ref() is not model:
            sensitive, parents = [], {}
            for path, mod in model.named_modules():
                for child in mod.children():
                    parents.setdefault(id(child), weakref.ref(mod))
                if _mode_sensitive(mod):
                    sensitive.append((f"{name}.{path}" if path else name, weakref.ref(mod)))
            info = _Model(ref=weakref.ref(model), name=name, sensitive=sensitive, parents=parents,
                          params={id(p) for p in model.parameters()}, key=id(model),
                          bn_names={n for n, r in sensitive
                                    if isinstance(r(), nn.modules.batchnorm._NormBase)})
            self._models[id(model)] = info
        return info

    def _on_forward(self, event: ModelInput) -> list[Finding]:
        info = self._info(event.model, event.name)
        if event.grad_enabled:
            self._last_grad_model = info.key
            if info.probes < _MAX_PROBES and len(self._models) > 1:
                self._note_producers(info, event)
            training = event.training
            if (training and info.sensitive and not any((m := r()) is not None and m.training for _, r in info.sensitive)
                    and _flag_on_root_only(event.model, True)):
                training, info.root_only = False, True  # model.training = True: its layers stay in eval
            if training:
                info.last_train_step, info.eval_since = event.step, None
            else:
                info.eval_step = event.step
                if info.eval_since is None:
                    info.eval_since = event.step
            return []
        if not info.sensitive:
            return []
        if not event.training:
            if not any((m := r()) is not None and m.training for _, r in info.sensitive):
                return []
            if not _flag_on_root_only(event.model, False):
                return []  # switched to eval with a few layers left on on purpose (MC dropout)
            info.root_only = True  # model.training = False: its layers are still in train mode
        found: list[Finding] = []
        if info.nograd_run and info.nograd_backwards != self.state.backward_calls:
            found = self._settle(info)
            info.nograd_run = 0  # a backward ran since (unsampled backwards are not events here)
        info.nograd_run += 1
        x = event.args[0] if event.args else None
        if info.nograd_run == 1:
            info.nograd_first = event.step
            info.nograd_backwards = self.state.backward_calls
            info.nograd_on = [name for name, ref in info.sensitive if (m := ref()) is not None and m.training]
            info.first_input, info.same_input = (x if isinstance(x, torch.Tensor) else None), 1
            return found
        if info.same_input == info.nograd_run - 1 and _same_tensor(x, info.first_input):
            info.same_input += 1
        if info.mc:
            return found
        if info.nograd_run == 2:
            if info.same_input == 2 and not any(name in info.bn_names for name in info.nograd_on):
                info.mc_wait = True  # one input twice, dropout only: wait for a third (Monte-Carlo dropout)
                return found
            info.first_input = None
            return found + self._eval_in_train(info)
        if info.mc_wait and info.same_input >= MC_REPEATS:
            info.mc_wait, info.mc, info.first_input = False, True, None
            logger.debug("train-mode: %s: %d no-grad forwards of one input in train mode: Monte-Carlo dropout",
                         info.name, info.same_input)
        elif info.mc_wait and info.same_input < info.nograd_run:
            found += self._settle(info)  # two of one input, then another: an evaluation loop
        return found

    def _settle(self, info: _Model) -> list[Finding]:
        """A wait for Monte-Carlo dropout that ended without a third repeat: an evaluation in train mode."""
        if not info.mc_wait:
            return []
        info.mc_wait, info.first_input = False, None
        return self._eval_in_train(info)

    # ------------------------------------------------------------------ generators (GANs)
    def _note_producers(self, info: _Model, event: ModelInput) -> None:
        """Which other models made this training forward's input (found through its graph)."""
        x = event.args[0] if event.args else None
        if not isinstance(x, torch.Tensor):
            return
        info.probes += 1
        if x.grad_fn is None:
            info.data_fed = True
            return
        owners = {pid: key for key, m in self._models.items() if key != info.key for pid in m.params}
        stack, seen = [x.grad_fn], 0
        while stack and seen < _MAX_GRAPH_NODES:
            node = stack.pop()
            seen += 1
            var = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf parameter
            if var is not None:
                if id(var) in owners:
                    info.fed_by.add(owners[id(var)])
                    return
                continue
            stack.extend(n for n, _ in node.next_functions if n is not None)

    def _generator(self, info: _Model) -> bool:
        """A model whose output another model takes beside inputs no model made: a GAN's generator
        feeding the discriminator (which also sees real data). Sampling it in train mode under
        no_grad is how GANs are shown (batch statistics, as in training), not a validation bug."""
        return any(info.key in m.fed_by and m.data_fed for m in self._models.values())

    def _on_dropout_op(self, event: OpCall) -> None:
        args, kw = event.args, event.kwargs
        x = args[0] if args else kw.get("input")
        # checks run under no_grad: an input with a grad_fn marks a training forward
        if not event.module or not isinstance(x, torch.Tensor) or x.grad_fn is None:
            return
        p = kw.get("p", args[1] if len(args) > 1 else 0.5)
        training = kw.get("training", args[2] if len(args) > 2 else True)
        if isinstance(p, (int, float)) and p > 0 and training is False:
            root = event.module.split(".", 1)[0]
            for info in self._models.values():
                # nn.Dropout modules call F.dropout too: they are judged as modules (frozen parts)
                if (info.name == root and len(info.functional_off) < 32
                        and all(event.module != n for n, _ in info.sensitive)):
                    info.functional_off.add(event.module)

    # ------------------------------------------------------------------ training in eval mode
    def _frozen_region(self, info: _Model, module: nn.Module) -> bool:
        """True if ``module`` sits in a part of the network whose parameters are all frozen."""
        own = list(own_parameters(module))
        if own:
            return not any(p.requires_grad for p in own)
        ref = info.parents.get(id(module))
        while ref is not None:
            parent = ref()
            if parent is None:
                return False
            params = list(parent.parameters())
            if params:
                return not any(p.requires_grad for p in params)
            ref = info.parents.get(id(parent))
        return False

    def _map_optimizer(self, opt: torch.optim.Optimizer) -> None:
        """Remember which models ``opt`` trains (again only when new models appeared)."""
        if self._opt_seen.get(id(opt)) == len(self._models):
            return
        self._opt_seen[id(opt)] = len(self._models)
        ids = param_ids(opt)
        self._trained.update(mid for mid, info in self._models.items() if info.params & ids)

    def _on_step(self, event: StepEvent) -> list[Finding]:
        self._map_optimizer(event.optimizer)
        found = self._pending()
        stale = [i for i in self._models.values() if i.eval_step == event.step]
        if not stale:
            return found
        opt_params = param_ids(event.optimizer)
        for info in stale:
            model = info.ref()
            if model is None or (model.training and not info.root_only) or not (info.params & opt_params):
                continue
            off = [name for name, ref in info.sensitive
                   if (m := ref()) is not None and not m.training and not self._frozen_region(info, m)]
            off += sorted(n for n in info.functional_off if n not in off)
            if not off:
                continue
            if info.root_only and model.training:
                since = "never" if info.last_train_step is None else f"at step {info.last_train_step}"
                how = (f"{info.name}.training = True was assigned on the model only; its layers keep the "
                       f"eval mode: call {info.name}.train()")
            elif info.last_train_step is None:
                since, how = "never", f"{info.name} is in eval mode from the first training step"
            else:
                since = f"at step {info.last_train_step}"
                how = (f"{info.name}.eval() was called after step {info.last_train_step} (probably for "
                       f"validation) and {info.name}.train() was never called again")
            by_name = {n: r() for n, r in info.sensitive}
            kinds = {"bn" if isinstance(by_name.get(n), nn.modules.batchnorm._NormBase) else "dropout"
                     for n in off}  # names not in by_name come from functional dropout
            effect = " and ".join(e for k, e in (("dropout", "dropout is off"),
                                                 ("bn", "batch-norm normalises with running statistics"))
                                  if k in kinds)
            ev = {"model": info.name, "optimizer": event.optimizer_name, "modules": _names(off),
                  "module_list": off, "eval_since_step": info.eval_since, "since": since,
                  "last_train_mode_step": info.last_train_step,
                  "batch_norm": sorted(n for n in off if n in info.bn_names)}
            found.append(self.finding(
                f"{event.optimizer_name} trains {info.name} while it is in eval mode since step "
                f"{info.eval_since}: in {_names(off)} {effect}, as at inference; {how}",
                ev, location=info.name, step=info.eval_since))
        return found

    # ------------------------------------------------------------------ evaluating in train mode
    def _eval_in_train(self, info: _Model) -> list[Finding]:
        if id(info) in self._reported_eval:
            return []
        if not self.state.optimizers and info.key not in self._trained:
            info.pending = True
            return []
        info.pending = False
        logger.debug("train-mode: %s ran %d no-grad forward(s) in train mode", info.name, info.nograd_run)
        if info.key not in self._trained and not info.params & self.state.optimizer_params():
            return []  # a teacher / EMA / target network: not trained by any optimizer
        on = info.nograd_on
        if not on or self._generator(info):
            return []
        self._reported_eval.add(id(info))
        bn = sum(1 for name in on if name in info.bn_names)
        effect = ("batch-norm running statistics absorb the evaluation data" if bn else "")
        if len(on) > bn:
            effect = (effect + " and " if effect else "") + "dropout makes the metrics noisy"
        done = info.nograd_first - 1
        when = f"after step {done}" if done > 0 else "before the first training step"
        if not self.state.optimizers and info.nograd_backwards:
            when = f"after {info.nograd_backwards} backward passes"
        ev = {"model": info.name, "modules": _names(on), "module_list": on, "step": info.nograd_first,
              "nograd_forwards": info.nograd_run, "flag_on_model_only": info.root_only}
        model = info.ref()
        how = (f"; {info.name}.training = False was assigned on the model only (its submodules keep train "
               f"mode): call {info.name}.eval()" if info.root_only and model is not None and not model.training else "")
        return [self.finding(
            f"{info.name} is evaluated under torch.no_grad() {when} while {_names(on)} are in train mode "
            f"({info.nograd_run} forward pass(es) without a backward): {effect}{how}",
            ev, location=info.name, code="train-mode.eval-in-train-mode", step=info.nograd_first)]

    def _pending(self) -> list[Finding]:
        found: list[Finding] = []
        for info in self._models.values():
            if info.pending:
                found += self._eval_in_train(info)
        return found

    def _on_end(self, event: RunEnd) -> list[Finding]:
        if event.reason == "crash":
            return []
        found = []
        for info in self._models.values():
            if info.mc:
                continue  # Monte-Carlo dropout: train mode under no_grad on purpose
            if info.nograd_run and info.nograd_backwards != self.state.backward_calls:
                # a backward ran after these no-grad forwards (unsampled backwards are no events here):
                # they made training targets (pseudo-labels, a mask), as during the run
                found += self._settle(info)
                info.nograd_run = 0
            if info.nograd_run >= 1 or info.pending:
                info.mc_wait, info.first_input = False, None
                found += self._eval_in_train(info)
        return found
