"""``nndoctor diagnose EXP --fix``: try each root cause's remedy on an experiment file.

An experiment file exposes its hyperparameters, so a remedy is first tried the way the user
would make it: a ``--set name=value`` override of the experiment's own hyperparameter (the
learning rate, the weight decay, the dropout). Otherwise the model the file builds is
rewritten (an activation before a logit loss becomes ``nn.Identity``, dropout probabilities
come down, layers are re-initialised, frozen parameters learn) or, last, the runtime hook of
``nndoctor fix`` is installed around the run. Every trial loads the experiment afresh under
the same seed, trains it for the same epochs and measures the same yardstick: accuracy on
``train_val`` for a classifier, else the loss on ``train_val``, else the last epoch's
training loss. The baseline is measured twice (the noise a remedy must beat).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn

from nndoctor.fix.metrics import Figures, Verdict, judge
from nndoctor.fix.remedies import remedy_for, suggested_lr
from nndoctor.fix.session import candidates
from nndoctor.monitor.tensors import param_ids

__all__ = ["ExperimentAttempt", "ExperimentFix", "fix_experiment", "set_override"]

logger = logging.getLogger(__name__)

Finding = dict[str, Any]
_LR_NAMES = ("lr", "learning_rate", "learningrate", "lr0", "base_lr")
_WD_NAMES = ("weight_decay", "wd", "decay", "l2")
_DROPOUT_NAMES = ("dropout", "p_drop", "drop", "dropout_p", "dropout_rate", "drop_prob")


def _hparam(hparams: dict[str, Any], names: tuple[str, ...]) -> str | None:
    lower = {k.lower(): k for k, v in hparams.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return next((lower[n] for n in names if n in lower), None)


def set_override(finding: Finding, hparams: dict[str, Any]) -> dict[str, str] | None:
    """The ``--set`` overrides that apply ``finding``'s remedy, when the experiment exposes the
    hyperparameter it changes; None otherwise."""
    code, ev = finding.get("code", ""), finding.get("evidence", {}) or {}
    if code in ("lr.too-high", "lr.too-low", "lr.above-divergence"):
        name = _hparam(hparams, _LR_NAMES)
        lr = suggested_lr(finding) or ev.get("suggested_lr")
        if name and isinstance(lr, (int, float)) and lr > 0:
            return {name: f"{float(lr):.3g}"}
    if code == "regularization.weight-decay-too-strong":
        name = _hparam(hparams, _WD_NAMES)
        if name and hparams[name]:
            sug = ev.get("suggested")
            return {name: f"{float(sug) if isinstance(sug, (int, float)) else hparams[name] / 100:.3g}"}
    if code == "regularization.dropout-too-strong":
        name = _hparam(hparams, _DROPOUT_NAMES)
        if name and 0.5 < float(hparams[name]) < 1:
            return {name: "0.2"}
    return None


# -- module rewrites ---------------------------------------------------------------------
_ACTIVATIONS = (nn.Softmax, nn.Sigmoid, nn.LogSoftmax, nn.ReLU)


def _drop_activation(finding: Finding, model: nn.Module) -> bool:
    loc = str(finding.get("location") or "")
    path = loc.split(".", 1)[1] if "." in loc else ""
    if not path:
        return False
    try:
        target = model.get_submodule(path)
    except AttributeError:
        return False
    if not isinstance(target, _ACTIVATIONS):
        return False
    model.set_submodule(path, nn.Identity())
    return True


def _less_dropout(finding: Finding, model: nn.Module) -> bool:
    changed = False
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0.5:
            m.p, changed = 0.2, True
    return changed


def _reinit(finding: Finding, model: nn.Module) -> bool:
    changed = False
    with torch.no_grad():
        for m in model.modules():
            if next(m.children(), None) is None and callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()  # type: ignore[operator]
                changed = True
    return changed


_REWRITES: dict[str, tuple[Callable[[Finding, nn.Module], bool], str]] = {
    "drop-output-activation": (_drop_activation, "the activation module at {loc} replaced by nn.Identity()"),
    "less-dropout": (_less_dropout, "dropout modules with p > 0.5 set to p=0.2"),
    "reinitialise": (_reinit, "every layer re-initialised with PyTorch's default init"),
}


# -- the trials --------------------------------------------------------------------------
@dataclass
class ExperimentAttempt:
    remedy: str
    findings: list[Finding]
    how: str                      # "--set lr=0.001", "module rewrite: ...", "runtime hook: ..."
    edit: str
    verdict: Verdict
    after: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"remedy": self.remedy, "codes": [f["code"] for f in self.findings],
                "location": self.findings[0].get("location", ""), "how": self.how, "edit": self.edit,
                **self.verdict.to_dict()}


@dataclass
class ExperimentFix:
    metric: str = ""
    before: float | None = None
    repeat: float | None = None
    attempts: list[ExperimentAttempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "before": self.before, "noise_run": self.repeat,
                "remedies": [a.to_dict() for a in self.attempts]}


def _measure(exp: Any, epochs: int) -> tuple[str, float]:
    """Train ``exp`` and return the yardstick (name, value)."""
    from nndoctor.evaluate.workflow import train_epochs
    from nndoctor.experiment import compute_loss, forward, split_batch, to_device

    losses = train_epochs(exp, epochs)
    data = exp.train_val
    if data is None:
        return "train_loss", losses[-1] if losses else math.nan
    correct = total = 0
    loss_sum, batches, classifier = 0.0, 0, exp.step is None
    exp.model.eval()
    with torch.no_grad():
        for batch in data:
            loss_sum += float(compute_loss(exp, batch))
            batches += 1
            if classifier:
                b = split_batch(to_device(batch, exp.device))
                out = forward(exp.model, b)
                t = b.target
                if (isinstance(out, torch.Tensor) and isinstance(t, torch.Tensor) and out.dim() == 2
                        and out.shape[1] > 1 and t.dim() == 1 and not t.is_floating_point()):
                    correct += int((out.argmax(1) == t).sum())
                    total += int(t.numel())
                else:
                    classifier = False
    if classifier and total:
        return "acc", correct / total
    return "val_loss", loss_sum / max(batches, 1)


def _trial(path: str, overrides: dict[str, Any], epochs: int, seed: int,
           prepare: Callable[[contextlib.ExitStack], None] | None = None,
           rewrite: Callable[[nn.Module], bool] | None = None) -> tuple[str, float]:
    from nndoctor.experiment import load_experiment

    with contextlib.ExitStack() as stack:
        if prepare is not None:
            prepare(stack)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            exp = load_experiment(path, overrides)
            if rewrite is not None and not rewrite(exp.model):
                raise ValueError("nothing to rewrite in the model")
            if rewrite is not None:  # the optimizer must hold the rewritten model's parameters
                held = param_ids(exp.optimizer)
                missing = [p for p in exp.model.parameters() if id(p) not in held]
                if missing:
                    exp.optimizer.add_param_group({"params": missing})
            return _measure(exp, epochs)


def _install_all(remedy: Any, group: list[Finding], stack: contextlib.ExitStack) -> None:
    for f in group:
        remedy.install(f, stack)


def _figures(name: str, value: float | None) -> Figures:
    return Figures(script={name: value} if value is not None else {}, exit_code=0)


def fix_experiment(path: str, findings: list[Finding], *, overrides: dict[str, Any] | None = None,
                   epochs: int = 10, hparams: dict[str, Any] | None = None, seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> ExperimentFix:
    """Try each root-cause finding's remedy on the experiment at ``path`` (see the module doc)."""
    say = progress or (lambda _m: None)
    overrides = dict(overrides or {})
    hparams = dict(hparams or {})
    result = ExperimentFix()
    todo = candidates(findings)
    if not todo:
        return result
    say(f"{len(todo)} remedies to try: the experiment trains {len(todo) + 2} times for {epochs} epochs")
    name, before = _trial(path, overrides, epochs, seed)
    _, repeat = _trial(path, overrides, epochs, seed)
    result.metric, result.before, result.repeat = name, before, repeat
    base, noise = _figures(name, before), _figures(name, repeat)
    for i, (rname, group) in enumerate(todo):
        f0 = group[0]
        remedy = remedy_for(f0)
        assert remedy is not None
        say(f"remedy {i + 1}/{len(todo)}: {rname} for {f0['code']}")
        sets = set_override(f0, hparams)
        rewrite = _REWRITES.get(rname)
        prepare: Callable[[contextlib.ExitStack], None] | None = None
        model_rewrite: Callable[[nn.Module], bool] | None = None
        if sets:
            how = " ".join(f"--set {k}={v}" for k, v in sets.items())
            edit = f"Re-run with {how}, or make it the default of experiment()."
        elif rewrite is not None and str(f0.get("location") or "").count(".") >= (1 if rname == "drop-output-activation" else 0):
            fn, text = rewrite
            how = "module rewrite: " + text.format(loc=f0.get("location", ""))
            model_rewrite, edit = (lambda m, fn=fn, f=f0: fn(f, m)), remedy.edit(f0)
        else:
            how = "runtime hook: " + remedy.describe(f0)
            prepare = functools.partial(_install_all, remedy, group)
            edit = remedy.edit(f0)
        error, after = "", None
        try:
            _, after = _trial(path, {**overrides, **(sets or {})}, epochs, seed, prepare, model_rewrite)
        except Exception as exc:  # a remedy that breaks the experiment is reported, never fatal
            error = f"{type(exc).__name__}: {exc}"
            logger.debug("remedy %s failed", rname, exc_info=True)
        after_fig = _figures(name, after)
        if error:
            after_fig.exit_code = None
        verdict = judge(base, after_fig, noise, error)
        result.attempts.append(ExperimentAttempt(rname, group, how, edit, verdict, after))
    return result
