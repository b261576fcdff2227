"""Finding codes of the ``activation`` category: dead ReLUs, saturated tanh/sigmoid."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="activation.dead-relu",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Lower the learning rate (large early updates push ReLU units into the negative region for "
            "good) or add warm-up.",
            "Use nn.LeakyReLU(0.01) / nn.GELU after {location}, or put nn.BatchNorm before the ReLU.",
            "Initialise {location} with nn.init.kaiming_normal_(w, nonlinearity='relu') and zero (not "
            "negative) biases.",
        ),
    ),
    CodeInfo(
        code="activation.saturated",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Normalise the inputs of {location} (nn.BatchNorm1d / nn.LayerNorm before the {activation}) so "
            "pre-activations stay within +-2.",
            "Initialise {location} with nn.init.xavier_normal_(w, "
            "gain=nn.init.calculate_gain('{activation}')) instead of a larger scale.",
            "Use ReLU/GELU in the hidden layers, or lower the learning rate if units saturate only after "
            "the first steps.",
        ),
    ),
)
