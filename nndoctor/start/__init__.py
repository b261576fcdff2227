"""Start simple (field guide, step 1): review the setup, the guide's first model, a smaller problem.

- :func:`review`: findings for an experiment against the guide's defaults (``nndoctor start``).
- :func:`baseline`: the first model for the data's input type, with the right init.
- :func:`simplify`: ~10k examples, fewer classes, smaller images.
- :func:`synthetic_like`: a learnable synthetic dataset with the user's shapes.
"""

from __future__ import annotations

from nndoctor.start.baseline import baseline, describe, input_kind
from nndoctor.start.review import review
from nndoctor.start.simplify import simplify, synthetic_like

__all__ = ["baseline", "describe", "input_kind", "review", "simplify", "synthetic_like"]
