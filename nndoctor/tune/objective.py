"""The objective for an experiment file: train with the trial's hyperparameters, report per epoch."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from nndoctor.evaluate.workflow import collect, train_epochs
from nndoctor.experiment import load_experiment
from nndoctor.tune.study import Diverged

__all__ = ["experiment_objective"]


def experiment_objective(
    path: str, *, epochs: int, fixed: dict[str, Any] | None = None, seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> Callable[[dict[str, Any], Callable[[float, int], bool]], float]:
    """Minimise the train-val error (classification) or loss; the training loss without train-val."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")

    def objective(params: dict[str, Any], report: Callable[[float, int], bool]) -> float:
        import optuna

        torch.manual_seed(seed)
        exp = load_experiment(path, {**(fixed or {}), **params})
        value = float("nan")
        for epoch in range(1, epochs + 1):
            loss = train_epochs(exp, 1)[-1]
            if not math.isfinite(loss):
                raise Diverged(f"training diverged: loss {loss} in epoch {epoch}")
            value = float(collect(exp, exp.train_val).errors.mean()) if exp.train_val is not None else loss
            if on_epoch is not None:
                on_epoch(epoch, value)
            if report(value, epoch):
                raise optuna.TrialPruned(f"pruned after epoch {epoch} at {value:.4g}")
        return value

    return objective
