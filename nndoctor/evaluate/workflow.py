"""Evaluate an experiment: train (or load) it, measure every split, decompose, check the data.

This is what ``nndoctor evaluate EXP`` and ``nndoctor data EXP`` run. The pieces it uses
(decompose, label noise, leakage, shift, balance, error analysis, plan) are plain
functions over arrays, usable without an experiment file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch

from nndoctor import catalogue
from nndoctor.evaluate.balance import class_balance
from nndoctor.evaluate.decompose import Decomposition, decompose_errors
from nndoctor.evaluate.duplicates import find_duplicates
from nndoctor.evaluate.error_analysis import SliceRow, error_table, slice_findings
from nndoctor.evaluate.labels import find_label_issues, out_of_sample_probs
from nndoctor.evaluate.shift import domain_shift
from nndoctor.experiment import Experiment, compute_loss, forward, split_batch, to_device
from nndoctor.findings import Finding
from nndoctor.improve.plan import PlanItem, build_plan

__all__ = ["Evaluation", "SplitData", "collect", "data_findings", "evaluate_experiment", "learning_curve",
           "train_epochs"]

logger = logging.getLogger("nndoctor")

SPLITS = ("train", "train_val", "test_val", "test")


@dataclass
class SplitData:
    """Per-example results on one split (capped at ``max_examples``)."""

    errors: np.ndarray  # 0/1 for classification, per-example loss otherwise
    targets: np.ndarray
    inputs: np.ndarray | None  # flattened first input, for the data checks
    probs: np.ndarray | None = None
    task: str = "classification"


@dataclass
class Evaluation:
    decomposition: Decomposition
    splits: dict[str, SplitData]
    findings: list[Finding] = field(default_factory=list)
    table: list[SliceRow] = field(default_factory=list)
    plan: list[PlanItem] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    actionable: str | None = None  # the dominant term, if it is large enough to act on

    def to_dict(self) -> dict[str, Any]:
        return {"decomposition": self.decomposition.to_dict(), "actionable_term": self.actionable,
                "sizes": {k: int(len(v.errors)) for k, v in self.splits.items()},
                "metric": "error rate" if next(iter(self.splits.values())).task != "regression" else "loss",
                "error_analysis": [r.to_dict() for r in self.table],
                "plan": [p.to_dict() for p in self.plan],
                "findings": [f.to_dict() for f in self.findings]}


def train_epochs(exp: Experiment, epochs: int, progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train with the experiment's own optimizer and loss; returns the mean loss per epoch."""
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs!r}")
    model, opt = exp.model, exp.optimizer
    assert opt is not None
    history = []
    for epoch in range(epochs):
        model.train()
        total, n = 0.0, 0
        for batch in exp.train:  # type: ignore[union-attr]
            opt.zero_grad()
            loss = compute_loss(exp, batch)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n += 1
        history.append(total / max(n, 1))
        if progress is not None:
            progress(epoch + 1, history[-1])
    model.eval()
    return history


def _per_example(exp: Experiment, out: torch.Tensor, target: torch.Tensor) -> tuple[str, np.ndarray, np.ndarray | None]:
    if out.dim() == 2 and out.shape[1] > 1 and not target.is_floating_point() and target.dim() == 1:
        probs = torch.softmax(out.float(), dim=1)
        return "classification", (out.argmax(1) != target).float().cpu().numpy(), probs.cpu().numpy()
    flat_out = out.reshape(out.shape[0], -1)
    flat_t = target.reshape(target.shape[0], -1).to(flat_out.dtype) if isinstance(target, torch.Tensor) else None
    if (flat_t is not None and flat_out.shape == flat_t.shape and flat_out.shape[1] == 1
            and bool(((flat_t == 0) | (flat_t == 1)).all())):
        p = torch.sigmoid(flat_out.float()) if (flat_out.min() < 0 or flat_out.max() > 1) else flat_out.float()
        err = ((p > 0.5).float() != flat_t).float().reshape(-1)
        return "binary", err.cpu().numpy(), torch.cat([1 - p, p], dim=1).cpu().numpy()
    if flat_t is not None and flat_out.shape == flat_t.shape:
        return "regression", ((flat_out - flat_t) ** 2).mean(1).float().cpu().numpy(), None
    raise ValueError(f"cannot compare model output {tuple(out.shape)} with target {tuple(target.shape)} per example")


@torch.no_grad()
def collect(exp: Experiment, loader: Iterable[Any], *, max_examples: int = 20000) -> SplitData:
    """Run the model in eval mode over ``loader``: per-example errors, targets, inputs."""
    model = exp.model
    was_training = model.training
    model.eval()
    errs, targets, inputs, probs = [], [], [], []
    task = "classification"
    seen = 0
    try:
        for raw in loader:
            b = split_batch(to_device(raw, exp.device))
            out = forward(model, b)
            if isinstance(out, (tuple, list)):
                out = out[0]
            target = b.target
            task, err, p = _per_example(exp, out, target)
            errs.append(err)
            targets.append(target.detach().cpu().numpy())
            if b.inputs and isinstance(b.inputs[0], torch.Tensor):
                inputs.append(b.inputs[0].detach().float().cpu().reshape(len(err), -1).numpy())
            if p is not None:
                probs.append(p)
            seen += len(err)
            if seen >= max_examples:
                break
    finally:
        model.train(was_training)
    if not errs:
        raise ValueError("the loader yielded no batches")
    return SplitData(errors=np.concatenate(errs), targets=np.concatenate(targets),
                     inputs=np.concatenate(inputs) if inputs else None,
                     probs=np.concatenate(probs) if probs else None, task=task)


def data_findings(splits: dict[str, SplitData], *, label_noise: bool = True, trained: bool = True) -> list[Finding]:
    """Class imbalance, label noise, leakage between train and the other splits, input shift."""
    out: list[Finding] = []
    train = splits.get("train")
    if train is None:
        return out
    if train.task != "regression":
        bal = class_balance(train.targets.reshape(-1).astype(np.int64))
        tv = splits.get("train_val")
        if tv is not None and trained:
            bal.per_class_error = class_balance(tv.targets.reshape(-1).astype(np.int64), tv.errors).per_class_error
        f = bal.finding()
        if f:
            out.append(f)
        if label_noise and train.inputs is not None and len(train.targets) >= 200:
            y = train.targets.reshape(-1).astype(np.int64)
            counts = np.bincount(y)
            # out-of-sample estimates need a few dozen examples per class to be trusted
            if len(np.unique(y)) >= 2 and np.median(counts[counts > 0]) >= 20 and counts[counts > 0].min() >= 5:
                probs = out_of_sample_probs(train.inputs, y)
                f = find_label_issues(probs, y).finding()
                if f:
                    out.append(f)
    for split in ("train_val", "test_val", "test"):
        other = splits.get(split)
        if other is None or other.inputs is None or train.inputs is None:
            continue
        if other.inputs.shape[1] != train.inputs.shape[1]:
            continue
        f = find_duplicates(train.inputs, other.inputs, split=split.replace("_", "-")).finding()
        if f:
            out.append(f)
    tv = splits.get("test_val")
    if tv is not None and tv.inputs is not None and train.inputs is not None and min(len(tv.errors), len(train.errors)) >= 20:
        if tv.inputs.shape[1] == train.inputs.shape[1]:
            f = domain_shift(train.inputs, tv.inputs).finding()
            if f:
                out.append(f)
    return out


def learning_curve(
    factory: Callable[[], Experiment], epochs: int, fractions: Iterable[float] = (0.1, 0.25, 0.5, 1.0),
    *, seed: int = 0,
) -> list[tuple[float, float]]:
    """Train-val error after training fresh experiments on growing shares of the training set."""
    points = []
    for frac in fractions:
        torch.manual_seed(seed)
        exp = factory()
        batches = list(exp.train)  # type: ignore[arg-type]
        keep = max(1, int(round(len(batches) * frac)))
        exp.train = batches[:keep]
        train_epochs(exp, max(1, int(round(epochs / max(frac, 1e-3) ** 0.5))))
        if exp.train_val is None:
            raise ValueError("a learning curve needs Experiment(train_val=...)")
        points.append((frac, float(collect(exp, exp.train_val).errors.mean())))
    return points


def too_little_data(points: list[tuple[float, float]], *, slope: float = 0.02) -> Finding | None:
    """Validation error still falling steeply between the last two points of the curve."""
    if len(points) < 3:
        return None
    (f1, e1), (_, e2) = points[-2], points[-1]
    drop = e1 - e2
    if drop < slope or e2 <= 0:
        return None
    evidence = {"last_fraction": f1, "errors": ", ".join(f"{f:.0%}: {e:.3f}" for f, e in points),
                "drop": round(drop, 4)}
    return catalogue.finding("data.too-little-data",
                   message=(f"train-val error still falls by {drop:.3f} from {f1:.0%} to 100% of the training "
                            f"set: more data is the top fix for variance"),
                   evidence=evidence, location="train")


def evaluate_experiment(
    exp: Experiment,
    *,
    epochs: int = 0,
    human_error: float = 0.0,
    min_gap: float = 0.05,
    n_boot: int = 500,
    slices: dict[str, np.ndarray] | None = None,
    check_data: bool = True,
    factory: Callable[[], Experiment] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Evaluation:
    """Train ``epochs`` epochs (0: use the model as it is), then decompose and check the data."""
    if not 0 <= human_error < 1:
        raise ValueError(f"human error must be in [0, 1), got {human_error!r}")
    losses = train_epochs(exp, epochs, progress) if epochs else []
    splits: dict[str, SplitData] = {}
    for name in SPLITS:
        loader = getattr(exp, name)
        if loader is not None:
            splits[name] = collect(exp, loader)
    if "train_val" not in splits:
        raise ValueError("evaluation needs Experiment(train_val=...): validation data from the training distribution")
    regression = splits["train"].task == "regression"
    d = decompose_errors(*(splits[s].errors if s in splits else None for s in SPLITS),
                         irreducible=0.0 if regression else human_error, n_boot=n_boot)
    if regression:
        d.notes.append("regression: errors are per-example squared errors (mean = MSE)")
    findings = d.findings(min_gap=min_gap)
    table: list[SliceRow] = []
    if not regression:
        tv = splits["train_val"]
        te = splits.get("test_val")
        tv_slices = (slices or {}).get("train_val", tv.targets.reshape(-1))
        te_slices = (slices or {}).get("test_val", te.targets.reshape(-1) if te is not None else None)
        table = error_table(tv.errors, tv_slices, te.errors if te is not None else None, te_slices)
        findings += slice_findings(table)
    if check_data:
        findings += data_findings(splits)
        dom = d.dominant
        if factory is not None and dom is not None and dom.name == "variance" and dom.value >= min_gap:
            f = too_little_data(learning_curve(factory, max(epochs, 1)))
            if f:
                findings.append(f)
    dom = d.dominant
    act = dom.name if dom is not None and dom.value >= min_gap else None
    plan = build_plan(findings, dominant=act, hparams=exp.hyperparameters)
    return Evaluation(decomposition=d, splits=splits, findings=findings, table=table, plan=plan,
                      train_losses=losses, actionable=act)
