"""One module per finding category, each holding ``CODES``: a tuple of
:class:`~nndoctor.catalogue.entry.CodeInfo`. Add a code to the module of its category."""

from __future__ import annotations

__all__: list[str] = []
