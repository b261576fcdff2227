"""Finding codes of the ``regularization`` category: too much weight decay, dropout or other regularisation."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="regularization.dropout-too-strong",
        severity="warning",
        step="improve",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Set the dropout ({site}) to p=0.1..0.5: p is the probability to DROP a unit (p={p} keeps only "
            "{keep:.0%}), unlike TensorFlow's keep_prob.",
            "Start without dropout, check the model can fit the training data, then add it back only if "
            "validation loss shows overfitting.",
        ),
    ),
    CodeInfo(
        code="regularization.loss-penalty-too-strong",
        severity="warning",
        step="improve",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Lower the penalty's weight (lam) about {factor}x, so that the penalty ({penalty}) is a small "
            "fraction (~1-10%) of the data loss ({data}): typical L2 weights are 1e-5..1e-3 on a summed "
            "penalty.",
            "Or drop the term and use the optimizer's weight_decay= (AdamW for Adam), which the optimizer "
            "applies without changing the loss you monitor.",
            "Penalise weights only (not biases / norm layers) and scale the penalty by the number of "
            "samples if the data loss is a mean over the batch.",
        ),
    ),
    CodeInfo(
        code="regularization.start-without",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Train the first version without dropout and weight decay; add them back when train-val error "
            "is much worse than train error.",
        ),
    ),
    CodeInfo(
        code="regularization.start-without-normalisation",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Remove BatchNorm/LayerNorm for the first version, add them back when it trains.",
        ),
    ),
    CodeInfo(
        code="regularization.weight-decay-too-strong",
        severity="warning",
        step="improve",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Lower weight_decay of {optimizer} from {weight_decay} to ~{suggested} (typical: 1e-4..5e-4 for"
            " SGD/Adam L2, 0.01..0.1 for AdamW).",
            "With Adam, use torch.optim.AdamW (decoupled decay) rather than Adam(weight_decay=...).",
            "Exclude biases and normalisation weights from decay with a second parameter group "
            "(weight_decay=0).",
        ),
    ),
)
