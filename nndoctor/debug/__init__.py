"""Implement-&-debug checks: the common silent bugs of the field guide's step 2.

Every module in this package is imported on first use so its checks register.
"""

from __future__ import annotations

from nndoctor._autoload import import_submodules

__all__ = import_submodules(__name__, __path__)
