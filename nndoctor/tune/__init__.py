"""Tune step of the field guide: LR range test and hyperparameter search (Optuna, extra ``[tune]``)."""

from __future__ import annotations

from nndoctor.tune.space import choice, intuniform, loguniform, uniform

__all__ = ["choice", "intuniform", "loguniform", "uniform"]
