"""The edit that makes a verified remedy permanent, at file:line in the user's script.

Each remedy kind has a locator: the finding's call site (``evidence.site``: the loss call), the
optimizer's construction (the one assigned to the finding's optimizer name, else the only
one), the module's definition (the only ``nn.Softmax(...)``), the ``loss.backward()``
statement, the DataLoader. When the location is found and a conservative textual transform
applies (a keyword value replaced, ``nn.Softmax(dim=1)`` -> ``nn.Identity()``, one line
inserted before ``loss.backward()``), the edit is a unified diff; when only the line is
known, it is that line with the instruction; otherwise the instruction alone (no diff).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

from nndoctor.fix.source import Patch, Source, dotted, indent_of

__all__ = ["SourceEdit", "source_edit"]

Finding = dict[str, Any]

_OPTIMIZERS = tuple(n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)
                    and issubclass(getattr(torch.optim, n), torch.optim.Optimizer) and n != "Optimizer")
_IDENT = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class SourceEdit:
    instruction: str
    file: str | None = None
    line: int | None = None
    diff: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "diff": self.diff, "instruction": self.instruction}

    def text(self) -> str:
        """One line for the terminal: where, and what (the diff is shown apart)."""
        where = f"{self.file}:{self.line}: " if self.file and self.line else ""
        return where + self.instruction


# -- helpers -------------------------------------------------------------------------------
def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


def _name(value: Any) -> str:
    """``opt`` from ``"opt (SGD)"``; "" when it is no identifier."""
    m = _IDENT.match(str(value or "").strip())
    return m.group(0) if m else ""


def _unique(calls: list[ast.Call]) -> ast.Call | None:
    return calls[0] if len(calls) == 1 else None


def _kwarg(call: ast.Call, key: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == key), None)


def _add_kwarg(p: Patch, call: ast.Call, text: str) -> bool:
    """Append ``text`` (``key=value``) as the call's last argument, before its closing paren."""
    if call.end_lineno is None or call.end_col_offset is None or any(k.arg is None for k in call.keywords):
        return False
    raw = p.source.line(call.end_lineno).encode("utf-8")
    col = call.end_col_offset - 1
    if raw[col:col + 1] != b")":
        return False
    head = raw[:col].rstrip()
    sep = "" if not (call.args or call.keywords) or head.endswith((b",", b"(")) else ", "
    p.insert_at(call.end_lineno, col, sep + text)
    return True


def _set_kwarg(p: Patch, call: ast.Call, key: str, value: str, position: int | None = None) -> bool:
    kw = _kwarg(call, key)
    if kw is not None:
        return p.replace(kw.value, value)
    if position is not None and len(call.args) > position:
        return p.replace(call.args[position], value)
    return _add_kwarg(p, call, f"{key}={value}")


def _optimizer_call(f: Finding, src: Source) -> ast.Call | None:
    calls = src.calls(*_OPTIMIZERS)
    name = _name(_ev(f).get("optimizer") or f.get("location")).split(".")[-1]
    if len(calls) > 1 and name:
        calls = [c for c in calls if src.assigned_name(c) == name]
    return _unique(calls)


def _statements(src: Source, method: str) -> list[ast.Expr]:
    """Expression statements calling ``.method(...)`` (``loss.backward()``, ``opt.step()``)."""
    return [n for n in ast.walk(src.tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
            and dotted(n.value.func).split(".")[-1] == method]


def _only_backward(src: Source) -> ast.Expr | None:
    found = _statements(src, "backward")
    return found[0] if len(found) == 1 else None


def _loop_of(src: Source, node: ast.AST) -> ast.For | ast.While | None:
    parents = src.parents()
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.For, ast.While)):
            return node
    return None


def _round(v: float) -> str:
    return f"{v:.3g}"


# -- one locator/transform per remedy kind ---------------------------------------------------
_ACT = {"softmax": ("Softmax", "softmax"), "sigmoid": ("Sigmoid", "sigmoid"),
        "log_softmax": ("LogSoftmax", "log_softmax"), "relu": ("ReLU", "relu")}


def _activation_calls(f: Finding, src: Source, default: str) -> list[ast.Call]:
    act = str(_ev(f).get("activation", default)).split()[0].lower().replace("nn.", "")
    act = {"logsoftmax": "log_softmax"}.get(act, act)
    module, functional = _ACT.get(act, _ACT["softmax"])
    calls = src.calls(module, functional)
    at = src.site_line(_ev(f).get("site"))
    on_site = [c for c in calls if c.lineno == at]
    return on_site or calls


def _drop_activation(f: Finding, src: Source, p: Patch) -> bool:
    default = {"loss-input.relu-into-logit-loss": "relu", "loss-input.log-softmax-into-cross-entropy": "log_softmax",
               "loss-input.log-probabilities-into-logit-loss": "log_softmax"}.get(str(f.get("code")), "softmax")
    call = _unique(_activation_calls(f, src, default))
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
        call = _unique(_activation_calls(f, src, "softmax"))
        if call is None:
            return False
        func = src.segment(call.func)
        return p.replace(call.func, func[:-len("softmax")] + ("LogSoftmax" if func.endswith("Softmax")
                                                              else "log_softmax"))
    at = src.site_line(_ev(f).get("site"))
    call = _unique([c for c in src.calls("nll_loss") if c.lineno == at]) or _unique(src.calls("NLLLoss"))
    if call is None:
        return False
    func = src.segment(call.func)
    new = func[:-len("nll_loss")] + "cross_entropy" if func.endswith("nll_loss") else \
        func[:-len("NLLLoss")] + "CrossEntropyLoss"
    return p.replace(call.func, new)


def _learning_rate(f: Finding, src: Source, p: Patch) -> bool:
    from nndoctor.fix.remedies import suggested_lr

    call, lr = _optimizer_call(f, src), suggested_lr(f)
    return call is not None and lr is not None and _set_kwarg(p, call, "lr", _round(lr), position=1)


def _weight_decay(f: Finding, src: Source, p: Patch) -> bool:
    call = _optimizer_call(f, src)
    kw = _kwarg(call, "weight_decay") if call is not None else None
    if kw is None or not isinstance(kw.value, ast.Constant) or not isinstance(kw.value.value, (int, float)):
        return False
    suggested = _ev(f).get("suggested")
    try:
        value = float(suggested)
    except (TypeError, ValueError):
        value = float(kw.value.value) / 100
    return p.replace(kw.value, _round(value))


def _optimizer_default(f: Finding, src: Source, p: Patch) -> bool:
    from nndoctor.fix.more_remedies import _SANE, _setting

    setting, call = _setting(f), _optimizer_call(f, src)
    kw = _kwarg(call, setting) if call is not None else None
    return kw is not None and setting in _SANE and p.replace(kw.value, repr(_SANE[setting][1]))


def _dropout(f: Finding, src: Source, p: Patch) -> bool:
    done = False
    for call in src.calls("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "dropout"):
        kw = _kwarg(call, "p")
        functional = dotted(call.func).split(".")[-1] == "dropout"
        position = 1 if functional else 0
        node = kw.value if kw is not None else (call.args[position] if len(call.args) > position else None)
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value > 0.5:
            done = p.replace(node, "0.2") or done
    return done


def _shuffle(f: Finding, src: Source, p: Patch) -> bool:
    loaders = [c for c in src.calls("DataLoader") if _kwarg(c, "sampler") is None
               and _kwarg(c, "batch_sampler") is None
               and not (isinstance(getattr(_kwarg(c, "shuffle"), "value", None), ast.Constant)
                        and _kwarg(c, "shuffle").value.value is True)]  # type: ignore[union-attr]
    if len(loaders) > 1:
        loaders = [c for c in loaders if "train" in src.assigned_name(c).lower()]
    call = _unique(loaders)
    return call is not None and _set_kwarg(p, call, "shuffle", "True", position=2)


def _zero_grad(f: Finding, src: Source, p: Patch) -> bool:
    opt = _name(_ev(f).get("optimizer") or f.get("location"))
    back = _only_backward(src)
    if back is None or not opt:
        return False
    indent = indent_of(src.line(back.lineno))
    if f.get("code") == "zero-grad.cleared-before-step":
        clears = [s for s in _statements(src, "zero_grad") if s.lineno > back.lineno
                  and dotted(s.value.func).split(".")[0] == opt.split(".")[0]]  # type: ignore[attr-defined]
        if len(clears) != 1 or clears[0].lineno != clears[0].end_lineno:
            return False
        p.delete(clears[0].lineno)
        p.insert_before(back.lineno, indent + src.line(clears[0].lineno).strip())
        return True
    p.insert_before(back.lineno, f"{indent}{opt}.zero_grad()")
    return True


def _train_mode(f: Finding, src: Source, p: Patch) -> bool:
    model = _name(_ev(f).get("model") or f.get("location"))
    back = _only_backward(src)
    if not model or back is None:
        return False
    if f.get("code") == "train-mode.training-in-eval-mode":
        loop = _loop_of(src, back)
        if loop is None or not loop.body:
            return False
        first = loop.body[0]
        p.insert_before(first.lineno, f"{indent_of(src.line(first.lineno))}{model}.train()")
        return True
    training = _loop_of(src, back)
    blocks = [w for w in ast.walk(src.tree) if isinstance(w, ast.With) and any(
        dotted(getattr(i.context_expr, "func", i.context_expr)).split(".")[-1] in ("no_grad", "inference_mode")
        for i in w.items)]
    if len(blocks) != 1 or (training is not None and _loop_of(src, blocks[0]) is training):
        return False  # an evaluation inside the training loop: .train() must follow; shown, not patched
    p.insert_before(blocks[0].lineno, f"{indent_of(src.line(blocks[0].lineno))}{model}.eval()")
    return True


def _float32(f: Finding, src: Source, p: Patch) -> bool:
    done = False
    for call in src.calls("double"):
        if isinstance(call.func, ast.Attribute) and not call.args and not call.keywords:
            done = p.replace(call, src.segment(call.func.value) + ".float()") or done
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Attribute) and dotted(node) in ("torch.float64", "torch.double"):
            done = p.replace(node, "torch.float32") or done
    return done


def _reshape_target(f: Finding, src: Source, p: Patch) -> bool:
    at = src.site_line(_ev(f).get("site"))
    calls = [c for c in ast.walk(src.tree) if isinstance(c, ast.Call) and c.lineno == at and len(c.args) >= 2]
    call = _unique(calls)
    if call is None:
        return False
    target, pred = src.segment(call.args[1]), src.segment(call.args[0])
    wrapped = target if _IDENT.fullmatch(target) or isinstance(call.args[1], (ast.Subscript, ast.Call)) \
        else f"({target})"
    return p.replace(call.args[1], f"{wrapped}.view_as({pred})")


def _clip(f: Finding, src: Source, p: Patch) -> bool:
    back, call = _only_backward(src), _optimizer_call(f, src)
    if back is None or call is None or not call.args or "import torch" not in "\n".join(src.lines):
        return False
    params = src.segment(call.args[0])
    if not params.endswith(".parameters()"):
        return False
    p.insert_after(back.end_lineno or back.lineno,
                   f"{indent_of(src.line(back.lineno))}torch.nn.utils.clip_grad_norm_({params}, 1.0)")
    return True


def _class_weights(f: Finding, src: Source, p: Patch) -> bool:
    counts = {int(k): int(v) for k, v in (_ev(f).get("counts") or {}).items()}
    if len(counts) < 2 or min(counts.values()) <= 0 or "import torch" not in "\n".join(src.lines):
        return False
    total, k = sum(counts.values()), max(counts) + 1
    bce = _unique(src.calls("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"))
    if k == 2 and bce is not None and _kwarg(bce, "pos_weight") is None:
        return _add_kwarg(p, bce, f"pos_weight=torch.tensor({_round(counts[0] / counts[1])})")
    ce = _unique(src.calls("CrossEntropyLoss", "cross_entropy"))
    if ce is None or _kwarg(ce, "weight") is not None:
        return False
    weights = ", ".join(_round(total / (len(counts) * counts[c])) if counts.get(c) else "0.0" for c in range(k))
    return _add_kwarg(p, ce, f"weight=torch.tensor([{weights}])")


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


_SCHEDULERS = tuple(n for n in dir(torch.optim.lr_scheduler) if n.endswith(("LR", "Scheduler", "Plateau")))


def _schedule_per_epoch(f: Finding, src: Source, p: Patch) -> bool:
    """The scheduler's ``.step()`` inside the batch loop (the loop of ``loss.backward()``) moves
    after that loop: once per epoch."""
    back = _only_backward(src)
    loop = _loop_of(src, back) if back is not None else None
    names = {src.assigned_name(c) for c in src.calls(*_SCHEDULERS)} - {""}
    steps = [s for s in _statements(src, "step") if s.lineno == s.end_lineno and loop is not None
             and _loop_of(src, s) is loop and dotted(s.value.func).split(".")[-2:-1] in ([n] for n in names)]  # type: ignore[attr-defined]
    if loop is None or len(steps) != 1 or loop.end_lineno is None:
        return False
    p.delete(steps[0].lineno)
    p.insert_after(loop.end_lineno, indent_of(src.line(loop.lineno)) + src.line(steps[0].lineno).strip())
    return True


def _unregistered(f: Finding, src: Source, p: Patch) -> bool:
    """``self.layers = [nn.Linear(...), ...]`` -> ``nn.ModuleList([...])`` (the only such list)."""
    lists = [n for n in ast.walk(src.tree) if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Attribute)
             and isinstance(n.value, (ast.List, ast.ListComp))
             and any(isinstance(c, ast.Call) and dotted(c.func).startswith(("nn.", "torch.nn."))
                     for c in ast.walk(n.value))]
    node = lists[0].value if len(lists) == 1 else None
    return node is not None and p.replace(node, f"nn.ModuleList({src.segment(node)})")


def _batch_first(f: Finding, src: Source, p: Patch) -> bool:
    rnn = [c for c in src.calls("LSTM", "GRU", "RNN") if _kwarg(c, "batch_first") is None
           or getattr(_kwarg(c, "batch_first").value, "value", None) is False]  # type: ignore[union-attr]
    attr = str(f.get("location") or "").rsplit(".", 1)[-1]
    if len(rnn) > 1 and attr:
        rnn = [c for c in rnn if src.assigned_name(c) == attr]
    call = _unique(rnn)
    return call is not None and _set_kwarg(p, call, "batch_first", "True")


def _momentum(f: Finding, src: Source, p: Patch) -> bool:
    call = _optimizer_call(f, src)
    if call is None:
        return False
    kw = _kwarg(call, "momentum")
    if kw is not None and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, float) \
            and kw.value.value >= 0.99:
        return p.replace(kw.value, "0.9")
    kw = _kwarg(call, "betas")
    if kw is not None and isinstance(kw.value, ast.Tuple) and len(kw.value.elts) == 2:
        b1 = kw.value.elts[0]
        if isinstance(b1, ast.Constant) and isinstance(b1.value, float) and b1.value >= 0.99:
            return p.replace(b1, "0.9")
    return False


def _softmax_dim(f: Finding, src: Source, p: Patch) -> bool:
    """``softmax(x, 0)`` / ``dim=0`` -> 1 (the only softmax over dim 0)."""
    def dim_node(c: ast.Call) -> ast.expr | None:
        kw = _kwarg(c, "dim")
        method = not dotted(c.func).startswith(("F.", "torch.", "nn.")) and isinstance(c.func, ast.Attribute)
        return kw.value if kw is not None else (c.args[0] if method and c.args else c.args[1] if len(c.args) > 1
                                                else None)

    zero = [c for c in _activation_calls(f, src, "softmax") if isinstance(dim_node(c), ast.Constant)
            and getattr(dim_node(c), "value", None) == 0]
    call = _unique(zero)
    node = dim_node(call) if call is not None else None
    return node is not None and p.replace(node, "1")


def _sigmoid(f: Finding, src: Source, p: Patch) -> bool:
    """``F.softmax(z, dim=1)`` -> ``torch.sigmoid(z)``; ``nn.Softmax(dim=1)`` -> ``nn.Sigmoid()``."""
    call = _unique(_activation_calls(f, src, "softmax"))
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
    at = src.site_line(_ev(f).get("site"))
    if f.get("code") == "loss-input.log-probabilities-as-kl-div-target":
        call = _unique([c for c in src.calls("kl_div") if c.lineno == at]) or _unique(src.calls("KLDivLoss"))
        return call is not None and _kwarg(call, "log_target") is None and _add_kwarg(p, call, "log_target=True")
    call = _unique([c for c in src.calls("kl_div") if c.lineno == at]) or _unique(
        [c for c in ast.walk(src.tree) if isinstance(c, ast.Call) and c.lineno == at and len(c.args) >= 2])
    if call is None or not call.args:
        return False
    first = call.args[0]
    if isinstance(first, ast.Call) and dotted(first.func).endswith("softmax") \
            and not dotted(first.func).endswith("log_softmax"):
        return p.replace(first.func, src.segment(first.func)[:-len("softmax")] + "log_softmax")
    seg = src.segment(first)
    return p.replace(first, f"{seg}.log()" if _IDENT.fullmatch(seg) else f"({seg}).log()")


_TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    "drop-output-activation": _drop_activation, "log-before-nll": _log_for_nll, "learning-rate": _learning_rate,
    "less-weight-decay": _weight_decay, "optimizer-default-setting": _optimizer_default, "less-dropout": _dropout,
    "shuffle-training-batches": _shuffle, "zero-grad-each-step": _zero_grad, "train-mode-while-training": _train_mode,
    "float32": _float32, "reshape-target": _reshape_target, "clip-gradients": _clip,
    "class-weighted-loss": _class_weights, "batch-first-rnn": _batch_first, "moderate-momentum": _momentum,
    "softmax-over-classes": _softmax_dim, "sigmoid-instead-of-softmax": _sigmoid,
    "kl-div-log-inputs": _kl_div,
    "vanishing-gradients": lambda f, src, p: "relu" in str(_ev(f).get("activation", "")) and _leaky(f, src, p), "leaky-relu": _leaky, "schedule-per-epoch": _schedule_per_epoch,
    "unfreeze": lambda f, src, p: f.get("code") in _UNREGISTERED and _unregistered(f, src, p),
}



def _first_line(src: Source, pattern: str) -> int | None:
    rx = re.compile(pattern)
    return next((i for i, ln in enumerate(src.lines, start=1) if rx.search(ln) and not ln.lstrip().startswith("#")),
                None)


#: remedy -> the line to show when no diff applies (the custom init, the freezing, the scheduler)
_LOCATORS: dict[str, Callable[[Source], int | None]] = {
    "reinitialise": lambda src: _first_line(src, r"nn\.init\.(constant|zeros|ones|normal|uniform|trunc_normal)_"
                                                 r"|\.weight\.(data\.)?(fill_|zero_|normal_|uniform_)"),
    "unfreeze": lambda src: _first_line(src, r"requires_grad\s*=\s*False|requires_grad_\(False\)"),
    "schedule-per-epoch": lambda src: _first_line(src, r"\b\w*sched\w*\.step\("),
}
_UNREGISTERED = ("grad-flow.unregistered-layers", "grad-flow.params-not-in-optimizer", "grad-flow.params-not-updated")


def source_edit(items: list[tuple[str, Finding]], instruction: str, script: str | None) -> SourceEdit:
    """The edit for each ``(remedy, finding)`` in ``script``, as one diff where the locations
    are known and a safe transform applies, else the located line and the instruction, else
    the instruction alone. Never raises (a parse failure is 'location unknown')."""
    src = Source.load(script) if script else None
    if src is None or not items:
        return SourceEdit(instruction)
    patch = Patch(src)
    for remedy, finding in items:
        transform = _TRANSFORMS.get(remedy)
        try:
            if transform is not None:
                transform(finding, src, patch)
        except Exception:  # noqa: BLE001 - an edit that cannot be made is shown as the instruction
            continue
    try:
        diff = patch.diff()
    except Exception:  # noqa: BLE001
        diff = None
    if diff:
        return SourceEdit(instruction, src.path, patch.first_line, diff)
    at = src.site_line(_ev(items[0][1]).get("site"))
    locate = _LOCATORS.get(items[0][0])
    if at is None and locate is not None:
        at = locate(src)
    if at is not None:
        return SourceEdit(f"{instruction} (the line: `{src.line(at).strip()}`)", src.path, at)
    return SourceEdit(instruction)
