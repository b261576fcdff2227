"""The model: dropout down, training/eval mode, leaky ReLU, layers registered in a
ModuleList, batch_first RNNs."""

from __future__ import annotations

import ast
from typing import Callable

from nndoctor.fix.edits.common import Finding, ev, kwarg, loop_of, name_of, only_backward, set_kwarg, unique
from nndoctor.fix.source import Patch, Source, dotted, indent_of

__all__ = ["TRANSFORMS"]

_UNREGISTERED = ("grad-flow.unregistered-layers", "grad-flow.params-not-in-optimizer", "grad-flow.params-not-updated")


def _dropout(f: Finding, src: Source, p: Patch) -> bool:
    done = False
    for call in src.calls("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "dropout"):
        kw = kwarg(call, "p")
        functional = dotted(call.func).split(".")[-1] == "dropout"
        position = 1 if functional else 0
        node = kw.value if kw is not None else (call.args[position] if len(call.args) > position else None)
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value > 0.5:
            done = p.replace(node, "0.2") or done
    return done


def _train_mode(f: Finding, src: Source, p: Patch) -> bool:
    model = name_of(ev(f).get("model") or f.get("location"))
    back = only_backward(src)
    if not model or back is None:
        return False
    if f.get("code") == "train-mode.training-in-eval-mode":
        loop = loop_of(src, back)
        if loop is None or not loop.body:
            return False
        first = loop.body[0]
        p.insert_before(first.lineno, f"{indent_of(src.line(first.lineno))}{model}.train()")
        return True
    training = loop_of(src, back)
    blocks = [w for w in ast.walk(src.tree) if isinstance(w, ast.With) and any(
        dotted(getattr(i.context_expr, "func", i.context_expr)).split(".")[-1] in ("no_grad", "inference_mode")
        for i in w.items)]
    if len(blocks) != 1 or (training is not None and loop_of(src, blocks[0]) is training):
        return False  # an evaluation inside the training loop: .train() must follow; shown, not patched
    p.insert_before(blocks[0].lineno, f"{indent_of(src.line(blocks[0].lineno))}{model}.eval()")
    return True


def _leaky(f: Finding, src: Source, p: Patch) -> bool:
    done = False
    for call in src.calls("ReLU", "relu"):
        name = dotted(call.func)
        if name.endswith("ReLU"):
            extra = "".join(f", {src.segment(k)}" for k in call.keywords)
            done = p.replace(call, f"{name[:-4]}LeakyReLU(0.01{extra})") or done
        elif name in ("F.relu", "torch.relu", "torch.nn.functional.relu", "nn.functional.relu"):
            done = p.replace(call.func, "F.leaky_relu" if name == "F.relu" else "torch.nn.functional.leaky_relu") \
                or done
    return done


def _unregistered(f: Finding, src: Source, p: Patch) -> bool:
    """``self.layers = [nn.Linear(...), ...]`` -> ``nn.ModuleList([...])`` (the only such list)."""
    lists = [n for n in ast.walk(src.tree) if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Attribute)
             and isinstance(n.value, (ast.List, ast.ListComp))
             and any(isinstance(c, ast.Call) and dotted(c.func).startswith(("nn.", "torch.nn."))
                     for c in ast.walk(n.value))]
    node = lists[0].value if len(lists) == 1 else None
    return node is not None and p.replace(node, f"nn.ModuleList({src.segment(node)})")


def _batch_first(f: Finding, src: Source, p: Patch) -> bool:
    rnn = [c for c in src.calls("LSTM", "GRU", "RNN") if kwarg(c, "batch_first") is None
           or getattr(kwarg(c, "batch_first").value, "value", None) is False]  # type: ignore[union-attr]
    attr = str(f.get("location") or "").rsplit(".", 1)[-1]
    if len(rnn) > 1 and attr:
        rnn = [c for c in rnn if src.assigned_name(c) == attr]
    call = unique(rnn)
    return call is not None and set_kwarg(p, call, "batch_first", "True")


def _bend_activation(f: Finding, src: Source, p: Patch) -> bool:
    """``nn.LeakyReLU(True)`` -> ``nn.LeakyReLU(inplace=True)``; a positional slope of 1 -> 0.01."""
    done = False
    for call in src.calls("LeakyReLU"):
        if not call.args or not isinstance(call.args[0], ast.Constant):
            continue
        value = call.args[0].value
        if value is True:
            done = p.replace(call.args[0], "inplace=True") or done
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value - 1.0) < 0.1:
            done = p.replace(call.args[0], "0.01") or done
    return done


TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    "bend-activation": _bend_activation,
    "less-dropout": _dropout, "train-mode-while-training": _train_mode, "leaky-relu": _leaky, "batch-first-rnn": _batch_first,
    "vanishing-gradients": lambda f, src, p: "relu" in str(ev(f).get("activation", "")) and _leaky(f, src, p),
    "unfreeze": lambda f, src, p: f.get("code") in _UNREGISTERED and _unregistered(f, src, p),
}
