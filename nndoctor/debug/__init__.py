"""Implement-&-debug checks: the common silent bugs of the field guide's step 2."""

from __future__ import annotations

from nndoctor.debug import loss_input

__all__ = ["loss_input"]
