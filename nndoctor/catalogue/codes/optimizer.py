"""Finding codes of the ``optimizer`` category: optimizer settings other than lr that break training."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="optimizer.adam-betas",
        severity="error",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use betas=(0.9, 0.999) (beta1 is the momentum of the gradient, beta2 of its square; beta2 must"
            " be the larger), or (0.9, 0.95) for large models.",
        ),
    ),
    CodeInfo(
        code="optimizer.adam-eps",
        severity="error",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use eps=1e-8 (the default) for {optimizer}; {sane}.",
            "If you raised eps to fight instability, lower the learning rate or clip gradients instead.",
        ),
    ),
    CodeInfo(
        code="optimizer.bad-setting",
        severity="error",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Set {setting} of {optimizer} to a value in the sane range ({sane}).",
            "Or drop the argument and keep torch's default ({default}).",
        ),
    ),
    CodeInfo(
        code="optimizer.maximize",
        severity="error",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Remove maximize=True from {optimizer}: with it the optimizer climbs the loss.",
            "If you really maximise an objective, keep maximize=True and ignore this finding.",
        ),
    ),
    CodeInfo(
        code="optimizer.start-with-adam",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use torch.optim.Adam(model.parameters(), lr=3e-4) for the first runs; switch back once the "
            "model trains.",
        ),
    ),
    CodeInfo(
        code="optimizer.tuned-configuration",
        severity="info",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Re-run with {set}",
        ),
    ),
)
