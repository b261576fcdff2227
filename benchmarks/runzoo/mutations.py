"""Mutation operators (DeepCrime's kinds): one change that breaks a healthy zoo run.

Each operator names the category a right diagnosis gives (the root cause), says to which
configs it applies (a mutation that cannot change anything is not applied) and returns
the mutant config. A mutant counts for detection only if it really trains worse than its
healthy parent (see :func:`effective`), as DeepCrime counts only "killed" mutants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from benchmarks.runzoo.config import Config
from benchmarks.runzoo.recipes import RECIPE_MUTATIONS

__all__ = ["MUTATIONS", "Mutation", "effective", "mutate"]


@dataclass(frozen=True)
class Mutation:
    name: str
    expected: str                              # the category of the root cause
    applies: Callable[[Config], bool]
    change: Callable[[Config], dict[str, object]]


def _classify(c: Config) -> bool:
    return c.data in ("blobs", "digits", "sequences", "images")


def _not_lbfgs(c: Config) -> bool:
    return c.optimizer != "lbfgs"


def _mlp(c: Config) -> bool:
    return c.model in ("mlp", "mlp_class")


def _mode_layers(c: Config) -> bool:
    return c.dropout > 0 or c.norm == "bn" or c.model == "transformer"


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("lr-x1000", "lr", _not_lbfgs, lambda c: {"lr": c.lr * 1000}),
    Mutation("lr-div1e4", "lr", _not_lbfgs, lambda c: {"lr": c.lr * 1e-4}),
    Mutation("softmax-into-ce", "loss-input", lambda c: _classify(c) or c.data == "tokens",
             lambda c: {"softmax_output": True}),
    Mutation("no-zero-grad", "zero-grad", lambda c: _not_lbfgs(c) and c.zero_grad != "accumulate",
             lambda c: {"skip_zero_grad": True}),
    Mutation("freeze-all", "grad-flow", lambda c: True, lambda c: {"freeze_all": True}),
    Mutation("detach-hidden", "grad-flow", lambda c: c.model == "mlp" and c.depth >= 2,
             lambda c: {"detach_hidden": True}),
    Mutation("shuffle-labels", "labels", lambda c: _classify(c), lambda c: {"label_shuffle": True}),
    Mutation("unnormalised-inputs", "preprocessing",
             lambda c: c.data in ("blobs", "digits", "images", "regression"),
             lambda c: {"input_scale": 255.0 if c.data in ("digits", "images") else 100.0,
                        "input_shift": 0.0 if c.data in ("digits", "images") else 50.0}),
    Mutation("constant-init", "init", lambda c: _mlp(c) or c.model == "cnn", lambda c: {"init": "constant"}),
    Mutation("deep-sigmoid-sgd", "grad", lambda c: c.model == "mlp" and c.data != "regression",
             lambda c: {"act": "sigmoid", "depth": 6, "optimizer": "sgd", "lr": 0.05, "norm": "none",
                        "schedule": "none"}),
    Mutation("train-in-eval-mode", "train-mode", lambda c: _mode_layers(c) and _not_lbfgs(c),
             lambda c: {"train_in_eval": True}),
    Mutation("adam-eps-1", "optimizer", lambda c: c.optimizer in ("adam", "adamw"), lambda c: {"adam_eps": 1.0}),
    Mutation("momentum-1", "optimizer", lambda c: c.optimizer == "sgd_momentum", lambda c: {"momentum": 1.0}),
    Mutation("huge-weight-decay", "regularization", lambda c: _not_lbfgs(c) and c.optimizer != "adamw",
             lambda c: {"weight_decay": 1.0}),
    Mutation("hand-l2-dominates", "regularization", _not_lbfgs, lambda c: {"hand_l2": 1.0}),
    Mutation("float64-inputs", "dtype", lambda c: not c.float64 and c.data != "tokens",
             lambda c: {"input_float64": True}),
    Mutation("flat-regression-target", "shape", lambda c: c.data == "regression" and c.loss != "bce",
             lambda c: {"flat_target": True}),
)


def _recipes_too(op: Mutation) -> Mutation:
    """A recipe run (benchmarks/runzoo/recipes.py) takes only the operators its loops support."""
    base = op.applies
    if op.name in RECIPE_MUTATIONS:
        return op
    return replace(op, applies=lambda c: not c.recipe and base(c))


MUTATIONS = tuple(_recipes_too(op) for op in MUTATIONS)


def mutate(cfg: Config, mutation: Mutation) -> Config:
    if not mutation.applies(cfg):
        raise ValueError(f"mutation {mutation.name!r} does not apply to {cfg.short()}")
    return replace(cfg, mutation=mutation.name, **mutation.change(cfg))  # type: ignore[arg-type]


def effective(parent_quality: float, mutant_quality: float, mutant_crashed: str) -> bool:
    """Did the mutation really hurt? A crash, a non-finite or a clearly worse held-out loss."""
    if mutant_crashed or not math.isfinite(mutant_quality):
        return True
    return mutant_quality > parent_quality * 1.15 + 0.02
