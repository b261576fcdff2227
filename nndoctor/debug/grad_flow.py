"""grad-flow: parameters that never get a gradient or are never updated.

One check follows the whole chain from the forward pass to the optimizer update and
reports where it breaks:

* the loss does not depend on any parameter (graph cut by ``.detach()``, ``.item()``,
  numpy round trips, ``torch.tensor(pred, requires_grad=True)``): error at the first step;
* every gradient is exactly zero (rounded or arg-maxed predictions, softmax over one unit);
* the optimizer holds parameters that never get a gradient while the model's do
  (optimizer built over another model instance): error;
* modules used in the training forward whose parameters never get a gradient while
  others do (a branch detached, run under ``no_grad`` or left out of the loss), or while
  other optimizers' parameters do when none of this optimizer's ever does (a GAN generator
  whose output is detached for its own loss too): warning;
* parameters that get gradients but are in no optimizer: warning (info when only an
  earlier, feature-extracting part of the network is affected);
* ``optimizer.step()`` that leaves parameters unchanged although they have gradients
  (lr 0): error; backward passes without any ``optimizer.step()`` and without a manual
  update: error;
* the output layer, or layers in the middle of a trainable stack, frozen by
  ``requires_grad=False`` (a frozen backbone with a trainable head stays quiet);
* an optimizer that holds only parameters with ``requires_grad=False`` at every examined
  step (the whole model frozen, or the optimizer built over the frozen part): error, as
  nothing it holds can ever be updated.

Gradients are read from ``.grad`` at the optimizer's pre-step hook (cheap attribute
reads, only on the first steps of each optimizer and on sampled steps) and from the
observer's grad hooks; module order and use come from sampled ``module_output`` events.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.debug.grad_cut import CUT_OPS, ZERO_DERIVATIVE_OPS, Cut, CutLog
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import (
    BackwardCall,
    GradContribution,
    ModelInput,
    ModuleOutput,
    OpCall,
    RunEnd,
    StepEvent,
)
from nndoctor.monitor.observer import user_site
from nndoctor.monitor.tensors import all_zero, local, local_grad, own_parameters

__all__ = ["GradFlow"]

logger = logging.getLogger("nndoctor")

#: torch calls that cut a tensor out of the autograd graph (or make a new leaf)
_CUT_OPS = frozenset({"detach", "numpy", "item", "tolist", "tensor", "as_tensor", "from_numpy",
                      "requires_grad_", "get"})
#: layers that are commonly frozen on purpose (pre-trained embeddings, frozen norms)
_SKIP_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Embedding,
                nn.EmbeddingBag)
#: losses that are exactly 0, with zero gradients, once every example meets the margin
_MARGIN_LOSSES = frozenset({"triplet_margin_loss", "margin_ranking_loss", "hinge_embedding_loss",
                            "multi_margin_loss", "multilabel_margin_loss", "cosine_embedding_loss",
                            "triplet_margin_with_distance_loss"})
_FIRST_STEPS = 8  # every step of an optimizer is examined up to here, then sampled ones only
_DECIDE_AFTER = 4  # examined steps of an optimizer before judging never-a-gradient cases
_MAX_NAMES = 6
_RANDOM_STD = (0.8, 1.2)  # weight std / the std of PyTorch's default uniform init that still counts as it


def _random_init(mods: Iterable[nn.Module]) -> bool:
    """Every weight matrix of these modules still holds PyTorch's default random init
    (kaiming_uniform(a=sqrt(5)): uniform within 1/sqrt(fan_in)), i.e. was never trained nor loaded."""
    seen = False
    with torch.no_grad():
        for mod in mods:
            for p in own_parameters(mod):
                if p.dim() < 2 or not p.is_floating_point() or p.numel() < 16:
                    continue
                bound = 1.0 / float(p[0].numel()) ** 0.5
                w = p.detach().float()
                std = float(w.std())
                if float(w.abs().max()) > bound * (1 + 1e-5) or not (
                        _RANDOM_STD[0] * bound / 3 ** 0.5 <= std <= _RANDOM_STD[1] * bound / 3 ** 0.5):
                    return False
                seen = True
    return seen


def _names(items: Iterable[str]) -> str:
    items = list(items)
    text = ", ".join(items[:_MAX_NAMES])
    return text + (f" and {len(items) - _MAX_NAMES} more" if len(items) > _MAX_NAMES else "")


def _opt_params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in opt.param_groups for p in g["params"] if isinstance(p, torch.Tensor)]


@register
class GradFlow(Check):
    """Where the chain loss -> gradients -> optimizer update breaks."""

    code = "grad-flow.no-gradient"
    needs = ("model_input", "module_output", "op", "grad", "backward", "step", "end", "loss")
    # everything is judged from sampled steps (scripts without an optimizer get every backward)
    sampled_only = frozenset({"model_input", "backward", "step"})
    ops = _CUT_OPS | CUT_OPS
    extra_codes = (
        "grad-flow.non-differentiable-op",
        "grad-flow.loss-detached",
        "grad-flow.all-gradients-zero",
        "grad-flow.optimizer-wrong-params",
        "grad-flow.params-not-in-optimizer",
        "grad-flow.step-never-called",
        "grad-flow.params-not-updated",
        "grad-flow.frozen-output-layer",
        "grad-flow.optimizer-frozen-params",
        "grad-flow.frozen-middle-layers",
    )

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._pmod: dict[int, tuple[int, str]] = {}  # param id -> (module id, module path)
        self._mods: dict[int, weakref.ReferenceType[nn.Module]] = {}  # modules with own params
        self._mod_root: dict[int, str] = {}  # module id -> root model name
        self._seen_roots: set[int] = set()
        self._root_training: dict[str, bool] = {}
        self._order: dict[int, int] = {}  # module id -> first execution index (grad forward)
        self._used: set[int] = set()  # module ids run inside a grad-enabled root forward
        self._nograd_inside: list[str] = []
        self._root_grad = True
        self._nograd_forward = ""  # a root model run under no_grad in this step, before backward
        self._got_grad: set[int] = set()  # param ids that ever got a gradient
        self._grad_in_step = False
        self._ever_trainable: set[int] = set()
        self._checked: dict[int, int] = {}  # optimizer id -> examined steps
        self._decided: set[int] = set()
        self._nograd_steps: dict[int, int] = {}
        self._zero_steps: dict[int, int] = {}
        self._zero_at_zero_loss: dict[int, bool] = {}  # the loss was exactly 0 at each of those steps
        self._outputs: dict[int, tuple[weakref.ReferenceType[torch.Tensor], str]] = {}
        self._cuts: list[dict[str, Any]] = []  # graph cuts seen in this step before backward
        self._cuts_log: list[dict[str, Any]] = []  # cuts applied to a module's output, whole run
        self._backward_in_step = False
        self._snap: dict[int, list[tuple[weakref.ReferenceType[torch.Tensor], torch.Tensor, torch.Tensor]]] = {}
        self._unchanged: dict[int, int] = {}
        self._changed: set[int] = set()
        self._lr_seen: dict[int, list[float]] = {}
        self._manual_snap: list[tuple[weakref.ReferenceType[torch.Tensor], torch.Tensor]] | None = None
        self._not_in_opt: set[int] = set()
        self._outside_grads: dict[int, tuple[int, int, float]] = {}  # param id -> how its .grad looked
        self._loss_names: set[str] = set()  # the torch loss functions of the training forwards
        self._manual_update = False
        self._opt_trainable: set[int] = set()  # optimizers seen holding a trainable parameter
        self._cutlog = CutLog()  # round/sign/argmax/comparisons applied to tensors with a graph
        self._nonzero: set[int] = set()  # param ids whose .grad was ever seen with a non-zero entry
        self._zero_seen: dict[int, int] = {}  # param id -> examined steps with an all-zero .grad

    # ------------------------------------------------------------------ dispatch
    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "module_output":
            self._on_module(event)
        elif kind == "grad":
            self._on_grad(event)
        elif kind == "model_input":
            self._on_model(event)
        elif kind == "op":
            self._on_op(event)
        elif kind == "loss":
            if event.grad_enabled and len(self._loss_names) < 8:
                self._loss_names.add(event.name)
        elif kind == "backward":
            self._on_backward(event)
        elif kind == "step":
            return self._on_step_pre(event) if event.phase == "pre" else self._on_step_post(event)
        elif kind == "end":
            return self._on_end(event)
        return ()

    # ------------------------------------------------------------------ forward side
    def _on_model(self, event: ModelInput) -> None:
        self._root_grad = event.grad_enabled
        if not event.grad_enabled and not self._backward_in_step:
            self._nograd_forward = event.name
        if event.grad_enabled:
            self._root_training[event.name] = event.training
        if id(event.model) in self._seen_roots:
            return
        self._seen_roots.add(id(event.model))
        for path, module in event.model.named_modules():
            own = list(own_parameters(module))
            if not own or id(module) in self._mods:
                continue
            name = f"{event.name}.{path}" if path else event.name
            self._mods[id(module)] = weakref.ref(module)
            self._mod_root[id(module)] = event.name
            for p in own:
                self._pmod.setdefault(id(p), (id(module), name))

    def _on_module(self, event: ModuleOutput) -> None:
        if not (self._root_grad or event.grad_enabled):
            return
        out = event.output
        if isinstance(out, torch.Tensor) and out.requires_grad and len(self._outputs) < 512:
            self._outputs[id(out)] = (weakref.ref(out), event.name)
        mid = id(event.module)
        if mid not in self._mods:
            return
        self._used.add(mid)
        self._order.setdefault(mid, len(self._order))
        if not event.grad_enabled and event.name not in self._nograd_inside and len(self._nograd_inside) < 64:
            self._nograd_inside.append(event.name)

    def _on_op(self, event: OpCall) -> None:
        # (checks run under no_grad: a tensor with a grad_fn tells that its graph is being built)
        name, args = event.name, event.args
        if name in CUT_OPS:
            if not self._backward_in_step:
                self._cutlog.record(name, args, event.result, event.module, user_site, event.step)
            return
        if self._backward_in_step or len(self._cuts) >= 16:
            return
        if name == "get" and getattr(getattr(event.func, "__self__", None), "__name__", "") != "data":
            return
        src = args[0] if args else None
        if name in ("tensor", "as_tensor", "from_numpy", "requires_grad_"):
            res = event.result
            if not (isinstance(res, torch.Tensor) and res.requires_grad and res.is_leaf
                    and not isinstance(res, nn.Parameter)):
                return
            src = res
            label = "torch.tensor(..., requires_grad=True)" if name != "requires_grad_" else ".requires_grad_()"
        else:
            if not (isinstance(src, torch.Tensor) and src.requires_grad
                    and (src.grad_fn is not None or isinstance(src, nn.Parameter))):
                return
            label = ".data" if name == "get" else f".{name}()"
        entry = self._outputs.get(id(src))
        of = entry[1] if entry is not None and entry[0]() is src else ""
        is_param = isinstance(src, nn.Parameter) and id(src) in self._pmod
        if is_param:
            of = self._pmod[id(src)][1]
        cut = {"op": label, "module": event.module, "output_of": of, "shape": tuple(src.shape),
               "site": user_site(), "ref": weakref.ref(src), "leaf": src is event.result,
               "what": "weights" if is_param else "output"}
        self._cuts.append(cut)
        if of and len(self._cuts_log) < 16:
            self._cuts_log.append(cut)

    def _on_grad(self, event: GradContribution) -> None:
        self._got_grad.add(id(event.param))
        self._grad_in_step = True

    def _on_backward(self, event: BackwardCall) -> None:
        # reading the loss itself (loss.item() for logging) cuts nothing
        self._cuts = [c for c in self._cuts if c["leaf"] or c["ref"]() is not event.tensor]
        if self._cutlog.pending:
            self._cutlog.confirm(event.tensor)
        self._backward_in_step = True
        if self._manual_snap and not self._manual_update and not self.state.optimizers:
            self._manual_update = self._weights_changed()
        if self._manual_snap is None and not self.state.optimizers:
            snap = []
            for ref in list(self.state.param_refs.values())[:16]:
                p = ref()
                if p is not None and p.requires_grad and local(p).numel():
                    snap.append((ref, local(p).detach().reshape(-1)[:64].clone()))
            self._manual_snap = snap

    # ------------------------------------------------------------------ optimizer side
    def _on_step_pre(self, event: StepEvent) -> list[Finding]:
        oid = id(event.optimizer)
        if not (event.sampled or event.optimizer_step <= _FIRST_STEPS):
            return []
        self._checked[oid] = self._checked.get(oid, 0) + 1
        params = _opt_params(event.optimizer)
        if oid not in self._opt_trainable and any(p.requires_grad for p in params):
            self._opt_trainable.add(oid)
        in_opts = self.state.optimizer_params()
        with_grad = [p for p in params if p.grad is not None]
        self._got_grad.update(id(p) for p in with_grad)
        for mid, ref in self._mods.items():
            mod = ref()
            if mid not in self._ever_trainable and mod is not None and any(
                    p.requires_grad for p in own_parameters(mod)):
                self._ever_trainable.add(mid)
        others = []
        anywhere = self._grad_in_step or bool(with_grad)
        for pid, ref in self.state.param_refs.items():
            p = ref()
            if p is not None and p.grad is not None:
                anywhere = True
                if pid not in in_opts and self._grad_moved(pid, p.grad):
                    others.append(pid)
                    self._got_grad.add(pid)
        self._not_in_opt.update(others)
        found: list[Finding] = []
        info = self.state.optimizers.get(oid)
        fresh = self.state.backward_calls > ((info.backwards_at_post if info is not None else None) or 0)
        if fresh:
            self._zero_grads(with_grad)
            found += self._no_grad_at_all(event, params, with_grad, others, anywhere)
            self._snapshot(event, with_grad)
        if self._checked[oid] >= _DECIDE_AFTER and oid not in self._decided and self._ready():
            self._decided.add(oid)
            found += self._decide(event.optimizer, event.optimizer_name)
        return found

    def _on_step_post(self, event: StepEvent) -> list[Finding]:
        oid = id(event.optimizer)
        self._cuts.clear()
        self._cutlog.pending.clear()
        self._outputs.clear()
        self._nograd_forward = ""
        self._backward_in_step = False
        self._grad_in_step = False
        snaps = self._snap.pop(oid, None)
        if not snaps or oid in self._changed:
            return []
        for ref, idx, before in snaps:
            p = ref()
            if p is not None and not torch.equal(local(p).detach().reshape(-1)[idx], before):
                self._changed.add(oid)
                return []
        self._unchanged[oid] = self._unchanged.get(oid, 0) + 1
        if self._unchanged[oid] != 3:
            return []
        lrs = self._lr_seen.get(oid, [])
        names = [self.state.param_name(ref()) for ref, _, _ in snaps if ref() is not None]
        lr_text = ", ".join(f"{lr:g}" for lr in lrs[-3:]) or "?"
        why = "the learning rate is 0" if lrs and max(lrs) == 0 else (
            "the updates are too small to change float32 weights, or the step skips these parameters")
        ev = {"optimizer": event.optimizer_name, "lr": lr_text, "params": names,
              "steps_unchanged": self._unchanged[oid]}
        return [self.finding(
            f"{event.optimizer_name}.step() leaves the weights unchanged: {_names(names)} have non-zero "
            f"gradients but kept their values over {self._unchanged[oid]} steps (lr {lr_text}): {why}",
            ev, location=event.optimizer_name, code="grad-flow.params-not-updated", severity=Severity.ERROR)]

    def _snapshot(self, event: StepEvent, with_grad: list[torch.Tensor]) -> None:
        oid = id(event.optimizer)
        if oid in self._changed or self._unchanged.get(oid, 0) >= 3:
            return
        self._lr_seen.setdefault(oid, []).append(
            max(float(g.get("lr", 0.0)) for g in event.optimizer.param_groups))
        snaps = []
        n = len(with_grad)
        # first, middle and last parameters: the output layer still moves when early layers'
        # gradients vanish; the largest gradient entries are the ones that must move
        for i in sorted({0, n // 3, (2 * n) // 3, n - 1}) if n else ():
            p = with_grad[i]
            g = local_grad(p)  # (sharded parameters: this rank's shard)
            if g is None or g.is_sparse or not g.is_floating_point() or not g.numel():
                continue
            mag, idx = g.detach().abs().reshape(-1).topk(min(32, g.numel()))
            idx = idx[mag > 0]
            if idx.numel():
                snaps.append((weakref.ref(p), idx, local(p).detach().reshape(-1)[idx].clone()))
        self._snap[oid] = snaps

    def _ready(self) -> bool:
        """Every known optimizer has been examined at least twice (GANs have two)."""
        return all(self._checked.get(id(o), 0) >= 2 for _, o in self.state.live_optimizers())

    def _cause(self) -> str:
        parts = []
        for c in self._cuts[:3]:
            where = f" on the {c['what']} of {c['output_of']}" if c["output_of"] else (
                f" inside {c['module']}" if c["module"] else "")
            parts.append(f"{c['op']}{where} at {c['site']} (shape {c['shape']})")
        if not parts and self._nograd_forward:
            parts.append(f"running {self._nograd_forward} under torch.no_grad() / inference_mode "
                         f"(its output carries no graph)")
        return ", then ".join(parts)

    def _margin_met(self, oid: int) -> bool:
        """The loss is a margin (hinge) loss that every example satisfies: it is exactly 0 at its
        minimum, with zero gradients, because nothing is left to learn (triplets already apart).
        The loss is read at the zero-gradient steps themselves: those are sampled steps, and the
        steps between them may have had a few triplets left to push apart (a loss just above 0)."""
        if not self._loss_names <= _MARGIN_LOSSES:
            return False  # (no torch loss seen: a hand-written hinge, clamp(margin - d, min=0))
        return self._zero_at_zero_loss.get(oid, False)

    def _no_grad_at_all(self, event: StepEvent, params: list[torch.Tensor],
                        with_grad: list[torch.Tensor], others: list[int], anywhere: bool) -> list[Finding]:
        oid, name = id(event.optimizer), event.optimizer_name
        trainable = [p for p in params if p.requires_grad]
        if not trainable:
            return []
        if with_grad:
            # this rank's shards (an empty one tells nothing; no collective on a sharded gradient)
            dense = [g for p in with_grad if (g := local_grad(p)) is not None and not g.is_sparse and g.numel()]
            if dense and all(bool(all_zero(g)) for g in dense):
                last = self.state.losses.last(1)
                at_zero = bool(last) and last[-1] == 0.0 and self._zero_at_zero_loss.get(oid, True)
                self._zero_steps[oid] = self._zero_steps.get(oid, 0) + 1
                self._zero_at_zero_loss[oid] = at_zero
            else:
                self._zero_steps[oid] = 0
                self._zero_at_zero_loss.pop(oid, None)
            if self._zero_steps[oid] != 2 or self._margin_met(oid):
                return []
            ev = {"optimizer": name, "params": len(with_grad), "steps": 2}
            return [self.finding(
                f"every gradient of the {len(with_grad)} parameters in {name} is exactly zero at two steps "
                f"in a row: the loss is flat in the weights (a constant model output such as softmax over "
                f"one unit, rounding, argmax, a multiplication by 0), so nothing is learned",
                ev, location=name, code="grad-flow.all-gradients-zero", severity=Severity.ERROR)]
        if anywhere and not others:
            # gradients reached other optimizers' parameters (alternating tasks), or arrived and were
            # cleared before step() (a zero-grad problem): not a detached loss
            return []
        count = self._nograd_steps[oid] = self._nograd_steps.get(oid, 0) + 1
        if not others:
            if count != 1 or any(id(p) in self._got_grad for p in trainable):
                return []
            cause = self._cause()
            ev = {"optimizer": name, "params": len(trainable), "backward_calls": self.state.backward_calls,
                  "cause": cause or "the loss is built from tensors cut out of the graph",
                  "cuts": [{"op": c["op"], "site": c["site"]} for c in self._cuts[:3]],
                  "no_grad_forward": self._nograd_forward}
            msg = (f"loss.backward() ran but none of the {len(trainable)} parameters in {name} received a "
                   f"gradient: the loss does not depend on the model's weights")
            return [self.finding(msg + (f"; the graph is cut by {cause}" if cause else ""), ev, location=name,
                                 code="grad-flow.loss-detached", severity=Severity.ERROR)]
        if count != 2 or any(id(p) in self._got_grad for p in trainable):
            return []
        roots = sorted({self._root_of(pid) for pid in others})
        ev = {"optimizer": name, "optimizer_params": len(trainable), "model": roots[0],
              "params_with_grad_outside": len(others), "models": roots}
        return [self.finding(
            f"{name} holds {len(trainable)} parameters that never receive a gradient, while {len(others)} "
            f"parameters of {_names(roots)} get gradients but are in no optimizer: the optimizer was built "
            f"over other parameters (another model instance or a copy), so the model is never trained",
            ev, location=name, code="grad-flow.optimizer-wrong-params", severity=Severity.ERROR)]

    def _root_of(self, pid: int) -> str:
        entry = self._pmod.get(pid)
        if entry is not None and entry[0] in self._mod_root:
            return self._mod_root[entry[0]]
        return self.state.param_names.get(pid, "model").split(".", 1)[0]

    # ------------------------------------------------------------------ judgements
    def _decide(self, opt: torch.optim.Optimizer, opt_name: str) -> list[Finding]:
        logger.debug("grad-flow: judging %s after %d examined steps", opt_name, self._checked.get(id(opt), 0))
        found = self._frozen_optimizer(opt, opt_name)
        if found:
            return found
        found = self._never_grad(opt, opt_name)
        found += self._missing_from_optimizer()
        found += self._frozen(opt)
        return found

    def _frozen_optimizer(self, opt: torch.optim.Optimizer, opt_name: str) -> list[Finding]:
        """Every parameter the optimizer holds had requires_grad=False at every examined step."""
        params = _opt_params(opt)
        if id(opt) in self._opt_trainable or not params or any(p.requires_grad for p in params):
            return []
        mids = {self._pmod[id(p)][0] for p in params if id(p) in self._pmod}
        tops = self._top_modules(mids, set(self._mods)) if mids else sorted(
            {self._root_of(id(p)) for p in params})
        in_opts = self.state.optimizer_params()
        outside = sorted({self._pmod[pid][1] for pid in self._not_in_opt | self._got_grad
                          if pid not in in_opts and pid in self._pmod})
        others = [info.name for info, o in self.state.live_optimizers()
                  if o is not opt and id(o) in self._opt_trainable]
        n = sum(p.numel() for p in params)
        ev = {"optimizer": opt_name, "params": n, "tensors": len(params), "modules": _names(tops),
              "module_list": tops, "steps_checked": self._checked.get(id(opt), 0),
              "trained_outside_optimizer": outside}
        if outside:
            tail = (f"; meanwhile {_names(outside)} get gradients but are in no optimizer (the optimizer "
                    f"was built over the frozen part instead of the trainable one)")
        elif self.state.backward_calls:
            tail = "; loss.backward() runs, but no gradient can reach them"
        else:
            tail = ""
        msg = (f"every one of the {len(params)} parameter tensors ({n} values, {_names(tops)}) in {opt_name} "
               f"has requires_grad=False over {ev['steps_checked']} steps: {opt_name}.step() can never update "
               f"them, so nothing is trained{tail}")
        severity = Severity.WARNING if others else Severity.ERROR
        return [self.finding(msg, ev, location=opt_name, code="grad-flow.optimizer-frozen-params",
                             severity=severity)]

    def _top_modules(self, mids: set[int], universe: set[int]) -> list[str]:
        """Outermost module names covering ``mids`` and nothing else of ``universe``."""
        bad = {self._pmod_name(m) for m in mids}
        every = {self._pmod_name(m) for m in universe} | bad
        tops: list[str] = []
        for name in sorted(bad):
            parts = name.split(".")
            chosen = name
            for k in range(1, len(parts)):
                anc = ".".join(parts[:k])
                if all(x in bad for x in every if x == anc or x.startswith(anc + ".")):
                    chosen = anc
                    break
            if not any(chosen == t or chosen.startswith(t + ".") for t in tops):
                tops.append(chosen)
        return tops

    def _pmod_name(self, mid: int) -> str:
        mod = self._mods[mid]()
        return self.state.module_name(mod) if mod is not None else "?"

    def _zero_grads(self, with_grad: list[torch.Tensor]) -> None:
        """Count the examined steps at which a parameter's whole gradient is exactly zero (one
        reduction per parameter until it is first seen non-zero)."""
        for p in with_grad:
            pid = id(p)
            if pid in self._nonzero:
                continue
            g = local_grad(p)
            if g is None or g.is_sparse or not g.numel() or not bool(all_zero(g)):
                self._nonzero.add(pid)
                self._zero_seen.pop(pid, None)
            else:
                self._zero_seen[pid] = self._zero_seen.get(pid, 0) + 1

    def _never_grad(self, opt: torch.optim.Optimizer, opt_name: str) -> list[Finding]:
        # (a parameter with no element here, such as an empty shard under FSDP1's use_orig_params,
        # has nothing to learn on this rank and never gets a gradient)
        params = [p for p in _opt_params(opt) if p.requires_grad and local(p).numel()]
        none = not any(id(p) in self._got_grad for p in params)
        if none and not self._got_grad - {id(p) for p in params}:
            return []  # no gradient anywhere: the loss itself is cut (loss-detached's case)
        bad = [p for p in params if id(p) not in self._got_grad and id(p) in self._pmod
               and self._pmod[id(p)][0] in self._used]
        found, bad = self._non_differentiable(opt, opt_name, params, bad)
        if not bad:
            return found
        mids = {self._pmod[id(p)][0] for p in bad}
        universe = {self._pmod[id(p)][0] for p in params if id(p) in self._pmod} & self._used
        tops = self._top_modules(mids, universe)
        cut = next((c for c in self._cuts_log if any(c["output_of"] == t or c["output_of"].startswith(t + ".")
                                                     for t in tops)), None)
        nograd = [n for n in self._nograd_inside if any(n == t or n.startswith(t + ".") for t in tops)]
        if cut:
            cause = f"its {cut['what']} go{'' if cut['what'] == 'weights' else 'es'} through {cut['op']} at {cut['site']}"
        elif nograd:
            cause = f"{_names(nograd)} ran under torch.no_grad() inside the training forward"
        else:
            cause = "its output is detached or not used in the loss"
        n = sum(p.numel() for p in bad)
        ev = {"modules": _names(tops), "module_list": tops, "params": n, "optimizer": opt_name,
              "steps_checked": self._checked.get(id(opt), 0), "cause": cause,
              "cuts": [{"op": cut["op"], "site": cut["site"]}] if cut else [], "no_grad_modules": nograd[:8]}
        rest = (f"while the other optimizers' parameters did, so {opt_name}.step() never trains them" if none
                else f"while the rest of {opt_name}'s parameters did, so they are never trained")
        ev["all_of_optimizer"] = none
        return [self.finding(
            f"{_names(tops)} ran in the training forward but {n} of its parameters ({len(bad)} tensors) never "
            f"received a gradient over {ev['steps_checked']} steps {rest}: {cause}",
            ev, location=tops[0])] + found

    def _non_differentiable(self, opt: torch.optim.Optimizer, opt_name: str, params: list[torch.Tensor],
                            bad: list[torch.Tensor]) -> tuple[list[Finding], list[torch.Tensor]]:
        """Parameters that stop learning because a round/sign/argmax/comparison seen in the training
        forward lies between them and the loss: their gradient stays None (integer or bool result)
        or exactly zero (zero derivative) at every examined step while other parameters of the
        optimizer get non-zero gradients. Returns the finding and the None-gradient parameters
        it does not explain."""
        if not self._cutlog.sites or not any(id(p) in self._nonzero for p in params):
            return [], bad
        zero = [p for p in params if id(p) in self._got_grad and id(p) not in self._nonzero
                and self._zero_seen.get(id(p), 0) >= 3 and id(p) in self._pmod
                and self._pmod[id(p)][0] in self._used]
        none_ids, zero_ids = {id(p) for p in bad}, {id(p) for p in zero}
        cuts: list[Cut] = []
        for c in self._cutlog.explaining(none_ids | zero_ids):
            if c.op in ZERO_DERIVATIVE_OPS and not c.on_loss_path:
                continue  # a rounded metric computed with gradients on, not part of the loss
            hit = c.params & (zero_ids if c.op in ZERO_DERIVATIVE_OPS else none_ids)
            if hit:
                cuts.append(c)
        explained = set().union(*(c.params for c in cuts)) & (none_ids | zero_ids)
        if not explained:
            return [], bad
        stuck = [p for p in params if id(p) in explained]
        mids = {self._pmod[id(p)][0] for p in stuck}
        universe = {self._pmod[id(p)][0] for p in params if id(p) in self._pmod} & self._used
        tops = self._top_modules(mids, universe)
        learning = self._top_modules(universe - mids, universe) if universe - mids else []
        n = sum(p.numel() for p in stuck)
        first = cuts[0]
        ops = [{"op": c.label(), "site": c.site, "module": c.module, "step": c.step} for c in cuts[:4]]
        kind = ("an exactly zero gradient" if first.op in ZERO_DERIVATIVE_OPS
                else "no gradient (its result is an integer/bool tensor with no graph)")
        ev = {"modules": _names(tops), "module_list": tops, "params": n, "optimizer": opt_name,
              "op": first.label(), "site": first.site, "ops": ops, "learning_modules": learning[:8],
              "steps_checked": self._checked.get(id(opt), 0),
              "zero_grad_params": sum(p.numel() for p in stuck if id(p) in zero_ids),
              "none_grad_params": sum(p.numel() for p in stuck if id(p) in none_ids)}
        where = f" inside {first.module}" if first.module else ""
        msg = (f"the {n} parameters of {_names(tops)} never learn: {first.label()} at {first.site}{where} lies "
               f"between them and the loss and passes {kind}, so they got no usable gradient over "
               f"{ev['steps_checked']} examined steps while "
               f"{_names(learning) if learning else 'the layers after it'} learned")
        return [self.finding(msg, ev, location=tops[0], code="grad-flow.non-differentiable-op")], [
            p for p in bad if id(p) not in explained]

    def _grad_moved(self, pid: int, grad: torch.Tensor) -> bool:
        """Whether the .grad of a parameter outside every optimizer changed since it was last seen.

        A .grad left over from before (a teacher or backbone trained earlier in the script, then
        only run under no_grad) stays as it was: that parameter receives no gradient now."""
        try:
            key = (id(grad), getattr(grad, "_version", 0), float(grad.detach().reshape(-1)[:16].double().sum()))
        except (RuntimeError, TypeError):
            return True
        last = self._outside_grads.get(pid)
        self._outside_grads[pid] = key
        return last is not None and last != key

    def _missing_from_optimizer(self) -> list[Finding]:
        if not self._ready():
            return []
        in_opts = self.state.optimizer_params()
        pids = [pid for pid in self._not_in_opt if pid not in in_opts and pid in self._pmod]
        if not pids:
            return []
        self._not_in_opt.difference_update(pids)
        trained = [self._order[self._pmod[pid][0]] for pid in self._got_grad
                   if pid in in_opts and pid in self._pmod and self._pmod[pid][0] in self._order]
        if not trained:
            return []
        opt_roots = {self._mod_root.get(self._pmod[pid][0]) for pid in in_opts if pid in self._pmod}
        mids: set[int] = set()
        for pid in pids:
            mid = self._pmod[pid][0]
            root = self._mod_root.get(mid, "")
            if root not in opt_roots and not self._root_training.get(root, True):
                continue  # a separate network in eval mode: a fixed feature/loss network
            mids.add(mid)
        if not mids:
            return []
        tops = self._top_modules(mids, self._used)
        first_trained = min(trained)
        prefix = all((o := self._order.get(m)) is not None and o < first_trained for m in mids)
        n = sum(p.numel() for m in mids if (mod := self._mods[m]()) is not None
                for p in own_parameters(mod) if p.requires_grad)
        ev = {"modules": _names(tops), "module_list": tops, "params": n}
        if prefix and _random_init(m for mid in mids if (m := self._mods[mid]()) is not None):
            ev["random_init"] = True
            return [self.finding(
                f"{_names(tops)} ({n} parameters) receive gradients but are in no optimizer, and their weights are "
                f"still PyTorch's random initialisation (never trained nor loaded): the layers after them learn on "
                f"a random projection of the inputs (optimizer built over the head only, as when fine-tuning a "
                f"pretrained model, on a model trained from scratch)",
                ev, location=tops[0], code="grad-flow.params-not-in-optimizer", severity=Severity.WARNING)]
        if prefix:
            return [self.finding(
                f"{_names(tops)} receive gradients but are in no optimizer, so they stay fixed while the "
                f"layers after them train; freeze them if that is intended (saves the backward pass)",
                ev, location=tops[0], code="grad-flow.params-not-in-optimizer", severity=Severity.INFO)]
        return [self.finding(
            f"{_names(tops)} ({n} parameters) receive gradients but are in no optimizer: they are never "
            f"trained (optimizer built before these layers were added, or over part of the model only)",
            ev, location=tops[0], code="grad-flow.params-not-in-optimizer", severity=Severity.WARNING)]

    def _frozen(self, opt: torch.optim.Optimizer) -> list[Finding]:
        in_opt = {id(p) for p in _opt_params(opt)}
        roots = {self._mod_root.get(self._pmod[pid][0]) for pid in in_opt if pid in self._pmod}
        found: list[Finding] = []
        for root in sorted(r for r in roots if r):
            layers = []
            for mid in sorted((m for m in self._used if self._mod_root.get(m) == root), key=self._order.get):
                mod = self._mods[mid]()
                if mod is None or isinstance(mod, _SKIP_LAYERS):
                    continue
                total = sum(p.numel() for p in own_parameters(mod))
                layers.append((self.state.module_name(mod), total, mid not in self._ever_trainable))
            if len(layers) < 2 or not any(not f for _, _, f in layers):
                continue
            total = sum(n for _, n, _ in layers)
            frozen_total = sum(n for _, n, f in layers if f)
            if layers[-1][2] and 2 * (total - frozen_total) >= total:
                name = layers[-1][0]
                ev = {"layer": name, "frozen_params": layers[-1][1], "trainable_layers": sum(not f for *_, f in layers)}
                found.append(self.finding(
                    f"the output layer {name} is frozen (requires_grad=False, {layers[-1][1]} parameters) while "
                    f"the layers before it train: the model cannot adapt its outputs to the targets",
                    ev, location=name, code="grad-flow.frozen-output-layer"))
            elif not layers[0][2] and not layers[-1][2] and frozen_total and 2 * frozen_total < total:
                mids = [n for n, _, f in layers if f]
                ev = {"layers": _names(mids), "layer_list": mids, "frozen_params": frozen_total,
                      "total_params": total}
                found.append(self.finding(
                    f"{_names(mids)} in the middle of {root} are frozen (requires_grad=False, {frozen_total} of "
                    f"{total} parameters) while the layers before and after them train",
                    ev, location=mids[0], code="grad-flow.frozen-middle-layers"))
        return found

    # ------------------------------------------------------------------ end of run
    def _on_end(self, event: RunEnd) -> list[Finding]:
        found: list[Finding] = []
        for info, opt in self.state.live_optimizers():
            oid = id(opt)
            if oid not in self._decided and self._checked.get(oid, 0) >= 2:
                self._decided.add(oid)
                found += self._decide(opt, info.name)
        found += self._step_missing(event)
        return found

    def _weights_changed(self) -> bool:
        for ref, before in self._manual_snap or []:
            p = ref()
            if p is not None and not torch.equal(local(p).detach().reshape(-1)[:64], before):
                return True
        return False

    def _step_missing(self, event: RunEnd) -> list[Finding]:
        calls = self.state.backward_calls
        if calls < 2 or any(info.steps for info in self.state.optimizers.values()):
            return []
        if event.reason in ("crash", "interrupted") and calls < 10:
            return []
        snap = self._manual_snap or []
        if not snap or self._manual_update or self._weights_changed():
            return []  # weights changed: a manual update loop
        if self.state.extra.get("nndoctor.functional_steps"):
            return []  # torch.func.grad over a dict of weights (functional_call): the model's own stay put
        ev = {"backward_calls": calls, "params_checked": len(snap)}
        return [self.finding(
            f"loss.backward() ran {calls} times but no optimizer.step() was ever called and the weights "
            f"never changed: the model is not trained",
            ev, location="optimizer.step", code="grad-flow.step-never-called", severity=Severity.ERROR,
            step=event.step)]
