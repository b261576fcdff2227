"""Read the search space of an experiment file: its ``SPACE`` dict, or a derived default."""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from nndoctor.tune.space import Choice, Dimension, IntUniform, LogUniform, Uniform, default_space

__all__ = ["space_for"]

_DIMS = (LogUniform, Uniform, IntUniform, Choice)
#: what Optuna can store as a categorical value
_CHOICE_TYPES = (type(None), bool, int, float, str)


def space_for(path: str, defaults: Mapping[str, Any]) -> tuple[dict[str, Dimension], list[str]]:
    """``(space, notes)``: the declared ``SPACE`` (validated) or one derived from ``defaults``."""
    mod_name = "_nndoctor_experiment_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    module = sys.modules.get(mod_name)
    declared = getattr(module, "SPACE", None) if module is not None else None
    if declared is None:
        space, notes = default_space(defaults)
        return space, ["no SPACE declared in the experiment file: derived from the defaults"] + notes
    if not isinstance(declared, Mapping):
        raise ValueError(f"SPACE must be a dict of name -> nndoctor.loguniform(...)/choice(...), "
                         f"got {type(declared).__name__}")
    space: dict[str, Dimension] = {}
    for name, dim in declared.items():
        if name not in defaults:
            raise ValueError(f"SPACE names {name!r}, which is not a keyword argument of experiment() "
                             f"(known: {', '.join(defaults) or 'none'})")
        if not isinstance(dim, _DIMS):
            raise ValueError(f"SPACE[{name!r}] must be nndoctor.loguniform/uniform/intuniform/choice, got {dim!r}")
        bad = [o for o in dim.options if not isinstance(o, _CHOICE_TYPES)] if isinstance(dim, Choice) else []
        if bad:
            raise ValueError(f"SPACE[{name!r}]: choice options must be None, bool, int, float or str, got {bad[0]!r} "
                             "(choose a name and build the object inside experiment())")
        space[name] = dim
    return space, [f"SPACE declared in {os.path.basename(path)}"]
