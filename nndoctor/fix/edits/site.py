"""Edits at the finding's own line: ``view`` -> ``permute``, uint8 converted before the
arithmetic, ``.detach()`` removed at a measured graph cut, a truncating integer conversion made a
float one; half precision back to float32."""

from __future__ import annotations

import ast
from typing import Callable

from nndoctor.fix.edits.common import Finding, ev, unique
from nndoctor.fix.source import Patch, Source, dotted

__all__ = ["TRANSFORMS"]


def _permute(f: Finding, src: Source, p: Patch) -> bool:
    """``x.view(b, k, t)`` at the site -> ``x.permute(0, 2, 1)`` (the permutation of the measured sizes)."""
    from nndoctor.fix.site_remedies import axes_permutation

    at = src.site_line(ev(f).get("site"))
    op = str(ev(f).get("op") or "view")
    try:
        perm = axes_permutation(tuple(ev(f)["before"]), tuple(ev(f)["after"]))
    except (KeyError, TypeError):
        return False
    call = unique([c for c in src.calls(op) if c.lineno == at and isinstance(c.func, ast.Attribute)])
    if call is None or perm is None or not isinstance(call.func, ast.Attribute):
        return False
    owner = src.segment(call.func.value)
    if dotted(call.func) in ("torch.reshape",):
        return bool(call.args) and p.replace(call, f"{src.segment(call.args[0])}.permute{perm}")
    return bool(owner) and p.replace(call, f"{owner}.permute{perm}")


def _float_first(f: Finding, src: Source, p: Patch) -> bool:
    """``img - 128`` at the site -> ``img.float() - 128`` (the only such operation on that line)."""
    at = src.site_line(ev(f).get("site"))
    symbol = str(ev(f).get("symbol") or "-")
    op = {"-": ast.Sub, "+": ast.Add, "*": ast.Mult}.get(symbol)
    nodes = [n for n in ast.walk(src.tree) if isinstance(n, ast.BinOp) and op is not None and isinstance(n.op, op)
             and n.lineno == at]
    node = nodes[0] if len(nodes) == 1 else None
    if node is None:
        return False
    # the tensor operand: the side that is not a number literal
    side = node.right if isinstance(node.left, ast.Constant) else node.left
    if isinstance(side, ast.Constant):
        return False
    seg = src.segment(side)
    wrapped = seg if isinstance(side, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)) else f"({seg})"
    return p.replace(side, f"{wrapped}.float()")


def _keep_graph(f: Finding, src: Source, p: Patch) -> bool:
    """``out.detach()`` at a measured cut's line -> ``out``."""
    done = False
    for cut in ev(f).get("cuts") or []:
        at = src.site_line(cut.get("site")) if isinstance(cut, dict) and cut.get("op") == ".detach()" else None
        call = unique([c for c in src.calls("detach") if c.lineno == at and isinstance(c.func, ast.Attribute)
                       and not c.args])
        if call is not None and isinstance(call.func, ast.Attribute):
            done = p.replace(call, src.segment(call.func.value)) or done
    return done


def _no_half(f: Finding, src: Source, p: Patch) -> bool:
    """``model.half()`` / ``.bfloat16()`` -> ``.float()``; ``torch.float16`` -> ``torch.float32``."""
    done = False
    for call in src.calls("half", "bfloat16"):
        if isinstance(call.func, ast.Attribute) and not call.args and not call.keywords:
            done = p.replace(call, src.segment(call.func.value) + ".float()") or done
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Attribute) and dotted(node) in ("torch.float16", "torch.half", "torch.bfloat16"):
            done = p.replace(node, "torch.float32") or done
    return done


_INT_NAMES = ("torch.long", "torch.int64", "torch.int", "torch.int32", "torch.int16", "torch.short")


def _keep_float(f: Finding, src: Source, p: Patch) -> bool:
    """At the site: ``dtype=torch.long`` / ``.to(torch.int64)`` -> ``torch.float32``; ``.long()`` /
    ``.int()`` / ``.short()`` -> ``.float()`` (the only such conversion on that line)."""
    at = src.site_line(ev(f).get("site"))
    dtypes = [n for n in ast.walk(src.tree) if isinstance(n, ast.Attribute) and getattr(n, "lineno", None) == at
              and dotted(n) in _INT_NAMES]
    casts = [c for c in src.calls("long", "int", "short") if c.lineno == at and isinstance(c.func, ast.Attribute)
             and not c.args and not c.keywords]
    if at is None or len(dtypes) + len(casts) != 1:
        return False
    if dtypes:
        return p.replace(dtypes[0], "torch.float32")
    func = casts[0].func
    return isinstance(func, ast.Attribute) and p.replace(casts[0], src.segment(func.value) + ".float()")


TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    "permute-not-view": _permute, "float-before-arithmetic": _float_first, "keep-gradient-path": _keep_graph,
    "float32-weights": _no_half, "keep-float-values": _keep_float}
