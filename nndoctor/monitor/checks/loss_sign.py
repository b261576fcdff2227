"""loss-curve: a log-likelihood minimised instead of its negative (the sign of the loss lost).

``loss = log_softmax(z).gather(1, y).mean()`` (the minus of the NLL dropped), ``-F.cross_entropy(z, y)``,
``(-torch.log(p)).neg()`` or ``F.nll_loss(-log_probs, y)`` make the optimizer drive the probability of
the true class to 0: the loss falls below zero and keeps falling without bound, which the curve
checks read as an exploding loss or a too-high learning rate.

The check reads the autograd graph of the tensor given to ``backward()`` on sampled steps. It
follows a single chain of nodes that keep or flip the sign (mean/sum, selection and view nodes,
scaling by a positive constant keep it; ``neg``, ``nll_loss`` and scaling by a negative constant flip
it) down to a log-probability (``log_softmax``, ``log_sigmoid``, ``log`` of a ``softmax`` or
``sigmoid``), which is <= 0. An even number of flips makes the loss itself a log-likelihood (<= 0):
minimising it is maximising the opposite of the likelihood. Reported (error) when this holds at
>= 2 sampled steps, the loss is negative at each of them and lower at the last, and no optimizer
of the run has ``maximize=True`` (which makes minimising the log-likelihood's negative by
ascending it correct). A sum with other terms (an added penalty, an entropy bonus) or log-probs
multiplied by another tensor (a policy gradient's advantage) is not followed: its sign is not known.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt, host_floats
from nndoctor.monitor.events import BackwardCall

__all__ = ["LogLikelihoodMinimised"]

logger = logging.getLogger("nndoctor")

MAX_CHAIN = 32
MIN_SAMPLES = 2
#: nodes whose output has the sign of their one differentiable input (log-probs <= 0 stay <= 0)
_KEEP = ("MeanBackward", "SumBackward", "GatherBackward", "IndexBackward", "SelectBackward", "SliceBackward",
         "ViewBackward", "ReshapeAliasBackward", "UnsafeViewBackward", "SqueezeBackward", "UnsqueezeBackward",
         "ExpandBackward", "PermuteBackward", "TransposeBackward", "TBackward", "CloneBackward",
         "ToCopyBackward", "MaskedSelectBackward", "AliasBackward", "AsStridedBackward")
#: nodes that negate their input
_FLIP = ("NegBackward", "NllLossBackward", "NllLoss2DBackward", "NllLossNdBackward")
_SCALE = ("MulBackward0", "DivBackward0")
_PROBS = ("SoftmaxBackward", "SigmoidBackward")


def _short(name: str) -> str:
    """``LogSoftmaxBackward0`` -> ``log_softmax``."""
    base = re.sub(r"Backward\d*$", "", name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def _one_input(node: Any) -> Any:
    nexts = [fn for fn, _ in node.next_functions if fn is not None]
    return nexts[0] if len(nexts) == 1 else None


def _scale_sign(node: Any) -> int:
    """+1/-1 for a scaling by a positive/negative constant, 0 when it is not one."""
    nexts = [fn for fn, _ in node.next_functions]
    other = getattr(node, "_saved_other", None)
    if len(nexts) != 2 or nexts[0] is None or nexts[1] is not None:
        return 0
    if not isinstance(other, torch.Tensor) or other.numel() != 1 or other.is_complex():
        return 0
    value = float(other)
    return 1 if value > 0 else -1 if value < 0 else 0


def log_likelihood_chain(root: Any) -> tuple[list[str], bool] | None:
    """The chain of node names from ``root`` to a log-probability, and whether the loss is the
    log-likelihood itself (an even number of sign flips); None when the graph is not such a chain."""
    names: list[str] = []
    flips = 0
    node = root
    for _ in range(MAX_CHAIN):
        if node is None:
            return None
        name = type(node).__name__
        names.append(_short(name))
        if name.startswith(("LogSoftmaxBackward", "LogSigmoidBackward")):
            return names, flips % 2 == 0
        if name.startswith("LogBackward"):
            below = _one_input(node)
            if below is not None and type(below).__name__.startswith(_PROBS):
                names.append(_short(type(below).__name__))
                return names, flips % 2 == 0
            return None
        if name.startswith(_FLIP):
            flips += 1
            node = _one_input(node) if not name.startswith("Nll") else node.next_functions[0][0]
        elif name.startswith(_KEEP):
            node = _one_input(node)
        elif name in _SCALE:
            sign = _scale_sign(node)
            if sign == 0:
                return None
            flips += sign < 0
            node = node.next_functions[0][0]
        else:
            return None
    return None


@register
class LogLikelihoodMinimised(Check):
    """The loss is a log-likelihood (<= 0), not its negative: the optimizer drives it to -infinity."""

    code = "loss-curve.log-likelihood-minimised"
    needs = ("backward",)
    sampled_only = frozenset({"backward"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._samples: list[tuple[int, torch.Tensor]] = []
        self._chain: list[str] = []
        self._done = False
        self._misses = 0

    def check(self, event: BackwardCall) -> Iterable[Finding]:
        if self._done or not event.sampled or self._misses >= 8:
            return ()
        t = event.tensor
        if not isinstance(t, torch.Tensor) or t.numel() != 1 or not t.is_floating_point() or t.grad_fn is None:
            return ()
        found = log_likelihood_chain(t.grad_fn)
        if found is None or not found[1]:
            self._misses += 1                     # another kind of loss: stop looking after a few
            if self._misses >= 8:
                self.retire()  # (it looks no more: nothing more to hear)
            return ()
        self._chain = found[0]
        self._samples.append((event.step, t.detach().reshape(())))
        if len(self._samples) < MIN_SAMPLES:
            return ()
        return self._judge()

    def _maximised(self) -> bool:
        return any(g.get("maximize") is True for _, opt in self.state.live_optimizers() for g in opt.param_groups)

    def _judge(self) -> list[Finding]:
        values = host_floats([v for _, v in self._samples])
        steps = [s for s, _ in self._samples]
        self._samples = [(s, v) for s, v in self._samples[-4:]]
        if not all(v < 0 for v in values) or not values[-1] < values[0] or self._maximised():
            return []
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        graph = " <- ".join(self._chain)
        evidence = {"first_loss": values[0], "first_step": steps[0], "last_loss": values[-1],
                    "last_step": steps[-1], "graph": graph, "objective_sign_flipped": True}
        msg = (f"the loss is a log-likelihood, not its negative: it is built as {graph} (log-probabilities "
               f"<= 0, with no net minus sign) and is {fmt(values[0])} at step {steps[0]} -> {fmt(values[-1])} "
               f"at step {steps[-1]}; a negative log-likelihood / cross-entropy is >= 0, so minimising this "
               f"drives the probability of the true class to 0 and the loss falls without bound")
        return [self.finding(msg, evidence, location="loss", step=steps[0])]
