"""The loss's inputs and arguments: an output activation dropped, log before NLL, the
softmax's dim, sigmoid for multi-label, KL-div log inputs, the target reshaped, class weights."""

from __future__ import annotations

import ast
from typing import Callable

from nndoctor.fix.edits.common import IDENT, Finding, activation_calls, add_kwarg, ev, kwarg, round3, unique
from nndoctor.fix.source import Patch, Source, dotted

__all__ = ["TRANSFORMS"]


def _drop_activation(f: Finding, src: Source, p: Patch) -> bool:
    default = {"loss-input.relu-into-logit-loss": "relu", "loss-input.log-softmax-into-cross-entropy": "log_softmax",
               "loss-input.log-probabilities-into-logit-loss": "log_softmax"}.get(str(f.get("code")), "softmax")
    call = unique(activation_calls(f, src, default))
    if call is None:
        return False
    name = dotted(call.func)
    if name.split(".")[-1][:1].isupper():  # nn.Softmax(dim=1) -> nn.Identity()
        return p.replace(call, name.rsplit(".", 1)[0] + ".Identity()" if "." in name else "nn.Identity()")
    if isinstance(call.func, ast.Attribute) and not name.startswith(("F.", "torch.", "nn.functional.")) \
            and "functional" not in name and name.split(".")[0] not in ("F", "torch"):
        return p.replace(call, src.segment(call.func.value))   # logits.softmax(1) -> logits
    return bool(call.args) and p.replace(call, src.segment(call.args[0]))  # F.softmax(x, 1) -> x


def _log_for_nll(f: Finding, src: Source, p: Patch) -> bool:
    if f.get("code") == "loss-input.probabilities-into-nll-loss":
        call = unique(activation_calls(f, src, "softmax"))
        if call is None:
            return False
        func = src.segment(call.func)
        return p.replace(call.func, func[:-len("softmax")] + ("LogSoftmax" if func.endswith("Softmax")
                                                              else "log_softmax"))
    at = src.site_line(ev(f).get("site"))
    call = unique([c for c in src.calls("nll_loss") if c.lineno == at]) or unique(src.calls("NLLLoss"))
    if call is None:
        return False
    func = src.segment(call.func)
    new = func[:-len("nll_loss")] + "cross_entropy" if func.endswith("nll_loss") else \
        func[:-len("NLLLoss")] + "CrossEntropyLoss"
    return p.replace(call.func, new)


def _reshape_target(f: Finding, src: Source, p: Patch) -> bool:
    at = src.site_line(ev(f).get("site"))
    calls = [c for c in ast.walk(src.tree) if isinstance(c, ast.Call) and c.lineno == at and len(c.args) >= 2]
    call = unique(calls)
    if call is None:
        return False
    target, pred = src.segment(call.args[1]), src.segment(call.args[0])
    wrapped = target if IDENT.fullmatch(target) or isinstance(call.args[1], (ast.Subscript, ast.Call)) \
        else f"({target})"
    return p.replace(call.args[1], f"{wrapped}.view_as({pred})")


def _class_weights(f: Finding, src: Source, p: Patch) -> bool:
    counts = {int(k): int(v) for k, v in (ev(f).get("counts") or {}).items()}
    if len(counts) < 2 or min(counts.values()) <= 0 or "import torch" not in "\n".join(src.lines):
        return False
    total, k = sum(counts.values()), max(counts) + 1
    bce = unique(src.calls("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"))
    if k == 2 and bce is not None and kwarg(bce, "pos_weight") is None:
        return add_kwarg(p, bce, f"pos_weight=torch.tensor({round3(counts[0] / counts[1])})")
    ce = unique(src.calls("CrossEntropyLoss", "cross_entropy"))
    if ce is None or kwarg(ce, "weight") is not None:
        return False
    weights = ", ".join(round3(total / (len(counts) * counts[c])) if counts.get(c) else "0.0" for c in range(k))
    return add_kwarg(p, ce, f"weight=torch.tensor([{weights}])")


def _softmax_dim(f: Finding, src: Source, p: Patch) -> bool:
    """``softmax(x, 0)`` / ``dim=0`` -> 1 (the only softmax over dim 0)."""
    def dim_node(c: ast.Call) -> ast.expr | None:
        kw = kwarg(c, "dim")
        method = not dotted(c.func).startswith(("F.", "torch.", "nn.")) and isinstance(c.func, ast.Attribute)
        return kw.value if kw is not None else (c.args[0] if method and c.args else c.args[1] if len(c.args) > 1
                                                else None)

    zero = [c for c in activation_calls(f, src, "softmax") if isinstance(dim_node(c), ast.Constant)
            and getattr(dim_node(c), "value", None) == 0]
    call = unique(zero)
    node = dim_node(call) if call is not None else None
    return node is not None and p.replace(node, "1")


def _sigmoid(f: Finding, src: Source, p: Patch) -> bool:
    """``F.softmax(z, dim=1)`` -> ``torch.sigmoid(z)``; ``nn.Softmax(dim=1)`` -> ``nn.Sigmoid()``."""
    call = unique(activation_calls(f, src, "softmax"))
    if call is None:
        return False
    name = dotted(call.func)
    if name.endswith("LogSoftmax"):
        return False
    if name.endswith("Softmax"):
        return p.replace(call, name[:-len("Softmax")] + "Sigmoid()")
    if name.split(".")[0] in ("F", "torch", "nn") and call.args and "import torch" in "\n".join(src.lines):
        return p.replace(call, f"torch.sigmoid({src.segment(call.args[0])})")
    return False


def _kl_div(f: Finding, src: Source, p: Patch) -> bool:
    at = src.site_line(ev(f).get("site"))
    if f.get("code") == "loss-input.log-probabilities-as-kl-div-target":
        call = unique([c for c in src.calls("kl_div") if c.lineno == at]) or unique(src.calls("KLDivLoss"))
        return call is not None and kwarg(call, "log_target") is None and add_kwarg(p, call, "log_target=True")
    call = unique([c for c in src.calls("kl_div") if c.lineno == at]) or unique(
        [c for c in ast.walk(src.tree) if isinstance(c, ast.Call) and c.lineno == at and len(c.args) >= 2])
    if call is None or not call.args:
        return False
    first = call.args[0]
    if isinstance(first, ast.Call) and dotted(first.func).endswith("softmax") \
            and not dotted(first.func).endswith("log_softmax"):
        return p.replace(first.func, src.segment(first.func)[:-len("softmax")] + "log_softmax")
    seg = src.segment(first)
    return p.replace(first, f"{seg}.log()" if IDENT.fullmatch(seg) else f"({seg}).log()")


def _ignore_padding(f: Finding, src: Source, p: Patch) -> bool:
    """``ignore_index=<the padding target>`` added to the only cross-entropy / NLL loss."""
    pad = ev(f).get("pad_target")
    call = unique(src.calls("CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss"))
    return isinstance(pad, int) and call is not None and kwarg(call, "ignore_index") is None \
        and add_kwarg(p, call, f"ignore_index={pad}")


TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    "drop-output-activation": _drop_activation, "log-before-nll": _log_for_nll,
    "reshape-target": _reshape_target, "class-weighted-loss": _class_weights,
    "softmax-over-classes": _softmax_dim, "sigmoid-instead-of-softmax": _sigmoid, "kl-div-log-inputs": _kl_div,
    "ignore-padding": _ignore_padding,
}
