"""Integrations with training frameworks (optional extras).

* :mod:`nndoctor.integrations.lightning`: ``NNDoctorCallback`` for Lightning's ``Trainer``
  (``pip install 'nndoctor[lightning]'``).
"""

from __future__ import annotations

__all__: list[str] = []
