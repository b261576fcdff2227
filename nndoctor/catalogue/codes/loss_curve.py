"""Finding codes of the ``loss-curve`` category: loss goes up, explodes, oscillates or plateaus."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="loss-curve.cannot-overfit-one-batch",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
    ),
    CodeInfo(
        code="loss-curve.explodes",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
    ),
    CodeInfo(
        code="loss-curve.goes-up",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
    ),
    CodeInfo(
        code="loss-curve.oscillates",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-explodes",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-flipped-sign",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check the sign of the loss (e.g. a log-likelihood must be negated) and of any manual gradient "
            "or update.",
            "Check softmax/log_softmax run over the class dimension (dim=-1 or 1).",
        ),
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-goes-up",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-oscillates",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-plateaus",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
    ),
    CodeInfo(
        code="loss-curve.plateaus",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
    ),
)
