"""loss-curve: part of the loss is maximised through a gradient reversal (adversarial features).

Domain-adversarial training (DANN), adversarial debiasing and fair-representation learning put a
*gradient reversal layer* between a feature extractor and a discriminator: an identity on the way
forward whose backward multiplies the gradient by ``-lambda``. The discriminator minimises its loss
while the features are trained to maximise it, so the total loss is meant to rise (the discriminator's
term climbs towards chance as lambda ramps up) or to hover. Read as a training loss it looks like a
flipped sign or a too-high learning rate.

Evidence, on sampled ``backward()`` calls: a bounded breadth-first walk of the loss's autograd graph
finds nodes of custom ``torch.autograd.Function`` s; a one-shot hook on each compares the gradient it
passes down with the one it receives. A node whose gradient out is ``-c`` times the gradient in
(``c > 0``, the same shape, a relative residual under 1e-3) is a gradient reversal, when parameters
sit between it and the loss (a discriminator; a reversal with nothing trained after it maximises the
whole loss: a flipped sign, still judged as one). Seen at
``REVERSAL_SAMPLES`` (2) sampled backward calls, ``state.extra[REVERSAL_KEY]`` holds the evidence and the
curve analysis (:func:`nndoctor.monitor.curves.analyze_losses`) keeps only an explosion or a non-finite
loss from the training curve; reported as ``info`` at the end. A straight-through estimator (gradient
passed unchanged) or any other custom function is not one.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.grad_cut import leaf_ids, walk_graph
from nndoctor.findings import Finding
from nndoctor.monitor.curves import REVERSAL_KEY, REVERSAL_SAMPLES, gradient_reversal
from nndoctor.monitor.events import BackwardCall, RunEnd

__all__ = ["GradientReversal", "reversal_factor"]

logger = logging.getLogger("nndoctor")

MAX_NODES = 200  # autograd nodes walked from the loss
MAX_HOOKED = 4  # custom-function nodes watched per backward
MAX_LOOKS = 12  # sampled backward calls examined without finding a custom function before giving up
RESIDUAL = 1e-3  # |g_out + c g_in| / |g_out| below this: an exact reversal


def reversal_factor(grad_in: Any, grad_out: Any) -> float | None:
    """``c`` when ``grad_out == -c * grad_in`` with ``c > 0`` (a reversed gradient), else None."""
    if not (isinstance(grad_in, torch.Tensor) and isinstance(grad_out, torch.Tensor)):
        return None
    if grad_in.shape != grad_out.shape or not grad_in.is_floating_point() or not grad_in.numel():
        return None
    g_in, g_out = grad_in.detach().double().flatten(), grad_out.detach().double().flatten()
    norm = float(g_in @ g_in)
    if not norm > 0 or not math.isfinite(norm):
        return None
    c = -float(g_out @ g_in) / norm
    if not c > 0:
        return None
    resid = float((g_out + c * g_in).norm()) / max(float(g_out.norm()), 1e-300)
    return c if resid < RESIDUAL else None


def _trained_after(root: Any, node: Any) -> bool:
    """Parameters sit between ``node`` and the loss (a discriminator after the reversal), besides the
    ones below it: a reversal straight before the loss, with nothing after it, maximises the whole
    loss (a flipped sign), which is a bug, not adversarial training."""
    below = set().union(*(leaf_ids(n, MAX_NODES) for n, _ in node.next_functions if n is not None))
    return bool(leaf_ids(root, MAX_NODES, skip=node) - below)


@register
class GradientReversal(Check):
    """Marks a loss with a reversed-gradient (adversarial) term, so its curve is not read as an objective."""

    code = "loss-curve.gradient-reversal"
    needs = ("backward", "end")
    sampled_only = frozenset({"backward"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._looks = 0
        self._seen: list[float] = []  # the reversal factors, one per sampled backward that showed one
        self._first_step: int | None = None
        self._name = ""

    def check(self, event: BackwardCall | RunEnd) -> Iterable[Finding]:
        if event.kind == "end":
            return self._report()
        if self._looks >= MAX_LOOKS or gradient_reversal(self.state) or not event.sampled:
            return ()
        t = event.tensor
        if not isinstance(t, torch.Tensor) or t.grad_fn is None:
            return ()
        custom = [n for n in walk_graph(t.grad_fn, MAX_NODES)
                  if isinstance(n, torch.autograd.function.BackwardCFunction)][:MAX_HOOKED]
        custom = [n for n in custom if _trained_after(t.grad_fn, n)]
        if not custom:
            self._looks += 1
            return ()
        step = event.step
        for node in custom:
            self._watch(node, step)
        return ()

    def _watch(self, node: Any, step: int) -> None:
        """A one-shot hook: does this custom function's backward reverse the gradient?"""
        fired: list[bool] = []

        def hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
            if fired:
                return  # (a graph kept with retain_graph=True runs it again)
            fired.append(True)
            try:
                c = reversal_factor(grad_outputs[0] if grad_outputs else None,
                                    grad_inputs[0] if grad_inputs else None)
                if c is not None:
                    self._found(c, step, type(node).__name__)
            except Exception:  # noqa: BLE001  (nndoctor must never break the user's backward)
                logger.debug("gradient-reversal hook failed", exc_info=True)

        try:
            node.register_hook(hook)  # (freed with the graph after its backward)
        except (RuntimeError, AttributeError):
            pass

    def _found(self, c: float, step: int, name: str) -> None:
        if self._first_step is None:
            self._first_step, self._name = step, name.replace("Backward", "")
        if len(self._seen) < 64:
            self._seen.append(c)
        steps = len(self._seen)
        if steps >= REVERSAL_SAMPLES and not gradient_reversal(self.state):
            self.state.extra[REVERSAL_KEY] = {
                "samples": steps, "function": self._name,
                "factor_min": float(f"{min(self._seen):.3g}"), "factor_max": float(f"{max(self._seen):.3g}")}

    def _report(self) -> list[Finding]:
        if not gradient_reversal(self.state):
            return []
        ev = dict(self.state.extra[REVERSAL_KEY])
        msg = (f"part of the loss is maximised through a gradient reversal ({ev['function']}: the gradient "
               f"passed down is -{ev['factor_min']:g} to -{ev['factor_max']:g} times the one received), as in "
               f"domain-adversarial training: the total loss is meant to rise or hover while the features "
               f"learn, so the loss curve was not read for learning-rate or fit findings: judge the run by "
               f"the task's own loss or metric")
        return [self.finding(msg, ev, location="loss", step=self._first_step or 1)]
