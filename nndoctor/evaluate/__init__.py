"""Evaluate step of the field guide: decompose the error, analyse it, check the data.

The functions users call are attributes of this package::

    import nndoctor.evaluate
    nndoctor.evaluate.decompose(0.27, 0.29, 0.32, 0.34, irreducible=0.25)

``nndoctor.evaluate.decompose`` is the function, not its module: import the module's other
names with ``from nndoctor.evaluate.decompose import decompose_errors`` (or
``importlib.import_module("nndoctor.evaluate.decompose")``), not ``import ... as``.
"""

from __future__ import annotations

from nndoctor.evaluate.balance import Balance, class_balance
from nndoctor.evaluate.decompose import Decomposition, Term, decompose, decompose_errors
from nndoctor.evaluate.duplicates import Leakage, find_duplicates
from nndoctor.evaluate.error_analysis import SliceRow, error_table
from nndoctor.evaluate.labels import LabelNoise, find_label_issues
from nndoctor.evaluate.shift import ShiftResult, domain_shift

__all__ = ["Balance", "Decomposition", "Evaluation", "LabelNoise", "Leakage", "ShiftResult", "SliceRow", "Term",
           "class_balance", "decompose", "decompose_errors", "domain_shift", "error_table", "evaluate_experiment",
           "find_duplicates", "find_label_issues", "learning_curve"]


def __getattr__(name: str) -> object:
    # the experiment workflow imports torch: only on first use
    if name in ("Evaluation", "evaluate_experiment", "learning_curve"):
        from nndoctor.evaluate import workflow

        return getattr(workflow, name)
    raise AttributeError(f"module 'nndoctor.evaluate' has no attribute {name!r}")
