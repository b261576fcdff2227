"""regularization: label smoothing so strong that the targets carry no class.

Label smoothing mixes the one-hot target with the uniform distribution: with ``eps`` the true
class gets ``1 - eps + eps / K`` and every other ``eps / K``. ``label_smoothing=1.0`` (a typo for
0.1, or a keep share passed as the smoothing) makes every target uniform: the loss no longer depends
on the label, the model learns nothing and sits at log(K). The same happens when the smoothing is
written by hand (``y_onehot * (1 - eps) + eps / K`` with eps = 1) or binary targets are smoothed to
``0.5``.

``regularization.label-smoothing-too-strong`` looks at training loss calls on sampled steps:

* ``cross_entropy`` with ``label_smoothing >= 1``: reported at once (severity error: every target
  is uniform, or favours the wrong classes above 1); ``0.5 <= label_smoothing < 1`` is said as info
  at the end of the run;
* probability targets of ``cross_entropy`` whose every row is uniform over the K >= 2 classes, or
  targets of the binary losses that are all 0.5: a warning at the end of the run when no training
  classification loss seen had informative targets (so an auxiliary uniform-target term, e.g. a
  confidence penalty on outliers beside a real classification loss, stays quiet).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, RunEnd
from nndoctor.monitor.tensors import local

__all__ = ["LabelSmoothingTooStrong"]

SMOOTHING_BROKEN = 1.0
SMOOTHING_STRONG = 0.5
MIN_BATCHES = 3
BINARY = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})
CLASS = frozenset({"cross_entropy", "nll_loss"})


@register
class LabelSmoothingTooStrong(Check):
    """Label smoothing (argument or hand-made) that leaves no class information in the targets."""

    code = "regularization.label-smoothing-too-strong"
    needs = ("loss", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported = False
        self._strong: tuple[float, str] | None = None
        self._uniform = 0  # sampled training batches whose targets are uniform
        self._uniform_site = ""
        self._uniform_kind = ""
        self._k = 0
        self._informative = 0  # sampled training batches with targets that name classes

    def check(self, event: LossCall | RunEnd) -> Iterable[Finding]:
        if self._reported:
            self.retire()  # (the finding is made: nothing more to hear)
            return ()
        if isinstance(event, RunEnd):
            return self._judge()
        if not event.grad_enabled or event.target is None:
            return ()
        if event.name == "cross_entropy":
            eps = event.kwargs.get("label_smoothing", 0.0)
            if isinstance(eps, (int, float)) and eps >= SMOOTHING_BROKEN:
                return self._broken(float(eps), event)
            if isinstance(eps, (int, float)) and eps >= SMOOTHING_STRONG and self._strong is None:
                self._strong = (float(eps), event.site)
        if event.name in CLASS or event.name in BINARY:
            self._classify(event)
        return ()

    def _classify(self, event: LossCall) -> None:
        inp, target = event.input, event.target
        assert target is not None
        if target.numel() == 0:
            return
        if event.name in CLASS:
            if not target.is_floating_point():
                self._informative += 1
                return
            if target.shape != inp.shape or inp.dim() < 2 or inp.shape[1] < 2:
                return
            t = local(target).detach()
            spread = (t.amax(1) - t.amin(1)).abs().max()
            if float(spread) <= 1e-6 * max(1.0, float(t.abs().max())):
                self._note_uniform(event, "probability targets uniform over the classes", int(inp.shape[1]))
            else:
                self._informative += 1
            return
        if not target.is_floating_point() or target.shape != inp.shape:
            return
        t = local(target).detach()
        if bool(torch.all(t == 0.5)):
            self._note_uniform(event, "binary targets all 0.5", 2)
        else:
            self._informative += 1

    def _note_uniform(self, event: LossCall, kind: str, k: int) -> None:
        self._uniform += 1
        if not self._uniform_site:
            self._uniform_site, self._uniform_kind, self._k = event.site, kind, k

    def _broken(self, eps: float, event: LossCall) -> list[Finding]:
        self._reported = True
        k = int(event.input.shape[1]) if event.input.dim() >= 2 else 0
        site = event.site or "cross_entropy"
        what = "every target is the uniform distribution" if eps == 1.0 else \
            "the targets put more weight on the wrong classes than on the right one"
        ev = {"site": site, "label_smoothing": eps, "classes": k, "kind": "argument",
              "true_class_target": round(1 - eps + eps / k, 4) if k else None}
        return [self.finding(
            f"cross_entropy at {site} has label_smoothing={eps:g}: {what}, so the loss does not depend on the "
            f"labels and the model cannot learn the classes (0.05-0.2 is the usual range)",
            ev, location=site, severity=Severity.ERROR)]

    def _judge(self) -> list[Finding]:
        if self._uniform >= MIN_BATCHES and self._informative == 0:
            self._reported = True
            site = self._uniform_site or "the loss"
            ev = {"site": site, "kind": self._uniform_kind, "classes": self._k, "uniform_batches": self._uniform,
                  "label_smoothing": None}
            return [self.finding(
                f"the training targets at {site} carry no class: {self._uniform_kind} in all {self._uniform} "
                f"sampled batches (label smoothing with eps = 1, or the labels mixed away), so the model has "
                f"nothing to learn and the loss stays at its uniform-guess level",
                ev, location=site)]
        if self._strong is not None:
            self._reported = True
            eps, site = self._strong
            return [self.finding(
                f"cross_entropy at {site} has label_smoothing={eps:g}: the true class gets only {1 - eps:.0%} more "
                f"target mass than the rest; values of 0.05-0.2 are usual, check it is not a keep share",
                {"site": site or "cross_entropy", "label_smoothing": eps, "kind": "argument", "classes": None},
                location=site or "cross_entropy", severity=Severity.INFO)]
        return []
