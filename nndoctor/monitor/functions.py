"""The torch-function side of the observer: which calls it watches, the mode that sees them,
and what it makes of them (losses, provenance labels, targets) - see :class:`FunctionEvents`.

The mode is pushed on sampled steps (every watched call becomes an event) and, in "light"
form, during evaluation loops (only losses and predictions compared with targets).
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

from nndoctor.monitor import metric_calls
from nndoctor.monitor.curves import note_loss_values
from nndoctor.monitor.evalrec import RECIPE_OPS, PendingEval, RecipeTracker, first_parameter
from nndoctor.monitor.events import LossCall, OpCall, Provenance, Targets, reduction_of
from nndoctor.monitor.notebook import code_site, is_cell
from nndoctor.monitor.outside import CONVERT_OPS, HeldOut, OutsideEval
from nndoctor.monitor.residuals import RESIDUAL_OPS, ResidualEval
from nndoctor.monitor.target_scales import target_scales
from nndoctor.monitor.tensors import transformed

__all__ = [
    "COMPARE_OPS",
    "FunctionEvents",
    "FunctionMode",
    "LOSS_FUNCTIONS",
    "PASS_THROUGH_OPS",
    "PREDICTION_OPS",
    "PREP_OPS",
    "PROVENANCE_OPS",
    "op_name",
    "user_site",
]

LOSS_FUNCTIONS = frozenset(
    {
        "cross_entropy",
        "nll_loss",
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
        "poisson_nll_loss",
        "gaussian_nll_loss",
        "soft_margin_loss",
        "multilabel_soft_margin_loss",
        "multi_margin_loss",
        "multilabel_margin_loss",
        "hinge_embedding_loss",
        "margin_ranking_loss",
        "cosine_embedding_loss",
        "triplet_margin_loss",
        "ctc_loss",
    }
)

#: ops whose output we label with where it came from
PROVENANCE_OPS = frozenset(
    {"softmax", "log_softmax", "sigmoid", "logsigmoid", "tanh", "relu", "relu6", "softplus",
     "elu", "gelu", "hardtanh", "hardsigmoid", "log", "exp", "abs", "square", "clamp",
     "log_sigmoid", "special_expit"}
)
#: other names torch gives the same op (F.logsigmoid is ``log_sigmoid``, torch.special.expit is sigmoid)
_PROVENANCE_ALIASES = {"log_sigmoid": "logsigmoid", "special_expit": "sigmoid"}
#: ops that carry a provenance label through unchanged values (views, copies, casts)
PASS_THROUGH_OPS = frozenset(
    {"view", "reshape", "squeeze", "unsqueeze", "flatten", "contiguous", "clone", "to", "float",
     "double", "half", "cpu", "cuda", "view_as", "reshape_as", "detach", "squeeze_", "unsqueeze_",
     "type", "expand", "expand_as",
     # indexing keeps the values' nature (a column of softmax output is still probabilities)
     "getitem", "select", "narrow"}
)

#: ops that make predicted class indices, and the comparisons of those with targets
PREDICTION_OPS = frozenset({"argmax", "max"})
COMPARE_OPS = frozenset({"eq", "ne"})

_NAME_CACHE: dict[Any, str] = {}

#: bumped in a forked child (DataLoader workers...): an observer only acts in the process that
#: made it. Comparing with this counter is cheaper than an ``os.getpid()`` system call per hook.
_FORKS = [0]


def _after_fork() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
_INTERNAL_DIRS = (
    os.path.dirname(torch.__file__),
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
)


def op_name(func: Callable[..., Any]) -> str:
    """A normalised name for a torch function or Tensor method: ``__sub__`` -> ``sub``."""
    try:
        return _NAME_CACHE[func]
    except (KeyError, TypeError):
        pass
    name = getattr(func, "__name__", None) or str(func)
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
    try:
        _NAME_CACHE[func] = name
    except TypeError:
        pass
    return name


def user_site(skip_internal: bool = True) -> str:
    """``file:line`` of the innermost frame outside torch and nndoctor (the user's code); in a
    notebook ``Cell In[N], line L`` (nndoctor/monitor/notebook.py)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (skip_internal and (filename.startswith(_INTERNAL_DIRS)
                                   or (filename.startswith("<") and not is_cell(filename)))):
            return code_site(filename, frame.f_lineno)  # "Cell In[3], line 5" in a notebook
        frame = frame.f_back
    return ""


_LAZY = torch.nn.parameter.UninitializedTensorMixin


#: watched torch calls seen before any model forward or backward (data preparation); after these the
#: function mode is off until training starts (what the preparation made is labelled by then)
PREP_OPS = 20_000


class FunctionMode(TorchFunctionMode):
    """Sees every torch function call while it is on the stack (sampled steps only)."""

    def __init__(self, observer: Any) -> None:
        super().__init__()
        self.observer = observer
        self.enabled = True

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        obs = self.observer
        if not self.enabled or obs._busy or _FORKS[0] != obs._pid:
            return func(*args, **kwargs)
        # the user's call runs once, outside nndoctor's guards (its errors are the user's); what
        # nndoctor does around it is guarded: a fault switches nndoctor off (Observer._fail)
        try:
            name = op_name(func)
            heavy = obs._heavy
        except Exception as exc:
            obs._fail("function mode", exc)
            return func(*args, **kwargs)
        if not heavy:  # light mode: only an evaluation loop's losses are recorded
            result = func(*args, **kwargs)
            try:
                if obs._light and not transformed(args):
                    if name in LOSS_FUNCTIONS:
                        obs._on_eval_loss(name, args, kwargs, result)
                    elif name in PREDICTION_OPS or name in COMPARE_OPS:
                        if not torch.is_grad_enabled():  # (with gradients: not known to be an evaluation)
                            obs._on_prediction_op(name, args, result)
                        if name in obs._eval_op_checks:  # (an accuracy computed in the evaluation loop)
                            obs._on_eval_op(name, func, args, kwargs, result)
                    elif name in obs._eval_op_checks:
                        obs._on_eval_op(name, func, args, kwargs, result)
                    if obs._loss_recipe is not None and name in RECIPE_OPS \
                            and obs._recipes.on_op(name, args, result, obs._loss_recipe):
                        obs._eval_value(result, result)  # the training loss's recipe, on held-out data
                    if name in RESIDUAL_OPS and obs._residuals.active:
                        obs._on_residual(args, result)  # a held-out residual (a metric of the script's own)
                    elif name in CONVERT_OPS and obs._residuals.active and args and obs._after_evaluation():
                        obs._on_convert(args[0])  # a prediction or target leaving torch (outside.py)
            except Exception as exc:
                obs._fail("function mode", exc)
            return result
        try:
            result = func(*args, **kwargs)
        except BaseException:
            obs._failed_op = (name, func, args, kwargs)
            raise
        try:
            if name in obs._watched_ops and not any(isinstance(a, _LAZY) for a in args) \
                    and not transformed(args):
                # (a LazyModule giving its parameters their shape is no op of the user's model; a
                # torch.func transform's wrapper tensors have no values to read)
                obs._on_op(name, func, args, kwargs, result)
            if obs._loss_recipe is not None and name in RECIPE_OPS and obs._evaluating() \
                    and obs._recipes.on_op(name, args, result, obs._loss_recipe):
                obs._eval_value(result, result)
            if name in RESIDUAL_OPS and obs._residuals.active and obs._evaluating():
                obs._on_residual(args, result)
            elif name in CONVERT_OPS and obs._residuals.active and args and obs._after_evaluation():
                obs._on_convert(args[0])
        except Exception as exc:
            obs._fail("function mode", exc)
        return result


class FunctionEvents:
    """Observer methods for what the function mode sees (mixed into :class:`Observer`)."""

    # provided by the Observer
    state: Any
    _by_kind: dict[str, list[Any]]
    _op_checks: dict[str, list[Any]]
    _eval_op_checks: dict[str, list[Any]]
    _prov: dict[int, tuple[weakref.ReferenceType[torch.Tensor], Provenance]]
    _predictions: dict[int, weakref.ReferenceType[torch.Tensor]]
    _stack: list[torch.nn.Module]
    _heavy: bool
    _light: bool
    _pending_eval: PendingEval
    _recipes: RecipeTracker
    _loss_recipe: tuple[str, ...] | None
    _residuals: ResidualEval
    _outside: OutsideEval
    _active: bool
    _busy: bool
    busy: Any  # nndoctor.monitor.busy.Busy: ``with self.busy:`` around the observer's own work
    _mode: Any
    _dispatch: Callable[..., None]
    _fail: Callable[..., None]
    _push_mode: Callable[[], None]
    _pop_mode: Callable[[], None]

    def _set_light(self, on: bool) -> None:
        """Loss-only function mode: records evaluation losses without the heavy probes."""
        if on:
            if self._heavy or self._light or not self._active:
                return
            self._light = True
            self._push_mode()
        elif self._light:
            self._light = False
            self._recipes.clear()
            if not self._heavy:
                self._pop_mode()

    def _on_eval_loss(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        grad = torch.is_grad_enabled()
        if "targets" in self._by_kind and not grad:  # (with gradients: not known to be an evaluation)
            self._emit_targets(name, args, kwargs)
        if not isinstance(result, torch.Tensor) or result.numel() != 1:
            return
        value = result
        if reduction_of(kwargs) == "sum":  # per-example scale, comparable with the training loss
            inp = args[0] if args else kwargs.get("input")
            if isinstance(inp, torch.Tensor) and inp.numel():
                n = inp.shape[0] if name in ("cross_entropy", "nll_loss", "multi_margin_loss") else inp.numel()
                value = result.detach() / max(int(n), 1)
        self._eval_value(result, value)

    def _evaluating(self) -> bool:
        """An evaluation forward (no gradient, or a model in evaluation mode) made the latest output."""
        last = self.state.last_forward
        return not torch.is_grad_enabled() or (last is not None and last[1] is False)

    def _on_residual(self, args: tuple[Any, ...], result: Any) -> None:
        """A subtraction in an evaluation loop: a held-out residual gives the training loss on
        held-out rows (:mod:`nndoctor.monitor.residuals`)."""
        with self.busy:
            value = self._residuals.value(args, result)
            if value is not None:
                last = self.state.last_forward
                model = last[0] if last is not None else ""
                if torch.is_grad_enabled():  # only the output of a model in evaluation mode (a teacher's
                    # target beside a student's output is not an evaluation): the nearest parameter's
                    param, _ = first_parameter(result)
                    info = self.state.model_of_param(id(param)) if param is not None else None
                    if info is None or info.module is None or info.module.training is not False:
                        return
                    model = info.name
                self._residuals.add(self.state.step, value, model, result)
                # (its units: predictions mapped back to raw targets make a loss in other units than training's)
                target_scales(self.state).add_eval(args[0], args[1], self._residuals.loss or "")

    def _after_evaluation(self) -> bool:
        """The latest root forward was an evaluation (no gradient, or a model in evaluation mode):
        what leaves torch after it, outside its ``no_grad`` block too, may be compared with it."""
        last = self.state.last_forward
        return not torch.is_grad_enabled() or (last is not None and (last[1] is False or last[2] is False))

    def _on_convert(self, tensor: Any) -> None:
        """A tensor leaving torch in an evaluation loop: paired with another, a held-out residual
        compared outside torch (:mod:`nndoctor.monitor.outside`)."""
        if metric_calls.IN_CALL[0]:
            return  # (a metric's own conversion of its arguments: _on_metric reads the call)
        with self.busy:
            self._held_out(self._outside.on_convert(self.state.step, tensor))

    def _on_metric(self, y_true: Any, y_pred: Any) -> None:
        """A scikit-learn regression metric called after a forward no backward followed (an
        evaluation): the held-out residual it compares (:mod:`nndoctor.monitor.metric_calls`)."""
        state = self.state
        if not self._active or self._failed or not self._residuals.active \
                or state.forward_calls <= state.forwards_at_backward:
            return
        with self.busy:
            self._held_out(self._outside.on_metric(y_true, y_pred))

    def _held_out(self, found: HeldOut | None) -> None:
        """A pair compared outside torch: its residual waits as a held-out value (residuals.py), and its
        units are counted (predictions mapped back to raw targets make a loss in other units than
        training's: nndoctor.monitor.target_scales)."""
        if found is None:
            return
        last = self.state.last_forward
        self._residuals.add(self.state.step, found.value, last[0] if last is not None else "", found.residual)
        target_scales(self.state).add_eval(found.pred, found.target, self._residuals.loss or "")

    def _eval_value(self, loss: torch.Tensor, value: torch.Tensor) -> None:
        """A loss of an evaluation loop: recorded now without gradients; with gradients (an
        evaluation-mode forward), once a step shows no backward reached it (evalrec.PendingEval)."""
        last = self.state.last_forward
        if not torch.is_grad_enabled():
            self._residuals.other_source = True  # (held-out residuals are not recorded beside it)
            self.state.record_eval(self.state.step, value, last[0] if last is not None else "")
            return
        if last is None or last[1] is not False or not last[2] or not loss.requires_grad \
                or not self._pending_eval.watching(last[0]):
            return
        param, node = first_parameter(loss)
        info = self.state.model_of_param(id(param)) if param is not None else None
        module = info.module if info is not None else None
        if module is not None and module.training is False and node is not None:  # (not a training
            # output logged after it); an evaluation if no backward reaches that forward
            self._pending_eval.add(self.state.step, loss, info.name, value, node=node)
            self._residuals.other_source = True

    def _emit_targets(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        inp = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if isinstance(inp, torch.Tensor) and isinstance(target, torch.Tensor):
            self._dispatch(Targets(name=name, input=inp, target=target,
                                   kwargs={k: v for k, v in kwargs.items() if k not in ("input", "target")},
                                   step=self.state.step, training=torch.is_grad_enabled()))

    def _on_prediction_op(self, name: str, args: tuple[Any, ...], result: Any) -> None:
        """Remember class indices made by argmax/max; report targets compared with them."""
        if name in PREDICTION_OPS:
            indices = result if name == "argmax" else (
                result[1] if isinstance(result, tuple) and len(result) == 2 else None)
            if isinstance(indices, torch.Tensor) and indices.dim() >= 1 and not indices.is_floating_point():
                if len(self._predictions) > 256:
                    self._predictions = {k: r for k, r in self._predictions.items() if r() is not None}
                self._predictions[id(indices)] = weakref.ref(indices)
            return
        if len(args) < 2:
            return
        for pred, target in ((args[0], args[1]), (args[1], args[0])):
            if not (isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor)):
                return
            ref = self._predictions.get(id(pred))
            if ref is not None and ref() is pred and target.numel() == pred.numel() and target.dim() >= 1:
                self._dispatch(Targets(name="compare", input=pred, target=target, kwargs={},
                                       step=self.state.step, training=torch.is_grad_enabled()))
                return

    def _pause_for_preparation(self) -> None:
        """Data preparation ran past PREP_OPS torch calls before any model did: the function mode
        is popped (a disabled mode still costs a Python call per torch call) until
        :meth:`_resume_after_preparation`."""
        self._prep_paused = True
        self._pop_mode()

    def _resume_after_preparation(self) -> None:
        """A module's forward or a backward: training starts; the sampled step's mode is back."""
        self._prep_paused = False
        if self._heavy:
            self._push_mode()

    def _current_module_name(self) -> str:
        return self.state.module_name(self._stack[-1]) if self._stack else ""

    # ------------------------------------------------------------------ ops
    def _on_eval_op(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        """An op a check wants in evaluation loops too (``Check.eval_ops``), seen in the light mode."""
        self._dispatch(OpCall(name=name, func=func, args=args, kwargs=kwargs, result=result,
                              step=self.state.step, module="", input_provenance=()),
                       self._eval_op_checks[name])

    def _on_op(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        state = self.state
        if not state.forward_calls and not state.backward_calls:
            # data preparation before any model ran: a per-example loop of torch calls (a generator
            # of 50,000 sequences) would cost ~20 us a call here; after PREP_OPS of them the mode
            # steps aside until the first module forward or backward (observer/forward.py, backward.py)
            self._prep_ops += 1
            if self._prep_ops > PREP_OPS:
                self._pause_for_preparation()
                return
        with self.busy:
            if name in LOSS_FUNCTIONS:
                self._on_loss(name, args, kwargs, result)
                if "targets" in self._by_kind:
                    self._emit_targets(name, args, kwargs)
            elif name in PREDICTION_OPS or name in COMPARE_OPS:
                if "targets" in self._by_kind:
                    self._on_prediction_op(name, args, result)
            if name in PROVENANCE_OPS and isinstance(result, torch.Tensor):
                self._label(result, name, args, kwargs)
            elif name in PASS_THROUGH_OPS and isinstance(result, torch.Tensor) and args:
                prov = self.provenance(args[0])
                if prov is not None:
                    self._prov[id(result)] = (weakref.ref(result), prov)
            checks = self._op_checks.get(name)
            if checks:
                provs = tuple(self.provenance(a) for a in args[:3])
                event = OpCall(name=name, func=func, args=args, kwargs=kwargs, result=result,
                               step=self.state.step, module=self._current_module_name(),
                               input_provenance=provs)
                self._dispatch(event, checks)

    def _label(self, result: torch.Tensor, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        dim = kwargs.get("dim")
        if dim is None and len(args) > 1 and isinstance(args[1], int):
            dim = args[1]
        shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
        name = _PROVENANCE_ALIASES.get(name, name)
        if name == "log":
            inner = self.provenance(args[0]) if args else None
            if inner is None or inner.op not in ("softmax", "sigmoid"):
                return
            name = "log_softmax" if inner.op == "softmax" else "logsigmoid"
            dim = inner.dim
            module = inner.module or self._current_module_name()  # where the softmax ran
        else:
            module = self._current_module_name()
        if len(self._prov) > 4096:
            self._prov = {k: v for k, v in self._prov.items() if v[0]() is not None}
        self._prov[id(result)] = (
            weakref.ref(result),
            Provenance(op=name, dim=dim, module=module, input_shape=shape),
        )

    def provenance(self, tensor: Any) -> Provenance | None:
        """How ``tensor`` was produced, if the function mode saw it being made."""
        if not isinstance(tensor, torch.Tensor):
            return None
        entry = self._prov.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def _on_loss(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        inp = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not isinstance(inp, torch.Tensor):
            return
        grad = torch.is_grad_enabled()
        if isinstance(result, torch.Tensor) and result.numel() == 1:
            self._eval_value(result, result)  # (a training loss: with gradients and not in eval mode)
        if grad and isinstance(target, torch.Tensor):
            note_loss_values(self.state, inp, target)
        if grad:
            self._residuals.on_training_loss(name, inp, target)
            self._outside.on_training_target(target)
        event = LossCall(name=name, input=inp, target=target if isinstance(target, torch.Tensor) else None,
                         kwargs={k: v for k, v in kwargs.items() if k not in ("input", "target")},
                         result=result, step=self.state.step, provenance=self.provenance(inp),
                         site=user_site(), grad_enabled=grad, rest=tuple(args[2:]))
        self._dispatch(event)
