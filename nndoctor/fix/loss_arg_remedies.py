"""Runtime remedies for a loss or a layer given an argument it reads another way: {0, 1} labels to
a margin loss that reads -1 / +1, ``log_input`` of PoissonNLLLoss contradicting the model's output,
class weights computed from the frequency instead of its inverse, label smoothing that leaves no
class, and a batch norm whose running statistics never move (``momentum=0``). Same contract as
:mod:`nndoctor.fix.remedies`: ``install(finding, stack)`` changes the re-run through patched
``torch.nn.functional`` calls and module hooks, the stack undoes it.

Each acts only on the values the finding measured (its label values, its weights, its smoothing);
other calls of the same loss are untouched.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.fix.remedies import Remedy, _forward_pre, _patch

__all__ = ["LOSS_ARG_REMEDIES", "inverse_weights", "signed_labels"]

Finding = dict[str, Any]


def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


# -- {0, 1} labels to a margin loss -> -1 / +1 ---------------------------------------------------
_MARGIN_THIRD = ("margin_ranking_loss", "cosine_embedding_loss")
_MARGIN_SECOND = ("hinge_embedding_loss", "soft_margin_loss")


def _label_values(f: Finding) -> tuple[float, float]:
    try:
        values = sorted(float(v) for v in _ev(f)["label_values"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no label values") from None
    if len(values) != 2 or values == [-1.0, 1.0]:
        raise ValueError("the finding's labels are not two values other than -1 / +1")
    return values[0], values[1]


def signed_labels(y: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``y`` with ``low`` -> -1 and ``high`` -> +1 when all its values are one of the two (else ``y``)."""
    with torch.no_grad():
        both = bool(((y == low) | (y == high)).all())
        already = bool(((y == -1) | (y == 1)).all())
    if not both or already:
        return y
    return torch.where(y == high, torch.ones_like(y), -torch.ones_like(y))


def _install_signed_labels(f: Finding, stack: contextlib.ExitStack) -> None:
    """The finding's margin loss gets its two label values mapped onto -1 (the lower) / +1."""
    low, high = _label_values(f)
    name = str(_ev(f).get("loss", "")).removeprefix("F.")
    if name not in _MARGIN_THIRD + _MARGIN_SECOND:
        raise ValueError(f"no margin loss {name!r}")
    third = name in _MARGIN_THIRD

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(*args: Any, **kwargs: Any) -> Any:
            at = 2 if third else 1
            if len(args) > at and isinstance(args[at], torch.Tensor):
                args = (*args[:at], signed_labels(args[at], low, high), *args[at + 1:])
            elif isinstance(kwargs.get("target"), torch.Tensor):
                kwargs["target"] = signed_labels(kwargs["target"], low, high)
            return original(*args, **kwargs)

        return loss

    _patch(stack, F, name, wrap)


# -- PoissonNLLLoss's log_input the other way -------------------------------------------------
def _install_poisson_log_input(f: Finding, stack: contextlib.ExitStack) -> None:
    """``poisson_nll_loss`` called with the finding's ``log_input`` reads its input the other way:
    a rate (the output of softplus/exp/ReLU) with ``log_input=False``, an unbounded output with
    ``log_input=True``."""
    wrong = _ev(f).get("log_input")
    if not isinstance(wrong, bool):
        raise ValueError("the finding names no log_input")

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if args:  # log_input given positionally (third argument)
                if bool(args[0]) == wrong:
                    args = (not wrong, *args[1:])
            elif bool(kwargs.get("log_input", True)) == wrong:
                kwargs["log_input"] = not wrong
            return original(input, target, *args, **kwargs)

        return loss

    _patch(stack, F, "poisson_nll_loss", wrap)


# -- class weights from the frequency -> from its inverse -----------------------------------------
def inverse_weights(w: torch.Tensor) -> torch.Tensor:
    """``1 / w`` scaled to the same mean over the positive entries (zeros stay 0)."""
    with torch.no_grad():
        pos = w > 0
        inv = torch.where(pos, 1.0 / torch.where(pos, w, torch.ones_like(w)), torch.zeros_like(w))
        return inv * (w[pos].sum() / inv[pos].sum())


def _matches(t: Any, values: list[float]) -> bool:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or not values:
        return False
    flat = t.detach().flatten()[:len(values)].double().cpu()
    return flat.numel() == len(values) and bool(torch.allclose(flat, torch.tensor(values, dtype=torch.float64),
                                                               rtol=1e-3, atol=1e-4))


def _install_inverse_weights(f: Finding, stack: contextlib.ExitStack) -> None:
    """The finding's class weights (``weight=`` of cross_entropy / nll_loss, ``pos_weight=`` of
    BCE with logits), recognised by their values, are replaced by their inverse (same mean); other
    weights are untouched."""
    ev = _ev(f)
    values = [float(v) for v in ev.get("weights") or []]
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError("the finding names no class weights")
    key = "pos_weight" if ev.get("kind") == "pos_weight" else "weight"
    names = ("binary_cross_entropy_with_logits",) if key == "pos_weight" else ("cross_entropy", "nll_loss")

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(*args: Any, **kwargs: Any) -> Any:
            if _matches(kwargs.get(key), values):
                kwargs[key] = (1.0 / kwargs[key].clamp_min(1e-12)) if key == "pos_weight" \
                    else inverse_weights(kwargs[key])
            return original(*args, **kwargs)

        return loss

    for name in names:
        _patch(stack, F, name, wrap)


# -- label smoothing that leaves no class -> 0.1 ---------------------------------------------------
USUAL_SMOOTHING = 0.1


def _install_usual_smoothing(f: Finding, stack: contextlib.ExitStack) -> None:
    """cross_entropy called with the finding's ``label_smoothing`` uses 0.1 instead."""
    try:
        eps = float(_ev(f)["label_smoothing"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no label_smoothing argument") from None

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("label_smoothing", args[7] if len(args) > 7 else 0.0)
            if isinstance(given, (int, float)) and math.isclose(float(given), eps, rel_tol=1e-6):
                if len(args) > 7:
                    args = (*args[:7], USUAL_SMOOTHING, *args[8:])
                else:
                    kwargs["label_smoothing"] = USUAL_SMOOTHING
            return original(*args, **kwargs)

        return loss

    _patch(stack, F, "cross_entropy", wrap)


# -- batch-norm statistics that never move -> torch's default momentum ---------------------------------
_BN_MOMENTUM = 0.1  # torch's default


def _install_bn_momentum(f: Finding, stack: contextlib.ExitStack) -> None:
    """A batch norm that tracks running statistics with ``momentum=0`` gets torch's default 0.1 at
    its first training forward (put back when the stack closes); others are untouched."""
    changed: list[nn.Module] = []

    def pre(module: nn.Module, args: Any) -> None:
        if isinstance(module, nn.modules.batchnorm._NormBase) and module.training and module.track_running_stats \
                and module.momentum == 0:
            module.momentum = _BN_MOMENTUM
            changed.append(module)

    def restore() -> None:
        for m in changed:
            m.momentum = 0.0

    _forward_pre(stack, pre)
    stack.callback(restore)


def _mapping(f: Finding) -> str:
    try:
        return "{:g} -> -1, {:g} -> +1".format(*_label_values(f))
    except ValueError:
        return "onto -1 / +1"


def _loss_name(f: Finding) -> str:
    return str(_ev(f).get("loss", "the margin loss"))


LOSS_ARG_REMEDIES: tuple[Remedy, ...] = (
    Remedy("signed-margin-labels", ("preprocessing.margin-loss-targets-not-signed",),
           lambda f: f"labels of {_loss_name(f)} mapped {_mapping(f)}",
           lambda f: f"Give {_loss_name(f)} labels in {{-1, +1}}: {_ev(f).get('suggestion', 'y = 2 * y - 1')}.",
           _install_signed_labels, applies=lambda f: bool(_label_values(f))),
    Remedy("poisson-log-input", ("loss-input.rate-into-poisson-log-input",),
           lambda f: f"PoissonNLLLoss with log_input={not _ev(f).get('log_input')}",
           lambda f: (f"Pass log_input=False to PoissonNLLLoss: the model outputs a rate ({_ev(f).get('activation')})."
                      if _ev(f).get("log_input") else
                      "Pass log_input=True (the model outputs a log-rate), or end the model with softplus."),
           _install_poisson_log_input, applies=lambda f: isinstance(_ev(f).get("log_input"), bool)),
    Remedy("inverse-class-weights", ("data.class-weights-inverted",),
           lambda f: f"the loss's {'pos_weight' if _ev(f).get('kind') == 'pos_weight' else 'class weights'} "
                     "inverted (rare classes weigh more)",
           lambda f: "Compute the weights from the inverse frequency: weight = counts.sum() / counts "
                     "(pos_weight = n_neg / n_pos).",
           _install_inverse_weights, applies=lambda f: bool(_ev(f).get("weights")), changes_loss=True),
    Remedy("usual-label-smoothing", ("regularization.label-smoothing-too-strong",),
           lambda f: f"label_smoothing {_ev(f).get('label_smoothing')} -> {USUAL_SMOOTHING}",
           lambda f: f"Use label_smoothing={USUAL_SMOOTHING} (the share of target mass spread over the classes).",
           _install_usual_smoothing,
           applies=lambda f: _ev(f).get("kind") == "argument" and _ev(f).get("label_smoothing") is not None,
           changes_loss=True),
    Remedy("batchnorm-momentum", ("train-mode.batchnorm-stats-frozen",),
           lambda f: f"batch norms with momentum 0 in {_ev(f).get('model', 'the model')} track their statistics "
                     "with torch's default momentum 0.1",
           lambda f: "Drop momentum=0 from the BatchNorm layers (PyTorch's momentum is the weight of the NEW "
                     "batch: Keras' 0.99 is PyTorch's 0.01).",
           _install_bn_momentum, applies=lambda f: _ev(f).get("momentum") in (0, 0.0)),
)
