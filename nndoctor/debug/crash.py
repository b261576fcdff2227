"""The crash explainer: turn the exception a training script died of into one finding about the user's code.

torch's messages name matrices and tensors ("mat1 and mat2 shapes cannot be multiplied
(64x784 and 100x10)"); the :class:`~nndoctor.monitor.events.Crash` event also carries the
module stack, the innermost module's inputs and the torch call that raised (on sampled
steps, which include the first ones, where most crashes happen). :class:`CrashExplainer`
matches the message against known patterns, looks the module up by its path, and says
which layer got what, why, and what to change. The runner prints the original traceback
afterwards and exits with the script's code.
"""

from __future__ import annotations

import logging
import math
import os
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.debug.crash_bce import BCE_RULES
from nndoctor.debug.preprocessing import fmt
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import Crash, LossCall
from nndoctor.monitor.notebook import code_site, is_cell

__all__ = ["CrashExplainer"]

logger = logging.getLogger("nndoctor")

#: the codes a crash is explained with (fixes in the catalogue: ``{fix}`` is the repair computed
#: from the crash)
CODES: tuple[str, ...] = (
    "shape.crash-linear-input",
    "shape.crash-conv-input",
    "shape.crash-norm-features",
    "shape.crash-batch-of-one",
    "train-mode.crash-batch-of-one-in-train-mode",
    "shape.crash-loss-shapes",
    "shape.crash-view",
    "shape.crash-rnn-input",
    "shape.crash-size-mismatch",
    "dtype.crash-input-dtype",
    "dtype.crash-target-dtype",
    "preprocessing.crash-target-out-of-range",
    "preprocessing.crash-index-out-of-range",
    "loss-input.crash-bce-input-not-probabilities",
    "grad-flow.crash-loss-without-grad",
    "dtype.crash-device-mismatch",
    "grad-flow.crash-backward-twice",
    "grad-flow.crash-empty-parameter-list",
    "grad-flow.crash-inplace-modified",
    "shape.crash-state-dict",
    "shape.crash-out-of-memory",
)

_SHAPE_KEEPING = {"torch.nn.modules.activation", "torch.nn.modules.dropout"}
_LOSS_NAMES = {"cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
               "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"}
_DTYPE_WORDS = {"double": "float64", "float": "float32", "half": "float16", "bfloat16": "bfloat16",
                "long": "int64", "long int": "int64", "int": "int32", "byte": "uint8", "char": "int8",
                "short": "int16", "bool": "bool", "boolean": "bool", "unsigned char": "uint8"}


def _shape(t: Any) -> tuple[int, ...] | None:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def _dtype_name(word: str) -> str:
    w = word.strip().lower().replace("torch.", "")
    return _DTYPE_WORDS.get(w, w)


def _describe(module: nn.Module) -> str:
    extra = module.extra_repr().split(", ")
    short = ", ".join(extra[:3])
    return f"{type(module).__name__}({short})"


class _Ctx:
    """What is known about one crash: message, step, innermost module and its input, the failed op."""

    def __init__(self, check: CrashExplainer, event: Crash) -> None:
        self.check = check
        self.event = event
        self.msg = str(event.exc).strip()
        self.first = self.msg.splitlines()[0] if self.msg else type(event.exc).__name__
        self.path = event.module_stack[-1] if event.module_stack else ""
        self.module = check.module_by_name(self.path) if self.path else None
        inputs = event.module_inputs or ()
        self.input = next((a for a in inputs if isinstance(a, torch.Tensor)), None)
        self.op = event.op
        self.site, self.line = _user_frame(event.exc)

    def arg(self, i: int, key: str = "") -> Any:
        if self.op is None:
            return None
        if len(self.op.args) > i:
            return self.op.args[i]
        return self.op.kwargs.get(key) if key else None

    @property
    def where(self) -> str:
        if self.module is not None:
            return f"`{self.path}` ({_describe(self.module)})"
        if self.op is not None and self.op.name in _LOSS_NAMES:
            return f"F.{self.op.name}"
        return f"`{self.path}`" if self.path else "the failing call"

    def evidence(self, **extra: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {"exception": f"{type(self.event.exc).__name__}: {self.first}",
                              "step": self.event.step, "module": self.path,
                              "module_stack": list(self.event.module_stack)}
        if self.input is not None:
            ev["input_shape"] = tuple(self.input.shape)
            ev["input_dtype"] = str(self.input.dtype).replace("torch.", "")
        if self.op is not None:
            ev["op"] = self.op.name
        if self.site:
            ev["site"] = self.site
            ev["code"] = self.line
        ev.update(extra)
        return ev


Rule = Callable[["CrashExplainer", _Ctx, "re.Match[str]"], Finding | None]


@register
class CrashExplainer(Check):
    """One finding per crash: what broke, in which of the user's modules, with the numbers and the fix."""

    code = "shape.crash-linear-input"
    needs = ("crash", "loss")
    extra_codes = tuple(k for k in CODES if k != "shape.crash-linear-input")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.last_loss: dict[str, Any] | None = None

    # ------------------------------------------------------------------ events
    def check(self, event: Crash | LossCall) -> Iterable[Finding]:
        if isinstance(event, LossCall):
            self.last_loss = {"name": event.name, "grad": event.grad_enabled, "site": event.site,
                              "input_requires_grad": event.input.requires_grad}
            return ()
        ctx = _Ctx(self, event)
        for pattern, rule in RULES:
            m = pattern.search(ctx.msg)
            if m is None:
                continue
            finding = rule(self, ctx, m)
            if finding is not None:
                return [finding]
        return ()

    # ------------------------------------------------------------------ helpers for rules
    def module_by_name(self, path: str) -> nn.Module | None:
        for info, root in self.state.live_models():
            if path == info.name:
                return root
            prefix = info.name + "."
            if path.startswith(prefix):
                try:
                    return root.get_submodule(path[len(prefix):])
                except AttributeError:
                    return None
        return None

    def previous_layer(self, path: str) -> tuple[str, nn.Module] | None:
        """The sibling defined just before ``path`` (in an nn.Sequential: the one that ran before it)."""
        parent_path, _, leaf = path.rpartition(".")
        parent = self.module_by_name(parent_path) if parent_path else None
        if parent is None:
            return None
        prev = None
        for name, child in parent.named_children():
            if name == leaf:
                break
            if type(child).__module__ in _SHAPE_KEEPING:
                continue  # activations / dropout keep the feature count: name the layer that set it
            prev = (f"{parent_path}.{name}", child)
        return prev

    def last_linear(self, out_features: int) -> str:
        for info, root in self.state.live_models():
            found = ""
            for name, mod in root.named_modules():
                if isinstance(mod, nn.Linear) and mod.out_features == out_features:
                    found = f"{info.name}.{name}" if name else info.name
            if found:
                return found
        return ""

    def explain(self, code: str, ctx: _Ctx, message: str, fix: str, *,
                severity: Severity = Severity.ERROR, **evidence: Any) -> Finding:
        ev = ctx.evidence(fix=fix, **evidence)
        in_model = ctx.module is not None
        location = ((ctx.path if in_model else "") or ctx.site or ctx.path
                    or (ctx.op.name if ctx.op is not None else "") or type(ctx.event.exc).__name__)
        at = f" ({ctx.site})" if ctx.site else ""
        return self.finding(f"crash at step {ctx.event.step}{at}: {message}", ev, location=location,
                            code=code, severity=severity, step=ctx.event.step)


def _user_frame(exc: BaseException) -> tuple[str, str]:
    """``file:line`` and source text of the innermost traceback frame in the user's code."""
    internal = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    site, line = "", ""
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if (name.startswith(internal) or (name.startswith("<") and not is_cell(name))
                or "runpy" in os.path.basename(name)):
            continue
        site, line = code_site(name, frame.lineno), (frame.line or "").strip()  # "Cell In[3], line 4" in Jupyter
    return site, line


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeio" else "a ") + word


def numel(shape: Iterable[int]) -> int:
    return math.prod(int(s) for s in shape)


def _ints(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d+", text)]


# ---------------------------------------------------------------------- shape rules
def _linear(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    rows, got, want, out = (int(g) for g in m.groups())
    mod, x, path = ctx.module, ctx.input, ctx.path
    if isinstance(mod, nn.Linear) and x is not None:
        shape = tuple(x.shape)
        want, out = mod.in_features, mod.out_features
        if x.dim() > 2:
            flat = numel(shape[1:])
            if flat == want:
                msg = (f"{ctx.where} got input {shape}: Linear acts on the last dimension ({shape[-1]}), "
                       f"the input was not flattened (flattened, a sample has {flat} features, as expected)")
                fix = (f"Flatten before {path}: put nn.Flatten() in front of it, or x = x.flatten(1) "
                       "(x.view(x.size(0), -1)) in forward.")
            else:
                msg = (f"{ctx.where} got input {shape}: Linear acts on the last dimension ({shape[-1]}); "
                       f"flattened, a sample has {flat} features, not the {want} the layer expects")
                fix = (f"Flatten the input (nn.Flatten() / x.flatten(1)) and set in_features={flat} in {path}: "
                       f"nn.Linear({flat}, {out}).")
        else:
            got = shape[-1]
            prev = chk.previous_layer(path)
            before = f" ({prev[0]}: {_describe(prev[1])})" if prev else ""
            msg = (f"{ctx.where} expects {want} input features but got input {shape}: the layer before it"
                   f"{before} outputs {got} features per sample")
            fix = (f"Set in_features={got} in {path}: nn.Linear({got}, {out}); or change the layer before it "
                   f"to output {want} features.")
        return chk.explain("shape.crash-linear-input", ctx, msg, fix, got_features=got, in_features=want)
    where = f"`{path}`" if path else (f"torch.{ctx.op.name}" if ctx.op is not None else "a matrix product")
    msg = (f"{where} multiplies a ({rows}x{got}) matrix by a ({want}x{out}) one: the input has {got} features "
           f"but the weight expects {want}")
    fix = (f"Make the sizes agree: the layer with weight ({out}, {want}) needs in_features={got} "
           f"(nn.Linear({got}, {out})); if the input has more than 2 dims, flatten it first (x.flatten(1)).")
    return chk.explain("shape.crash-linear-input", ctx, msg, fix, got_features=got, in_features=want)


def _conv_channels(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    shape = _ints(m.group(2))
    expected, got = int(m.group(3)), int(m.group(4))
    path = ctx.path or "the convolution"
    x = ctx.input
    if x is not None and x.dim() == 3 and len(shape) == 4 and shape[0] == 1:
        fix = f"Add the channel dimension: x = x.unsqueeze(1) (shape (N, 1, H, W)) before {path}."
        why = (f"the input {tuple(x.shape)} has no channel dim, so torch reads it as one unbatched image "
               f"with {got} channels")
    elif len(shape) >= 3 and shape[-1] == expected and shape[1] != expected:
        fix = ("The images are channels-last (N, H, W, C), as numpy/PIL store them: "
               f"x = x.permute(0, 3, 1, 2) before {path}.")
        why = f"its dim 1 is {shape[1]} but the last dim is {expected}: channels-last images"
    elif expected == 3 and got == 1:
        fix = (f"Grayscale images into a 3-channel layer: set in_channels=1 in {path}, or repeat the channel: "
               "x = x.repeat(1, 3, 1, 1).")
        why = "grayscale input into a layer built for RGB"
    else:
        fix = (f"Set in_channels={got} in {path}, or make the layer before it output {expected} channels.")
        why = f"the layer before it outputs {got} channels"
    msg = f"{ctx.where} expects {expected} input channels but got input {tuple(shape)}: {why}"
    return chk.explain("shape.crash-conv-input", ctx, msg, fix, expected_channels=expected, got_channels=got)


def _conv_dims(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    shape = _ints(m.group(4))
    op = m.group(3)
    c = ctx.module.in_channels if isinstance(ctx.module, nn.modules.conv._ConvNd) else 1
    path = ctx.path or op
    fix = f"Reshape the input to (N, C, ...) before {path}."
    if op == "conv2d" and len(shape) == 2:
        side = math.isqrt(max(shape[1] // max(c, 1), 0))
        if side * side * c == shape[1]:
            fix = (f"The images are flattened: reshape them before {path}: "
                   f"x = x.view(-1, {c}, {side}, {side}).")
    msg = (f"{ctx.where} needs a {m.group(2)}-D (N, C, ...) input for {op} but got {tuple(shape)}")
    return chk.explain("shape.crash-conv-input", ctx, msg, fix, got_shape=tuple(shape))


def _norm_features(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    got, has = int(m.group(1)), int(m.group(2))
    kind = type(ctx.module).__name__ if ctx.module is not None else "BatchNorm"
    path = ctx.path or "the normalisation layer"
    msg = (f"{ctx.where} normalises {has} features but its input has {got} channels/features "
           f"(input {ctx.evidence().get('input_shape', '?')})")
    fix = f"Set num_features={got} in {path}: nn.{kind}({got}), or make the layer before it output {has}."
    return chk.explain("shape.crash-norm-features", ctx, msg, fix, got_features=got, num_features=has)


def _batch_of_one(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    size = m.group(1)
    fwd = chk.state.last_forward
    if fwd is not None and fwd[1] and not fwd[2]:
        msg = (f"{ctx.where} got a single sample ({size}) while {fwd[0]} is in train mode under "
               "torch.no_grad(): batch-norm cannot compute batch statistics of one sample; this is "
               "evaluation with the model still in train mode")
        fix = f"Call {fwd[0]}.eval() before evaluating or predicting one sample."
        return chk.explain("train-mode.crash-batch-of-one-in-train-mode", ctx, msg, fix, input_size=size)
    msg = (f"{ctx.where} got a batch of one sample ({size}) in training: batch-norm needs at least 2 "
           "samples per batch; usually the last, incomplete batch of an epoch")
    fix = "Drop the incomplete last batch: DataLoader(..., drop_last=True), or pick a batch size that divides the data."
    return chk.explain("shape.crash-batch-of-one", ctx, msg, fix, input_size=size)


def _loss_args(ctx: _Ctx) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None, str]:
    if ctx.op is not None and ctx.op.name in _LOSS_NAMES:
        return _shape(ctx.arg(0, "input")), _shape(ctx.arg(1, "target")), f"F.{ctx.op.name}"
    return None, None, "the loss"


def _batch_size(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    a, b = int(m.group(1)), int(m.group(2))
    inp, tgt, loss = _loss_args(ctx)
    shown = f" (output {inp}, target {tgt})" if inp and tgt else ""
    if a != b and max(a, b) % min(a, b) == 0:
        why = (f"the model output has {a} rows for {b} targets: a reshape such as x.view(-1, k) in forward mixed "
               "the batch dimension with the features")
        fix = "Reshape with the batch size kept: x = x.view(x.size(0), -1) (or x.flatten(1)), and check the in_features that follow."
    else:
        why = f"the model output has {a} rows for {b} targets: inputs and labels come from different slices or batches"
        fix = "Take inputs and labels from the same index range (xb, yb = X[i:i+bs], y[i:i+bs])."
    msg = f"{loss} got {a} predictions and {b} targets{shown}: {why}"
    return chk.explain("shape.crash-loss-shapes", ctx, msg, fix, input_rows=a, target_rows=b)


def _multi_target(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    inp, tgt, loss = _loss_args(ctx)
    if tgt is not None and len(tgt) == 2 and tgt[1] == 1:
        fix = "Drop the extra dimension of the labels: y = y.squeeze(1) (or y.view(-1))."
        why = f"the target {tgt} has a stray dimension of size 1"
    elif tgt is not None and len(tgt) == 2:
        fix = ("The labels look one-hot: pass class indices y.argmax(1), or float class probabilities "
               "y.float() with the same shape as the output.")
        why = f"the target {tgt} is 2-D (one-hot?) and not float"
    else:
        fix = "Pass class indices of shape (N,): y = y.view(-1)."
        why = f"the target {tgt or ''} has more than one dimension"
    msg = f"{loss} expects class indices of shape (N,) for output {inp or '(N, C)'} but {why}"
    return chk.explain("shape.crash-loss-shapes", ctx, msg, fix, target_shape=tgt)


def _target_size(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    inp, tgt, loss = _loss_args(ctx)
    if inp is not None and len(inp) == 3:
        c = inp[-1]
        fix = (f"{loss} wants the classes in dim 1: for logits (N, L, C) pass logits.permute(0, 2, 1), or "
               f"logits.reshape(-1, {c}) with y.reshape(-1).")
        msg = f"{loss} got output {inp} and target {tgt}: it reads dim 1 ({inp[1]}) as the classes, not dim 2 ({c})"
    else:
        fix = "Give the target the output's shape without the class dimension (dim 1)."
        msg = f"{loss} got output {inp} and target {tgt}: {m.group(0)}"
    return chk.explain("shape.crash-loss-shapes", ctx, msg, fix, input_shape=inp, target_shape=tgt)


def _bce_size(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    sizes = re.findall(r"torch\.Size\(\[([\d, ]*)\]\)", m.group(0))
    if len(sizes) < 2:
        return None
    first, second = tuple(_ints(sizes[0])), tuple(_ints(sizes[1]))
    tgt, inp = (first, second) if "target size" in m.group(0).lower()[:30] else (second, first)
    _, _, loss = _loss_args(ctx)
    if len(inp) == 2 and inp[1] == 1 and tgt == inp[:1]:
        fix = "Match the shapes: logits = model(x).squeeze(1) (shape (N,)), or y = y.unsqueeze(1) (shape (N, 1))."
    else:
        fix = f"Give the output and the target the same shape (output {inp}, target {tgt})."
    msg = f"{loss} needs output and target of the same shape but got output {inp} and target {tgt}"
    return chk.explain("shape.crash-loss-shapes", ctx, msg, fix, input_shape=inp, target_shape=tgt)


def _size_mismatch(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    a, b, dim = (int(g) for g in m.groups())
    inp, tgt, loss = _loss_args(ctx)
    if inp is not None and tgt is not None:
        if len(inp) == 2 and len(tgt) == 1 and loss in ("F.mse_loss", "F.l1_loss", "F.smooth_l1_loss", "F.huber_loss"):
            fix = (f"The output has {inp[1]} columns but the target is 1-D: for class labels use F.cross_entropy; "
                   f"for regression make the model output 1 value and use output.squeeze(1).")
        else:
            fix = f"Give output and target the same shape (output {inp}, target {tgt})."
        msg = f"{loss} got output {inp} and target {tgt}: they differ in dim {dim} ({a} vs {b})"
        return chk.explain("shape.crash-loss-shapes", ctx, msg, fix, input_shape=inp, target_shape=tgt)
    msg = f"two tensors of sizes {a} and {b} (dim {dim}) were combined in {ctx.where}"
    fix = (f"Make the sizes agree at dim {dim} in {ctx.path or 'the failing line'} (a residual/skip connection "
           "or a concatenation whose branches disagree).")
    return chk.explain("shape.crash-size-mismatch", ctx, msg, fix, size_a=a, size_b=b, dim=dim)


def _cat_sizes(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    msg = f"torch.cat in {ctx.where} joins tensors whose other dimensions differ: {m.group(0)}"
    fix = "Make every tensor in the torch.cat list agree in all dimensions except the one concatenated."
    return chk.explain("shape.crash-size-mismatch", ctx, msg, fix)


def _view(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    dims, size = _ints(m.group(1)), int(m.group(2))
    src = _shape(ctx.arg(0)) if ctx.op is not None and ctx.op.name in ("view", "reshape") else None
    src_txt = f" {src}" if src else ""
    if -1 not in dims and len(dims) >= 2 and numel(dims[1:]) > 0 and size % numel(dims[1:]) == 0:
        rows = size // numel(dims[1:])
        msg = (f"a view/reshape to {tuple(dims)} in {ctx.where} hard-codes a batch of {dims[0]}, but the "
               f"tensor{src_txt} holds {rows} samples ({size} values): usually the last, smaller batch")
        fix = "Keep the batch size dynamic: x = x.view(x.size(0), -1) (or x.flatten(1) / x.reshape(len(x), ...))."
    else:
        want = numel(d for d in dims if d != -1)
        msg = (f"a view/reshape to {tuple(dims)} in {ctx.where} does not fit the tensor{src_txt} of {size} "
               f"values ({size} is not a multiple of {want})")
        fix = "Compute the per-sample size from the tensor: x = x.view(x.size(0), -1), then fix the next layer's in_features."
    return chk.explain("shape.crash-view", ctx, msg, fix, view=tuple(dims), numel=size)


def _rnn_input(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    expected, got = int(m.group(1)), int(m.group(2))
    shape = tuple(ctx.input.shape) if ctx.input is not None else None
    path = ctx.path or "the recurrent layer"
    if shape and expected in shape[:-1]:
        fix = (f"The features are not in the last dim of {shape}: permute the input to (batch, seq, features) "
               f"with batch_first=True (x.permute(0, 2, 1)), or (seq, batch, features) without it.")
    else:
        fix = f"Set input_size={got} in {path}, or make the previous layer output {expected} features."
    msg = f"{ctx.where} expects {expected} features in the last dim but got input {shape or '?'} with {got}"
    return chk.explain("shape.crash-rnn-input", ctx, msg, fix, expected=expected, got=got)


def _layer_norm(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    want, got = _ints(m.group(1)), _ints(m.group(2))
    path = ctx.path or "the LayerNorm"
    tail = got[-len(want):] if want else got
    msg = f"{ctx.where} normalises the last dims {tuple(want)} but got input {tuple(got)}"
    fix = f"Set normalized_shape={tuple(tail) if len(tail) > 1 else tail[0]} in {path} (nn.LayerNorm({', '.join(map(str, tail))}))."
    return chk.explain("shape.crash-norm-features", ctx, msg, fix, normalized_shape=tuple(want), got_shape=tuple(got))


def _onehot_target(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    inp, tgt, loss = _loss_args(ctx)
    msg = (f"{loss} got an integer target{f' {tgt}' if tgt else ''} with the output's shape"
           f"{f' {inp}' if inp else ''}: it reads that as class probabilities, which must be float; "
           "integer one-hot labels are the usual cause")
    fix = "Pass class indices instead: loss(output, y.argmax(1)); or, for soft labels, y.float()."
    return chk.explain("dtype.crash-target-dtype", ctx, msg, fix, target_dtype=_dtype_name(m.group(1)))


def _float_ids(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    msg = f"{ctx.where} got token ids as {m.group(1)}: an nn.Embedding needs integer ids"
    fix = "Convert the ids to int64 where the batch is built: ids = ids.long()."
    return chk.explain("dtype.crash-input-dtype", ctx, msg, fix, input_dtype=m.group(1))


def _backward_twice(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    rnn = any(isinstance(mod, nn.RNNBase) for _, root in chk.state.live_models() for mod in root.modules())
    if rnn:
        why = ("the recurrent hidden state carried over from the previous batch still links to that batch's "
               "freed graph")
        fix = "Detach the hidden state between batches: h = h.detach() (for an LSTM: h, c = h.detach(), c.detach())."
    else:
        why = ("a tensor from an earlier step (an accumulated loss, a cached output or a hidden state) is part of "
               "this step's graph, whose buffers were freed by the previous backward()")
        fix = ("Keep step-to-step values out of the graph: total += loss.item() for logging, state = state.detach() "
               "for carried state; use retain_graph=True only for a deliberate second backward.")
    msg = f"backward() ran through a graph that was already freed: {why}"
    return chk.explain("grad-flow.crash-backward-twice", ctx, msg, fix, recurrent=rnn)


def _inplace(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    what = m.group(1).strip() + (f", the output of {m.group(2)}" if m.group(2) else "")
    msg = (f"an in-place operation overwrote a tensor that autograd still needed ({what}): gradients cannot be "
           "computed. nndoctor has no category for this: reported under grad-flow as an explanation only")
    fix = ("Replace the in-place op on that tensor with an out-of-place one: x = x + y instead of x += y, "
           "nn.ReLU() instead of nn.ReLU(inplace=True), x = x.clone() before x[idx] = ....")
    return chk.explain("grad-flow.crash-inplace-modified", ctx, msg, fix, severity=Severity.INFO, tensor=what)


def _frozen_models_in_frame(exc: BaseException) -> list[str]:
    """Variables of the user's failing frame holding a model whose parameters are all frozen."""
    internal = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    frame = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not (name.startswith(internal) or name.startswith("<") or "runpy" in os.path.basename(name)):
            frame = tb.tb_frame
        tb = tb.tb_next
    if frame is None:
        return []
    names: list[str] = []
    for name, value in list(frame.f_locals.items())[:200]:
        if isinstance(value, nn.Module) and not name.startswith("_"):
            params = list(value.parameters())
            if params and not any(p.requires_grad for p in params):
                names.append(name)
    return names


def _empty_params(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    frozen = _frozen_models_in_frame(ctx.event.exc)
    if frozen:
        msg = (f"the optimizer was given no parameters: every parameter of {', '.join(frozen[:3])} has "
               "requires_grad=False (the whole model is frozen), so filtering on p.requires_grad leaves nothing "
               "to train")
        fix = (f"Freeze only the part you keep fixed (e.g. {frozen[0]}.backbone.requires_grad_(False) or the first "
               "layers) and leave the layers you train with requires_grad=True before building the optimizer.")
        return chk.explain("grad-flow.crash-empty-parameter-list", ctx, msg, fix, frozen_models=frozen)
    msg = ("the optimizer was given no parameters: the model registers none, usually because its layers sit in a "
           "plain Python list or dict, or the parameters() generator was already consumed")
    fix = ("Store sub-layers as attributes, nn.ModuleList or nn.ModuleDict (not a list/dict), and pass "
           "model.parameters() fresh to the optimizer.")
    return chk.explain("grad-flow.crash-empty-parameter-list", ctx, msg, fix)


def _state_dict(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    pairs = re.findall(r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) "
                       r"from checkpoint, the shape in current model is torch\.Size\(\[([\d, ]*)\]\)", ctx.msg)
    if not pairs:
        return None
    name, old, new = pairs[0]
    msg = (f"load_state_dict: {len(pairs)} parameter(s) differ in shape, e.g. {name}: checkpoint "
           f"{tuple(_ints(old))} vs model {tuple(_ints(new))}")
    fix = (f"Build the model with the checkpoint's sizes, or drop the mismatched keys (e.g. '{name}') from the "
           "state dict and load with strict=False to re-initialise that layer (e.g. a new number of classes).")
    return chk.explain("shape.crash-state-dict", ctx, msg, fix, mismatched=[p[0] for p in pairs[:8]])


# ---------------------------------------------------------------------- dtype rules
def _param_dtype(module: nn.Module | None) -> str | None:
    if module is None:
        return None
    p = next(iter(module.parameters()), None)
    return str(p.dtype).replace("torch.", "") if p is not None else None


def _input_dtype(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    a, b = _dtype_name(m.group(1)), _dtype_name(m.group(2))
    if m.re is _EXPECTED_FOUND:  # "expected scalar type <param> but found <input>"
        a, b = b, a
    x_dt = str(ctx.input.dtype).replace("torch.", "") if ctx.input is not None else a
    w_dt = _param_dtype(ctx.module) or b
    if x_dt == w_dt:
        x_dt, w_dt = a, b
    shape = f" {tuple(ctx.input.shape)}" if ctx.input is not None else ""
    if x_dt == "float64" and w_dt == "float32":
        why = "the data is float64, numpy's default, while the model is float32"
        fix = ("Convert the data to float32 where it is loaded: X = torch.from_numpy(X).float() "
               "(or torch.tensor(X, dtype=torch.float32)).")
    elif x_dt.startswith(("int", "uint")) or x_dt == "bool":
        why = f"integer inputs reach a layer with {w_dt} weights; only nn.Embedding takes integer ids"
        fix = ("Convert the inputs to float: x = x.float() (raw uint8 pixels: x.float() / 255, then normalise); "
               "for token ids, feed them to an nn.Embedding first.")
    elif x_dt == "float32" and w_dt == "float64":
        why = "the model is float64 (model.double()) while the data is float32"
        fix = "Remove .double() from the model (keep model and data in float32)."
    elif "16" in x_dt or "16" in w_dt:
        why = f"a {w_dt} layer gets {x_dt} input: half precision applied to only one of them"
        fix = ("Keep the model in float32 and use torch.autocast(device_type=..., dtype=torch.float16) for the "
               "forward pass instead of .half().")
    else:
        why = f"the input is {x_dt} but the layer's weights are {w_dt}"
        fix = f"Cast the input to the model's dtype: x = x.to({w_dt})."
    msg = f"{ctx.where} got {_a(x_dt)} input{shape} but its weights are {w_dt}: {why}"
    return chk.explain("dtype.crash-input-dtype", ctx, msg, fix, input_dtype=x_dt, weight_dtype=w_dt)


def _class_target_dtype(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    got = _dtype_name(m.group(1))
    inp, tgt_shape, loss = _loss_args(ctx)
    tgt = ctx.arg(1, "target") if ctx.op is not None else None
    values = ""
    fix = "Pass class indices as int64: y = y.long() (torch.tensor(labels, dtype=torch.long))."
    if isinstance(tgt, torch.Tensor) and tgt.numel() and tgt.is_floating_point():
        t = tgt.detach()
        lo, hi = t.min().item(), t.max().item()
        values = f" with values {fmt(lo)}..{fmt(hi)}"
        if not bool(torch.equal(t, t.round())):
            fix = ("The targets are not class ids (non-integer values): for regression use F.mse_loss; for soft "
                   "labels pass float probabilities with the output's shape (N, C).")
    msg = (f"{loss} needs class indices as int64 (torch.long) but the target{f' {tgt_shape}' if tgt_shape else ''} "
           f"is {got}{values}")
    return chk.explain("dtype.crash-target-dtype", ctx, msg, fix, target_dtype=got, target_shape=tgt_shape)


def _found_dtype(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    found, expected = _dtype_name(m.group(1)), _dtype_name(m.group(2))
    inp, tgt, loss = _loss_args(ctx)
    if found == "float64":
        msg = f"{loss} got a float64 target{f' {tgt}' if tgt else ''} for a {expected} output (numpy's default dtype)"
        fix = "Convert the targets once where they are loaded: y = torch.from_numpy(y).float()."
        return chk.explain("dtype.crash-target-dtype", ctx, msg, fix, target_dtype=found, expected_dtype=expected)
    if not found.startswith(("int", "uint", "bool")):
        return None
    where = loss if ctx.op is not None and ctx.op.name in _LOSS_NAMES else "a loss (or its backward pass)"
    msg = (f"{where} got {_a(found)} target{f' {tgt}' if tgt else ''} but needs {expected}: integer labels for a "
           "BCE/MSE-style loss must be float")
    fix = "Convert the targets to float: y = y.float() (for BCE also match the output's shape: y.view(-1, 1))."
    return chk.explain("dtype.crash-target-dtype", ctx, msg, fix, target_dtype=found, expected_dtype=expected)


def _cast_result(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    res, out = _dtype_name(m.group(1)), _dtype_name(m.group(2))
    if ctx.op is not None and ctx.op.name in _LOSS_NAMES:
        _, tgt, loss = _loss_args(ctx)
        msg = f"{loss} got {_a(out)} target{f' {tgt}' if tgt else ''}: BCE-style losses need float targets"
        fix = "Convert the targets to float: y = y.float()."
        return chk.explain("dtype.crash-target-dtype", ctx, msg, fix, target_dtype=out)
    msg = (f"an in-place operation wrote {_a(res)} result into {_a(out)} tensor (e.g. x /= 255 on uint8/int data)")
    fix = "Convert before scaling, out of place: x = x.float() / 255 (never x /= 255 on an integer tensor)."
    return chk.explain("dtype.crash-input-dtype", ctx, msg, fix, result_dtype=res, tensor_dtype=out)


def _bool_sub(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    if ctx.op is not None and ctx.op.name in _LOSS_NAMES:
        _, tgt, loss = _loss_args(ctx)
        msg = f"{loss} got a bool target{f' {tgt}' if tgt else ''} (e.g. y = x > 0): BCE-style losses need float targets"
        fix = "Convert the targets to float: y = (x > 0).float()."
        return chk.explain("dtype.crash-target-dtype", ctx, msg, fix, target_dtype="bool")
    msg = f"two bool tensors were subtracted in {ctx.where}: masks must be converted before arithmetic"
    fix = "Convert the masks first (mask.float()), or use mask_a ^ mask_b / torch.logical_xor for a difference."
    return chk.explain("dtype.crash-input-dtype", ctx, msg, fix, input_dtype="bool")


# ---------------------------------------------------------------------- preprocessing rules
def _target_bounds(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    bad = int(m.group(1)) if m.groups() and m.group(1) else None
    inp, tgt_t = ctx.arg(0, "input"), ctx.arg(1, "target")
    loss = f"F.{ctx.op.name}" if ctx.op is not None and ctx.op.name in _LOSS_NAMES else "the loss"
    n_cls = int(inp.shape[1]) if isinstance(inp, torch.Tensor) and inp.dim() >= 2 else None
    lo = hi = None
    if isinstance(tgt_t, torch.Tensor) and tgt_t.numel() and not tgt_t.is_cuda:
        ignore = (ctx.op.kwargs.get("ignore_index", -100) if ctx.op is not None else -100)
        t = tgt_t.detach()
        t = t[t != ignore] if isinstance(ignore, int) else t
        if t.numel():
            lo, hi = int(t.min()), int(t.max())
    head = chk.last_linear(n_cls) if n_cls else ""
    head_txt = f" ({head} has out_features={n_cls})" if head else ""
    if n_cls is not None and lo is not None and hi is not None:
        if lo >= 1 and hi == n_cls:
            fix = f"The labels are 1-based ({lo}..{hi}): subtract 1 (y = y - 1) so they run 0..{n_cls - 1}."
        elif lo < 0:
            fix = (f"The labels contain {lo} (e.g. -1 for 'unlabelled'): pass ignore_index={lo} to the loss, or "
                   "drop those samples.")
        else:
            fix = (f"The labels go up to {hi}: give the last layer {hi + 1} outputs ({head or 'the output layer'}: "
                   f"out_features={hi + 1}), or remap the labels to 0..{n_cls - 1}.")
        msg = (f"{loss} got class labels {lo}..{hi} but the model outputs {n_cls} classes{head_txt}, so valid "
               f"labels are 0..{n_cls - 1}")
    else:
        fix = ("Make every label lie in 0..C-1 for C model outputs: subtract 1 from 1-based labels, or give the "
               "last layer more outputs.")
        what = f"label {bad}" if bad is not None else "a class label"
        msg = f"{loss} got {what}, outside 0..C-1 for the model's C outputs{head_txt}"
    sev = Severity.ERROR if "out of bounds" in ctx.msg else Severity.WARNING
    return chk.explain("preprocessing.crash-target-out-of-range", ctx, msg, fix, severity=sev,
                       classes=n_cls, label_min=lo, label_max=hi)


def _device_assert(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    if ctx.op is not None and ctx.op.name in ("cross_entropy", "nll_loss"):
        return _target_bounds(chk, ctx, m)
    if isinstance(ctx.module, nn.Embedding) or (ctx.op is not None and ctx.op.name == "embedding"):
        return _embedding_index(chk, ctx, m)
    return None


def _embedding_index(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    mod = ctx.module
    if not isinstance(mod, nn.Embedding):
        return None
    ids = ctx.input
    lo = hi = None
    if isinstance(ids, torch.Tensor) and ids.numel() and not ids.is_cuda and not ids.is_floating_point():
        lo, hi = int(ids.min()), int(ids.max())
    n = mod.num_embeddings
    if hi is not None and lo is not None and lo >= 0:
        msg = f"{ctx.where} has {n} rows but got token ids up to {hi}: ids must be < num_embeddings"
        fix = f"Set num_embeddings to the vocabulary size (at least {hi + 1}) in {ctx.path}, or remap the ids."
    elif lo is not None and lo < 0:
        msg = f"{ctx.where} got negative token ids (min {lo})"
        fix = "Map padding/unknown tokens to a valid id (e.g. 0 with padding_idx=0) instead of a negative one."
    else:
        msg = f"{ctx.where} has {n} rows and got an id outside 0..{n - 1}"
        fix = f"Set num_embeddings to the vocabulary size in {ctx.path}, or remap the ids into 0..{n - 1}."
    return chk.explain("preprocessing.crash-index-out-of-range", ctx, msg, fix, num_embeddings=n,
                       id_min=lo, id_max=hi)


# ---------------------------------------------------------------------- grad-flow, device, memory
def _no_grad_fn(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    models = chk.state.live_models()
    frozen = [info.name for info, mod in models
              if any(True for _ in mod.parameters()) and not any(p.requires_grad for p in mod.parameters())]
    loss, fwd = chk.last_loss, chk.state.last_forward
    if frozen and len(frozen) == len(models):
        why = f"every parameter of {', '.join(frozen)} has requires_grad=False (all layers frozen)"
        fix = "Unfreeze at least the layers you train: for p in model.head.parameters(): p.requires_grad = True."
    elif fwd is not None and not fwd[2]:
        why = f"{fwd[0]}(x) ran under torch.no_grad() / inference_mode, so no graph was recorded"
        fix = "Run the training forward pass and the loss outside torch.no_grad(); keep no_grad for evaluation only."
    elif loss is not None and not loss["grad"]:
        why = f"the loss F.{loss['name']} at {loss['site']} was computed under torch.no_grad()"
        fix = "Compute the training loss outside torch.no_grad()."
    elif loss is not None and not loss["input_requires_grad"]:
        why = (f"the prediction passed to F.{loss['name']} at {loss['site']} is cut from the model's graph "
               "(.detach(), .item(), .numpy(), .data or torch.tensor(pred) rebuilds it without history)")
        fix = ("Feed the model output itself to the loss: remove .detach()/.item()/.numpy()/torch.tensor(...) "
               "between model(x) and the loss.")
    else:
        why = ("the loss does not depend on any parameter: it was rebuilt from a detached value (.detach(), "
               ".item(), .numpy(), torch.tensor(pred)) or computed under torch.no_grad()")
        fix = "Compute the loss from the model's output tensor directly, with autograd enabled."
    msg = f"loss.backward() failed because the loss has no grad_fn: {why}"
    return chk.explain("grad-flow.crash-loss-without-grad", ctx, msg, fix)


def _device(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    p = next(iter(ctx.module.parameters()), None) if ctx.module is not None else None
    devices = ", ".join(sorted(set(re.findall(r"(cuda:\d+|cuda|cpu|mps)", ctx.msg)))) or "two devices"
    extra = ""
    if p is not None and ctx.input is not None:
        extra = f": its weights are on {p.device}, its input on {ctx.input.device}"
    msg = (f"{ctx.where} mixes tensors on different devices ({devices}){extra}. nndoctor has no device category: "
           "reported under dtype as an explanation only")
    fix = "Move model and data to the same device: device = 'cuda'; model.to(device); x, y = x.to(device), y.to(device)."
    return chk.explain("dtype.crash-device-mismatch", ctx, msg, fix, severity=Severity.INFO, devices=devices)


def _oom(chk: CrashExplainer, ctx: _Ctx, m: re.Match[str]) -> Finding | None:
    batch = int(ctx.input.shape[0]) if ctx.input is not None and ctx.input.dim() else None
    shape = f" with input {tuple(ctx.input.shape)}" if ctx.input is not None else ""
    msg = (f"out of memory in {ctx.where}{shape}. nndoctor has no memory category: reported under shape "
           "(memory grows with batch and input size) as an explanation only")
    fix = (f"Halve the batch size (now {batch}, try {max(batch // 2, 1)})." if batch
           else "Halve the batch size, then scale back other memory-heavy settings one at a time.")
    return chk.explain("shape.crash-out-of-memory", ctx, msg, fix, severity=Severity.INFO, batch_size=batch)


_EXPECTED_FOUND = re.compile(r"expected scalar type (\w+) but found (\w+)")
_SIZE = r"torch\.Size\(\[[\d, ]*\]\)"

#: (pattern, rule) in order; the first rule that returns a finding wins
RULES: list[tuple[re.Pattern[str], Rule]] = [
    (re.compile(r"out of memory|can't allocate memory", re.I), _oom),
    (re.compile(r"Expected all tensors to be on the same device|Input type \(torch\.cuda\.\w+\) and weight "
                r"type \(torch\.\w+\)|Input type \(torch\.\w+\) and weight type \(torch\.cuda\.\w+\)"), _device),
    (re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"), _linear),
    (re.compile(r"weight of size \[([\d, ]+)\], expected input\[([\d, ]+)\] to have (\d+) channels, "
                r"but got (\d+) channels"), _conv_channels),
    (re.compile(r"Expected (\d)D \(unbatched\) or (\d)D \(batched\) input to (conv\dd|conv_transpose\dd), "
                r"but got input of size: \[([\d, ]+)\]"), _conv_dims),
    (re.compile(r"running_mean should contain (\d+) elements not (\d+)"), _norm_features),
    (re.compile(r"Given normalized_shape=\[([\d, ]+)\], expected input with shape \[\*?[\d, *]*\], "
                r"but got input of size ?\[([\d, ]+)\]"), _layer_norm),
    (re.compile(r"Expected more than 1 value per channel when training, got input size (.+)$", re.M), _batch_of_one),
    (re.compile(r"Expected input batch_size \((\d+)\) to match target batch_size \((\d+)\)"), _batch_size),
    (re.compile(r"0D or 1D target tensor expected, multi-target not supported"), _multi_target),
    (re.compile(r"Expected target size (\[[\d, ]+\]|\(.*?\)), got (.+)$", re.M), _target_size),
    (re.compile(rf"Using a target size \({_SIZE}\) that is different to the input size \({_SIZE}\)|"
                rf"Target size \({_SIZE}\) must be the same as input size \({_SIZE}\)"), _bce_size),
    (re.compile(r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton "
                r"dimension (\d+)"), _size_mismatch),
    (re.compile(r"Sizes of tensors must match except in dimension \d+.*"), _cat_sizes),
    (re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)"), _view),
    (re.compile(r"input\.size\(-1\) must be equal to input_size\. Expected (\d+), got (\d+)"), _rnn_input),
    (re.compile(r"mat1 and mat2 must have the same dtype, but got (\w+) and (\w+)"), _input_dtype),
    (re.compile(r"Input type \(([\w ]+)\) and (?:bias|weight) type \(([\w ]+)\) should be the same"), _input_dtype),
    (re.compile(r"expected (?:target dtype to be Long or Byte, but got|scalar type Long but found) (\w+)"),
     _class_target_dtype),
    (_EXPECTED_FOUND, _input_dtype),
    (re.compile(r"Found dtype (\w+) but expected (\w+)"), _found_dtype),
    (re.compile(r"Subtraction, the `-` operator, with two bool tensors is not supported"), _bool_sub),
    (re.compile(r"Expected floating point type for target with class probabilities, got (\w+)"), _onehot_target),
    (re.compile(r"'indices' to have one of the following scalar types: Long, Int; but got (\S+) instead"), _float_ids),
    (re.compile(r"Trying to backward through the graph a second time"), _backward_twice),
    (re.compile(r"modified by an inplace operation: \[(\S+ \[[\d, ]*\])\](?:, which is output \d+ of (\w+))?"),
     _inplace),
    (re.compile(r"optimizer got an empty parameter list"), _empty_params),
    (re.compile(r"size mismatch for [\w.]+: copying a param"), _state_dict),
    (re.compile(r"result type (\w+) can't be cast to the desired output type (\w+)"), _cast_result),
    (re.compile(r"Target (-?\d+) is out of bounds"), _target_bounds),
    (re.compile(r"index out of range in self"), _embedding_index),
    (re.compile(r"device-side assert triggered"), _device_assert),
    (re.compile(r"element 0 of tensors does not require grad and does not have a grad_fn"), _no_grad_fn),
    *BCE_RULES,
]
