"""Finding codes of the ``init`` category: poor initialisation."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="init.activation-scale",
        severity="error",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Initialise the weights with {scheme} so each layer keeps the signal's scale.",
            "Or drop the custom initialisation: PyTorch's default keeps the std within ~2.5x per layer.",
            "Add normalisation layers (nn.BatchNorm1d/2d or nn.LayerNorm) between the {depth} weighted "
            "layers if the depth must stay.",
        ),
    ),
    CodeInfo(
        code="init.constant-weights",
        severity="error",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Remove the constant initialisation of {layers} (e.g. nn.init.constant_/zeros_/fill_): the "
            "PyTorch default, or {scheme}, gives every unit different weights.",
            "If you zero-initialise on purpose, do it only for the last layer of a branch (the output head "
            "or a residual branch), never for every layer.",
        ),
    ),
    CodeInfo(
        code="init.start-constant-weights",
        severity="error",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Initialise {layer} randomly: nn.init.kaiming_normal_ (ReLU) or xavier_normal_ (tanh).",
        ),
    ),
    CodeInfo(
        code="init.start-scale",
        severity="warning",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use nn.init.{scheme} for {layer}.",
        ),
    ),
    CodeInfo(
        code="init.start-scheme",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Initialise Linear/Conv weights with {scheme}.",
        ),
    ),
    CodeInfo(
        code="init.symmetric-weights",
        severity="error",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Give the units of {layers} different initial weights: use the default init or {scheme} instead"
            " of copying one row/filter to all units.",
        ),
    ),
)
