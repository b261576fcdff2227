"""Tune step of the field guide: LR range test and hyperparameter search (Optuna, extra ``[tune]``).

``nndoctor.tune.lr_find(exp)`` is the function, not its module (import the module's other names
with ``from nndoctor.tune.lr_find import lr_findings``); the search space helpers ``loguniform``,
``uniform``, ``intuniform`` and ``choice`` are also ``nndoctor.loguniform`` etc.
"""

from __future__ import annotations

from nndoctor.tune.lr_find import LRFindResult, lr_find, lr_findings, lr_range_test
from nndoctor.tune.space import choice, intuniform, loguniform, uniform

__all__ = ["LRFindResult", "choice", "intuniform", "loguniform", "lr_find", "lr_findings", "lr_range_test",
           "uniform"]
