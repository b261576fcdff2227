"""``nndoctor baseline``: where the user's model stands against trivial and simple baselines.

On the same data and the same budget (epochs over ``train``), it trains each model and
keeps its best evaluation after any epoch (on ``train_val``, else on ``train``), so a
model that learns more slowly is not penalised for the budget alone:

- the best constant predictor (majority class / class prior for classification, the
  mean for regression): anything that learns must beat it;
- a linear (logistic) model on the flattened inputs;
- the guide's start-simple model (:func:`nndoctor.start.baseline`), Adam lr 3e-4;
- the user's model with the user's optimizer.

All use the user's loss, so the numbers compare directly. A model worse than the linear
baseline is a finding (``fit``). The user's model, optimizer and RNG are restored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from nndoctor import catalogue
from nndoctor.experiment import Experiment, first_batch, forward, preserved, split_batch, to_device
from nndoctor.findings import Finding, Report
from nndoctor.start.baseline import Reshape, baseline, describe

__all__ = ["BaselineRow", "Comparison", "compare_baselines", "evaluate_model"]


@dataclass
class BaselineRow:
    name: str
    description: str
    loss: float
    accuracy: float | None
    parameters: int
    seconds: float


@dataclass
class Comparison:
    rows: list[BaselineRow]
    split: str
    task: str  # "classification" / "regression"
    report: Report = field(default_factory=Report)

    def row(self, name: str) -> BaselineRow | None:
        return next((r for r in self.rows if r.name == name), None)


class _Constant(nn.Module):
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value)

    def forward(self, *inputs: Any, **named: Any) -> torch.Tensor:
        x = next(t for t in list(inputs) + list(named.values()) if isinstance(t, torch.Tensor))
        return self.value.expand(x.shape[0], *self.value.shape).clone()


class _Linear(nn.Module):
    def __init__(self, features: int, out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(features, max(1, math.prod(out_shape)))
        self.reshape = Reshape(out_shape)

    def forward(self, *inputs: Any, **named: Any) -> torch.Tensor:
        xs = [t for t in list(inputs) + list(named.values()) if isinstance(t, torch.Tensor)]
        flat = torch.cat([t.float().reshape(t.shape[0], -1) for t in xs], dim=1)
        return self.reshape(self.linear(flat))


def evaluate_model(model: nn.Module, loss: Callable[..., torch.Tensor], loader: Iterable[Any],
                   device: torch.device, classification: bool, max_batches: int = 200) -> tuple[float, float | None]:
    """Mean loss and accuracy (classification) of ``model`` over ``loader``."""
    total, n, correct = 0.0, 0, 0
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i, raw in enumerate(loader):
                if i >= max_batches:
                    break
                b = split_batch(to_device(raw, device))
                out = forward(model, b)
                k = int(b.target.shape[0]) if b.target.dim() else 1
                total += float(loss(out, b.target)) * k
                n += k
                if classification:
                    correct += int((out.argmax(-1) == b.target).sum())
    finally:
        model.train(was)
    return total / max(n, 1), (correct / max(n, 1) if classification else None)


class _Positional(nn.Module):
    """Feed every input (positional or named) positionally to a baseline model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Any, **named: Any) -> torch.Tensor:
        return self.model(*inputs, *named.values())


def _train(model: nn.Module, opt: torch.optim.Optimizer, exp: Experiment, epochs: int, max_steps: int,
           tick: Callable[[], None], evaluate: Callable[[], tuple[float, float | None]]) -> tuple[float, float | None]:
    """Train for ``epochs``; the best (lowest-loss) evaluation after any epoch counts."""
    assert exp.loss is not None
    steps, best = 0, (math.inf, None)
    for _ in range(epochs):
        model.train()
        for raw in exp.train:
            b = split_batch(to_device(raw, exp.device))
            opt.zero_grad(set_to_none=True)
            exp.loss(forward(model, b), b.target).backward()
            opt.step()
            tick()
            steps += 1
            if steps >= max_steps:
                break
        score = evaluate()
        if not score[0] >= best[0]:  # also replaces inf with nan
            best = score
        if steps >= max_steps:
            break
    return best


def _prior(exp: Experiment, out_shape: tuple[int, ...], classification: bool) -> torch.Tensor:
    ys = []
    for i, raw in enumerate(exp.train):
        ys.append(split_batch(raw).target.detach().cpu())
        if i >= 200:
            break
    y = torch.cat([t.reshape(t.shape[0], -1) if t.dim() else t.reshape(1, 1) for t in ys])
    if classification:
        k = out_shape[-1]
        counts = torch.bincount(y.flatten().long().clamp(0, k - 1), minlength=k).float()
        return torch.log((counts + 1e-3) / (counts.sum() + 1e-3 * k)).to(exp.device)
    mean = y.float().mean(0).reshape(out_shape) if y.shape[1] == math.prod(out_shape) \
        else torch.full(out_shape, float(y.float().mean()))
    name = getattr(exp.loss, "__name__", type(exp.loss).__name__).lower()
    if "logits" in name and bool(((y >= 0) & (y <= 1)).all()):
        mean = torch.logit(mean.clamp(1e-4, 1 - 1e-4))  # the best constant logit
    return mean.to(exp.device)


def compare_baselines(exp: Experiment, *, epochs: int = 10, max_steps: int = 5000,
                      on_tick: Callable[[], None] | None = None) -> Comparison:
    """Train and evaluate the baselines and the user's model (see the module docstring)."""
    if exp.step is not None or exp.loss is None:
        raise ValueError("baselines need Experiment(loss=...): a custom step cannot be applied to other models")
    tick = on_tick or (lambda: None)
    raw = to_device(first_batch(exp.train), exp.device)
    b = split_batch(raw)
    with torch.no_grad(), preserved(exp.model, None):
        out = forward(exp.model, b)
    out_shape = tuple(out.shape[1:])
    classification = (not b.target.is_floating_point() and out.dim() == b.target.dim() + 1
                      and out.shape[-1] > 1)
    loader = exp.train_val if exp.train_val is not None else exp.train
    split = "train_val" if exp.train_val is not None else "train"
    rows: list[BaselineRow] = []

    def score(model: nn.Module) -> Callable[[], tuple[float, float | None]]:
        return lambda: evaluate_model(model, exp.loss, loader, exp.device, classification)  # type: ignore[arg-type]

    def add(name: str, model: nn.Module, desc: str, t0: float, opt: torch.optim.Optimizer | None = None) -> None:
        if opt is None:
            loss, acc = score(model)()
        else:
            loss, acc = _train(model, opt, exp, epochs, max_steps, tick, score(model))
        rows.append(BaselineRow(name, desc, loss, acc, sum(p.numel() for p in model.parameters()),
                                time.perf_counter() - t0))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        t0 = time.perf_counter()
        const = _Constant(_prior(exp, out_shape, classification))
        add("constant", const, "majority class (class prior)" if classification else "mean of the targets", t0)
        inputs = b.inputs or tuple(b.kwargs.values())
        features = sum(t.reshape(t.shape[0], -1).shape[1] for t in inputs if isinstance(t, torch.Tensor))
        t0 = time.perf_counter()
        lin = _Linear(features, out_shape).to(exp.device)
        add("linear", lin, "logistic regression" if classification else "linear regression", t0,
            torch.optim.Adam(lin.parameters(), lr=1e-3))
        t0 = time.perf_counter()
        simple = baseline(inputs if len(inputs) > 1 else inputs[0], out_shape).to(exp.device)
        add("start-simple", _Positional(simple), describe(simple) + ", Adam 3e-4", t0,
            torch.optim.Adam(simple.parameters(), lr=3e-4))
        assert exp.optimizer is not None
        opt = exp.optimizer
        with preserved(exp.model, opt):
            t0 = time.perf_counter()
            add("yours", exp.model, f"{type(exp.model).__name__}, {type(opt).__name__} "
                f"lr {opt.param_groups[0]['lr']:.3g}", t0, opt)
    comp = Comparison(rows=rows, split=split, task="classification" if classification else "regression")
    comp.report = Report(findings=_findings(comp, epochs), facts={
        "command": "baseline", "experiment": exp.name, "split": split, "task": comp.task, "epochs": epochs,
        "rows": [r.__dict__ for r in rows]})
    return comp


def _worse(a: BaselineRow, b: BaselineRow) -> bool:
    """``a`` clearly worse than ``b``: higher loss by 10%, and (if known) 2 points less accuracy."""
    if not math.isfinite(a.loss):
        return True
    loss_worse = a.loss > b.loss * 1.1 + 1e-6
    if a.accuracy is not None and b.accuracy is not None:
        return loss_worse and a.accuracy < b.accuracy - 0.02
    return loss_worse


def _findings(comp: Comparison, epochs: int) -> list[Finding]:
    yours, lin, const, simple = (comp.row(n) for n in ("yours", "linear", "constant", "start-simple"))
    assert yours and lin and const and simple
    out: list[Finding] = []
    ev = {"split": comp.split, "epochs": epochs, "your_loss": yours.loss, "linear_loss": lin.loss,
          "constant_loss": const.loss, "your_accuracy": yours.accuracy, "linear_accuracy": lin.accuracy,
          "constant_accuracy": const.accuracy}
    if _worse(yours, const) or (math.isfinite(yours.loss) and yours.loss >= const.loss * 0.98):
        out.append(catalogue.finding(
            "fit.no-better-than-constant",
            message=(f"your model is no better than predicting {const.description} on {comp.split} "
                     f"(loss {yours.loss:.4g} vs {const.loss:.4g}) after {epochs} epochs: it learns nothing"),
            evidence=ev))
    elif _worse(yours, lin):
        out.append(catalogue.finding(
            "fit.worse-than-linear-baseline",
            message=(f"your model is worse than a {lin.description} on {comp.split} (loss {yours.loss:.4g} vs "
                     f"{lin.loss:.4g}" + (f", accuracy {yours.accuracy:.3f} vs {lin.accuracy:.3f}"
                                          if yours.accuracy is not None and lin.accuracy is not None else "")
                     + f") after {epochs} epochs"),
            evidence=ev, fill={"start_simple_model": simple.description}))
    elif _worse(yours, simple):
        out.append(catalogue.finding(
            "fit.start-simple-baseline-better",
            message=(f"the guide's first model ({simple.description}) beats yours on {comp.split} "
                     f"(loss {simple.loss:.4g} vs {yours.loss:.4g})"),
            evidence={**ev, "start_simple_loss": simple.loss}))
    return out
