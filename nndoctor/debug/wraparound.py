"""dtype: uint8 arithmetic that wraps around before the conversion to float.

Images arrive as ``uint8`` (0-255). ``x - 128`` (centering), ``x + noise`` or ``x * 2`` computed
while the tensor is still ``uint8`` wraps modulo 256 without an error: 100 - 128 gives 228, so
dark pixels become bright ones and the inputs are scrambled before they ever reach the model.
The fix is to convert first (``x.float() - 128``).

Evidence: a ``sub`` / ``add`` / ``mul`` (operator or function, not in place) whose result is
``uint8`` and differs from the same arithmetic done in int32 on at least 0.1% of its elements.
Arithmetic that stays in range (``255 - x``, ``x // 2``, ``x + 1`` on values below 255) stays quiet.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import OpCall
from nndoctor.monitor.observer import user_site

__all__ = ["Uint8Wraparound"]

_OPS = {"sub": "-", "subtract": "-", "rsub": "-", "add": "+", "radd": "+", "mul": "*", "rmul": "*",
        "multiply": "*"}
MAX_ELEMENTS = 1_000_000
MIN_SHARE = 1e-3


def _int32(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(-1)[:MAX_ELEMENTS].to(torch.int32) if value.numel() > 1 \
            else value.detach().to(torch.int32)
    return value


@register
class Uint8Wraparound(Check):
    """uint8 ``-``/``+``/``*`` that overflows and wraps modulo 256 before the float conversion."""

    code = "dtype.uint8-wraparound"
    needs = ("op",)
    ops = frozenset(_OPS)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: OpCall) -> Iterable[Finding]:
        res = event.result
        if not isinstance(res, torch.Tensor) or res.dtype != torch.uint8 or res.numel() < 16:
            return ()
        args = list(event.args[:2])
        if len(args) < 2:
            other = event.kwargs.get("other")
            if other is None:
                return ()
            args.append(other)
        a, b = args[0], args[1]
        if not any(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in (a, b)):
            return ()
        if any(isinstance(t, torch.Tensor) and t.is_floating_point() for t in (a, b)):
            return ()
        name = event.name
        ia, ib = _int32(a), _int32(b)
        if isinstance(ia, torch.Tensor) and isinstance(ib, torch.Tensor) and ia.numel() != ib.numel() \
                and ia.numel() > 1 and ib.numel() > 1:
            return ()  # broadcast between two tensors: not worth the bookkeeping
        symbol = _OPS[name]
        if name == "rsub":
            exact = ib - ia
        elif symbol == "-":
            exact = ia - ib
        elif symbol == "+":
            exact = ia + ib
        else:
            exact = ia * ib
        got = res.detach().reshape(-1)[:MAX_ELEMENTS].to(torch.int32)
        if not isinstance(exact, torch.Tensor) or exact.numel() != got.numel():
            return ()
        share = float((exact != got).float().mean())
        if share < MIN_SHARE:
            return ()
        site = user_site()
        key = site or event.module or name
        if key in self._reported:
            return ()
        self._reported.add(key)
        lo, hi = int(exact.min()), int(exact.max())
        ev = {"op": name, "symbol": symbol, "site": site or "?", "wrapped_share": round(share, 4),
              "exact_range": (lo, hi), "shape": tuple(res.shape)}
        return [self.finding(
            f"uint8 `{symbol}` at {ev['site']} wraps around on {share:.0%} of {tuple(res.shape)}: the exact "
            f"results span [{lo}, {hi}] but uint8 keeps them modulo 256, so the inputs are scrambled "
            f"(convert to float first)", ev, location=ev["site"])]
