"""nndoctor: find out why a PyTorch model trains badly, and what to do next.

The functions of the field guide's steps, as the docs call them (docs/api.md)::

    nndoctor.watch(model, optimizer)            # monitor a training loop
    nndoctor.Experiment(...)                    # an experiment for the guided workflow
    nndoctor.load_experiment("exp.py")          # the experiment of an experiment file
    nndoctor.overfit_batch(exp)                 # implement & debug: overfit one batch
    nndoctor.lr_find(exp)                       # tune: the LR range test
    nndoctor.evaluate.decompose(0.05, 0.12)     # evaluate: bias / variance / shift
    nndoctor.loguniform(1e-5, 1e-1)             # tune: a search space dimension
"""

from __future__ import annotations

from nndoctor.findings import Finding, Report, Severity, Step

__version__ = "0.1.0"

__all__ = ["Experiment", "Finding", "Report", "Severity", "Step", "__version__", "choice", "intuniform",
           "load_experiment", "loguniform", "lr_find", "overfit_batch", "uniform", "watch"]

#: lazily imported names -> their module (so that ``nndoctor --help`` does not pay for importing torch)
_LAZY = {
    "Experiment": "nndoctor.experiment",
    "load_experiment": "nndoctor.experiment",
    "watch": "nndoctor.monitor.watch",
    "overfit_batch": "nndoctor.debug.overfit",
    "lr_find": "nndoctor.tune.lr_find",
    "choice": "nndoctor.tune.space",
    "intuniform": "nndoctor.tune.space",
    "loguniform": "nndoctor.tune.space",
    "uniform": "nndoctor.tune.space",
}


#: the step packages, imported on first use: ``import nndoctor; nndoctor.evaluate.decompose(...)``
_PACKAGES = ("debug", "evaluate", "fix", "improve", "monitor", "report", "start", "tune")


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _PACKAGES:
        return importlib.import_module(f"nndoctor.{name}")
    raise AttributeError(f"module 'nndoctor' has no attribute {name!r}")
