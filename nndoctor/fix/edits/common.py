"""Helpers the edit families share: the finding's evidence, a unique call, a keyword set or
added, the optimizer's construction, ``loss.backward()`` and its loop."""

from __future__ import annotations

import ast
import re
from typing import Any

import torch

from nndoctor.fix.source import Patch, Source, dotted

__all__ = ["ACTIVATIONS", "IDENT", "OPTIMIZERS", "Finding", "activation_calls", "add_kwarg", "ev", "kwarg",
           "loop_of", "name_of", "only_backward", "optimizer_call", "round3", "set_kwarg", "statements", "unique"]

Finding = dict[str, Any]

OPTIMIZERS = tuple(n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)
                    and issubclass(getattr(torch.optim, n), torch.optim.Optimizer) and n != "Optimizer")
IDENT = re.compile(r"[A-Za-z_][\w.]*")


def ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


def name_of(value: Any) -> str:
    """``opt`` from ``"opt (SGD)"``; "" when it is no identifier."""
    m = IDENT.match(str(value or "").strip())
    return m.group(0) if m else ""


def unique(calls: list[ast.Call]) -> ast.Call | None:
    return calls[0] if len(calls) == 1 else None


def kwarg(call: ast.Call, key: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == key), None)


def add_kwarg(p: Patch, call: ast.Call, text: str) -> bool:
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


def set_kwarg(p: Patch, call: ast.Call, key: str, value: str, position: int | None = None) -> bool:
    kw = kwarg(call, key)
    if kw is not None:
        return p.replace(kw.value, value)
    if position is not None and len(call.args) > position:
        return p.replace(call.args[position], value)
    return add_kwarg(p, call, f"{key}={value}")


def optimizer_call(f: Finding, src: Source) -> ast.Call | None:
    calls = src.calls(*OPTIMIZERS)
    name = name_of(ev(f).get("optimizer") or f.get("location")).split(".")[-1]
    if len(calls) > 1 and name:
        calls = [c for c in calls if src.assigned_name(c) == name]
    return unique(calls)


def statements(src: Source, method: str) -> list[ast.Expr]:
    """Expression statements calling ``.method(...)`` (``loss.backward()``, ``opt.step()``)."""
    return [n for n in ast.walk(src.tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
            and dotted(n.value.func).split(".")[-1] == method]


def only_backward(src: Source) -> ast.Expr | None:
    found = statements(src, "backward")
    return found[0] if len(found) == 1 else None


def loop_of(src: Source, node: ast.AST) -> ast.For | ast.While | None:
    parents = src.parents()
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.For, ast.While)):
            return node
    return None


def round3(v: float) -> str:
    return f"{v:.3g}"


ACTIVATIONS = {"softmax": ("Softmax", "softmax"), "sigmoid": ("Sigmoid", "sigmoid"),
        "log_softmax": ("LogSoftmax", "log_softmax"), "relu": ("ReLU", "relu")}


def activation_calls(f: Finding, src: Source, default: str) -> list[ast.Call]:
    act = str(ev(f).get("activation", default)).split()[0].lower().replace("nn.", "")
    act = {"logsoftmax": "log_softmax"}.get(act, act)
    module, functional = ACTIVATIONS.get(act, ACTIVATIONS["softmax"])
    calls = src.calls(module, functional)
    at = src.site_line(ev(f).get("site"))
    on_site = [c for c in calls if c.lineno == at]
    return on_site or calls
