"""nndoctor: find out why a PyTorch model trains badly, and what to do next."""

from __future__ import annotations

from nndoctor.findings import Finding, Report, Severity, Step

__version__ = "0.1.0"

__all__ = ["Experiment", "Finding", "Report", "Severity", "Step", "__version__", "choice", "intuniform",
           "loguniform", "uniform", "watch"]


def __getattr__(name: str) -> object:
    # imported lazily so that ``nndoctor --help`` does not pay for importing torch
    if name == "Experiment":
        from nndoctor.experiment import Experiment

        return Experiment
    if name == "watch":
        from nndoctor.monitor.watch import watch

        return watch
    if name in ("choice", "intuniform", "loguniform", "uniform"):
        from nndoctor.tune import space

        return getattr(space, name)
    raise AttributeError(f"module 'nndoctor' has no attribute {name!r}")
