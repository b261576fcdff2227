"""lr: one optimizer among several whose rate is far too high (a GAN's discriminator, a critic, a head).

With several optimizers (a GAN's G and D, an actor and a critic, an encoder and a head each with
their own), ``lr.too-high`` (:mod:`nndoctor.monitor.checks.lr`) says nothing: their losses take
turns in one curve, and a GAN's losses oscillate by design, so the curve cannot tell a rate from the
game. What can: the update-to-weight ratio of each optimizer's own weights (the lr check's probe
tags every measured step with its optimizer). Read over each optimizer's first ``EARLY`` sampled
steps (before a too-large rate has blown its weights up, which shrinks the ratio again), a healthy
rate changes the weights by ~1e-3 (Adam on small layers ~1e-2) of their size per step. Reported
when one optimizer's median is >= ``TOO_FAST`` (0.1: a tenth of every weight rewritten each step)
AND >= ``APART`` (30x) the median of every other optimizer measured as long. Two optimizers at
rates 10x apart on purpose (a critic at 1e-3, an actor at 1e-4; a fresh head at 1e-3 over a
backbone at 1e-5) stay quiet below the 0.1 floor, and a GAN at its usual 2e-4 for both sits
together.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.lr import _fmt_lr, _tidy, current_lr

__all__ = ["APART", "EARLY", "OneOptimizerTooFast", "TOO_FAST"]

EARLY = 4  # sampled steps of each optimizer read
TOO_FAST = 0.1
APART = 30.0
_SYMPTOMS = ("explodes", "oscillates", "goes-up")


@register
class OneOptimizerTooFast(Check):
    """One of several optimizers changes its weights by a tenth of their size per step, 30x the others."""

    code = "lr.too-high"
    needs = ("curve", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._early: dict[str, list[dict[str, Any]]] = {}
        self._seen_steps: set[tuple[str, int]] = set()
        self._done = False

    def check(self, event: Any) -> Iterable[Finding]:
        if self._done:
            return ()
        for row in self.state.extra.get("nndoctor.update_ratios", ()):
            name = row.get("optimizer")
            if not name or (name, row["step"]) in self._seen_steps:
                continue
            self._seen_steps.add((name, row["step"]))
            kept = self._early.setdefault(name, [])
            if len(kept) < EARLY:
                kept.append(row)
        return self._judge()

    def _judge(self) -> list[Finding]:
        full = {n: rows for n, rows in self._early.items() if len(rows) >= EARLY - 1}
        if len(full) < 2:
            return []
        meds = {n: statistics.median(r["median"] for r in rows) for n, rows in full.items()}
        fast = max(meds, key=lambda n: meds[n])
        others = {n: m for n, m in meds.items() if n != fast}
        top_other = max(others.values())
        if not (meds[fast] >= TOO_FAST and meds[fast] >= APART * max(top_other, 1e-12)):
            return []
        self._done = True
        self.retire()
        opt = next((o for info, o in self.state.live_optimizers() if info.name == fast), None)
        info = next((i for i in self.state.optimizers.values() if i.name == fast), None)
        lr = (current_lr(opt) if opt is not None else None) or (info.lr if info is not None else None)
        cls = info.cls if info is not None and info.cls else (type(opt).__name__ if opt is not None else "")
        rows = full[fast]
        top = max(rows, key=lambda r: r["median"])
        rate = f"learning rate {_fmt_lr(lr)} of {fast}" if lr else f"the learning rate of {fast}"
        other_txt = ", ".join(f"{n} {m:.2g}" for n, m in sorted(others.items()))
        msg = (f"{rate} ({cls or 'optimizer'}) is too high: over its first {len(rows)} sampled steps each update "
               f"changed its weights by {meds[fast]:.2g} of their size (median; up to {top['max']:.2g} of "
               f"{top['param']}), {meds[fast] / max(top_other, 1e-12):.0f}x the other optimizers' ({other_txt}; "
               f"healthy ~1e-3): its model is rewritten every few steps while the others learn"
               + (f"; try {_fmt_lr(lr / 100)}-{_fmt_lr(lr / 10)}, near the others' rates" if lr else ""))
        ev: dict[str, Any] = {
            "optimizer": fast, "optimizer_class": cls or "the optimizer", "lr": _fmt_lr(lr) if lr else "?",
            "update_ratio_median": float(f"{meds[fast]:.3g}"), "update_ratio_peak": float(f"{top['max']:.3g}"),
            "sampled_steps": len(rows), "other_optimizers": {n: float(f"{m:.3g}") for n, m in others.items()},
            "healthy_update_ratio": "1e-4 to 1e-2 (about 1e-3)",
            "suggest_low": _fmt_lr(lr / 100) if lr else "?", "suggest_high": _fmt_lr(lr / 10) if lr else "?",
            "default_hint": "keep it near the other optimizers' rates (a GAN: 2e-4 for both, betas (0.5, 0.999))",
            "step_call": f"{fast}.step()",
        }
        return [_tidy(self.finding(msg, ev, location=fast, step=rows[-1]["step"]))]  # (hints only fill the fixes)
