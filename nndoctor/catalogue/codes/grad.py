"""Finding codes of the ``grad`` category: vanishing or exploding gradients."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="grad.exploding-gradients",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Clip the gradient norm before optimizer.step(): "
            "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).",
            "Shrink the initial weight scale ({init_hint}) or add normalisation layers so gradients stop "
            "growing towards {first_layer}.",
            "Lower the learning rate until the gradient norm stays within ~10x of its first value "
            "({first_total}).",
        ),
    ),
    CodeInfo(
        code="grad.overfit-batch-vanishing",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use ReLU with He init (or tanh with Glorot), add normalisation layers or residual connections.",
        ),
    ),
    CodeInfo(
        code="grad.vanishing-gradients",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{activation_fix} between {first_layer} and {last_layer}, or put normalisation layers "
            "(nn.BatchNorm1d / nn.LayerNorm) between them.",
            "Initialise the weights for the activation in use ({init_hint}) so the signal keeps its scale "
            "through the {depth} weight layers.",
            "Add residual (skip) connections or use fewer layers, then check that {first_layer} gets a "
            "gradient within ~100x of {last_layer}.",
        ),
    ),
)
