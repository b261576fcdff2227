"""loss-curve: the loss is a policy-gradient surrogate, whose value does not measure progress.

REINFORCE, actor-critic and PPO minimise ``-(log_prob(sampled action) * advantage)`` (PPO: the
probability ratio ``exp(log_prob - old_log_prob)`` times the advantage). Its gradient is the policy
gradient, but its value is not an objective: the advantages are normalised or re-estimated at every
batch, take both signs, and the surrogate hovers around zero, rises and oscillates while the returns
improve. Read as a training loss it looks like a too-high learning rate or a diverging run.

Evidence, on sampled ``backward()`` calls: a bounded breadth-first walk of the loss's autograd graph
finds products of a differentiable term and a tensor that carries no gradient (the advantage), whose
values change from call to call and take both signs (within a batch, or across the calls for a
one-sample batch; a constant coefficient has the same value at every call and does not count), where the differentiable term leads, within a few nodes, to a log-probability
(``log_softmax``, ``log``, ``log_sigmoid``, or a Gaussian log-density ``-(x - mu)**2 / ...``).
A weighted loss (per-sample weights >= 0, mixup's lambda, a positive constant) is not one; nor is a
hinge loss ``y * f(x)`` with labels of both signs (no log-probability under it).

Once seen at ``SURROGATE_SAMPLES`` (2) sampled backward calls, ``state.extra[SURROGATE_KEY]`` holds
the evidence and the curve analysis (:func:`nndoctor.monitor.curves.analyze_losses`) reads the training
loss as saying nothing about progress: the learning-rate, loss-curve and fit checks stay quiet on
it. Reported as ``info`` at the end of the run (what the user should track instead).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.grad_cut import walk_graph
from nndoctor.findings import Finding
from nndoctor.monitor.curves import SURROGATE_KEY, SURROGATE_SAMPLES, surrogate_loss
from nndoctor.monitor.events import BackwardCall, RunEnd

__all__ = ["SurrogateLoss", "score_function_terms"]

MAX_NODES = 200  # autograd nodes walked from the loss
LOGPROB_DEPTH = 8  # nodes below the product searched for a log-probability
MAX_LOOKS = 12  # sampled backward calls examined before giving up

MAX_VALUES = 64  # factor values kept from one loss
MAX_KEPT = 1024  # distinct factor values remembered over the calls
#: log-probabilities (logits - logsumexp is how torch.distributions normalises logits)
_LOG = ("LogSoftmaxBackward", "LogBackward", "LogSigmoidBackward", "Log1pBackward", "LogsumexpBackward")


def _log_density(node: Any, depth: int) -> str | None:
    """The name of the log-probability node reached from ``node`` within ``depth`` nodes, or None."""
    todo, seen = [(node, 0)], {node}
    while todo:
        cur, d = todo.pop(0)
        name = type(cur).__name__
        if name.startswith(_LOG):
            return name
        if name.startswith("NegBackward"):
            below = [fn for fn, _ in cur.next_functions if fn is not None]
            if below and type(below[0]).__name__.startswith("PowBackward"):
                return "gaussian_log_density"  # -(x - mu) ** 2 / (2 var): Normal.log_prob
        if d >= depth:
            continue
        for nxt, _ in cur.next_functions:
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                todo.append((nxt, d + 1))
    return None


def _weight(node: Any) -> tuple[torch.Tensor, Any] | None:
    """For a product node with one differentiable input: the saved factor that carries no
    gradient, and the differentiable input's node."""
    if not type(node).__name__.startswith("MulBackward0"):
        return None
    nexts = [fn for fn, _ in node.next_functions]
    if len(nexts) != 2 or (nexts[0] is None) == (nexts[1] is None):
        return None
    try:
        saved = node._saved_other if nexts[1] is None else node._saved_self
    except (AttributeError, RuntimeError):  # (freed after backward, or not saved)
        return None
    if not isinstance(saved, torch.Tensor) or not saved.numel() or not saved.is_floating_point():
        return None
    return saved, nexts[0] if nexts[1] is None else nexts[1]


def score_function_terms(loss: torch.Tensor) -> tuple[str, list[float]] | None:
    """The products of a log-probability and a gradient-free factor in ``loss``'s graph: the name
    of the first log-probability and the factors' values (a factor with several values gives its
    smallest and largest), or None when there is none."""
    root = loss.grad_fn
    if root is None:
        return None
    name, values = "", []
    for node in walk_graph(root, MAX_NODES):
        found = _weight(node)
        if found is None:
            continue
        weight, branch = found
        logp = _log_density(branch, LOGPROB_DEPTH)
        if logp is not None:
            w = weight.detach()
            name = name or logp.replace("Backward0", "").replace("Backward", "")
            values.extend({float(w.min()), float(w.max())})
            if len(values) >= MAX_VALUES:
                break
    return (name, values) if values else None


@register
class SurrogateLoss(Check):
    """Marks a policy-gradient surrogate loss, so that its curve is not read as an objective."""

    code = "loss-curve.policy-gradient-surrogate"
    needs = ("backward", "end")
    sampled_only = frozenset({"backward"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._looks = 0
        self._samples = 0
        self._calls: dict[float, int] = {}  # a factor's value -> the calls it was seen at
        self._first_step: int | None = None

    def check(self, event: BackwardCall | RunEnd) -> Iterable[Finding]:
        if event.kind == "end":
            return self._report()
        if self._looks >= MAX_LOOKS or not event.sampled:
            return ()
        t = event.tensor
        if not isinstance(t, torch.Tensor) or t.numel() != 1 or t.grad_fn is None:
            return ()
        self._looks += 1
        terms = score_function_terms(t)
        if terms is None:
            return ()
        self._looks -= 1  # (log-probabilities times a factor: keep looking at the factor's values)
        self._samples += 1
        name, values = terms
        for v in set(values):
            if v in self._calls or len(self._calls) < MAX_KEPT:
                self._calls[v] = self._calls.get(v, 0) + 1
        if self._first_step is None:
            self._first_step = event.step
        # a factor that changes from call to call (an advantage) and takes both signs; a constant
        # (an entropy bonus's coefficient, a fixed weight) has the same value at every call
        varying = [v for v, n in self._calls.items() if n == 1]
        if self._samples >= SURROGATE_SAMPLES and varying and min(varying) < 0.0 < max(varying):
            self.state.extra[SURROGATE_KEY] = {
                "samples": self._samples, "log_probability": name,
                "weight_min": round(min(varying), 4), "weight_max": round(max(varying), 4)}
            self._looks = MAX_LOOKS  # (confirmed: stop looking)
        elif self._samples >= 4 * MAX_LOOKS:
            self._looks = MAX_LOOKS  # (a factor of one sign all along: a weighted likelihood)
        return ()

    def _report(self) -> list[Finding]:
        if not surrogate_loss(self.state):
            return []
        ev = dict(self.state.extra[SURROGATE_KEY])
        msg = (f"the loss is a policy-gradient surrogate: {ev['log_probability']} of the actions times a "
               f"factor without gradient that takes both signs (an advantage or normalised return, "
               f"{ev['weight_min']:g} to {ev['weight_max']:g}); its value does not measure progress, so "
               f"the loss curve was not read for learning-rate or fit findings: judge the run by its "
               f"returns or rewards")
        return [self.finding(msg, ev, location="loss", step=self._first_step or 1)]
