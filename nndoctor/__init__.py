"""nndoctor: find out why a PyTorch model trains badly, and what to do next."""

from __future__ import annotations

from nndoctor.findings import Finding, Report, Severity, Step

__version__ = "0.1.0"

__all__ = ["Finding", "Report", "Severity", "Step", "__version__"]
