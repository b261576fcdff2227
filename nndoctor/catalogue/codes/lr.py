"""Finding codes of the ``lr`` category: learning rate too high or too low."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="lr.above-divergence",
        severity="warning",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use lr {suggested_lr:.3g} (the range test's suggestion).",
        ),
    ),
    CodeInfo(
        code="lr.overfit-batch-lr-too-high",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Lower the learning rate 10x (to {lower_lr:.3g}) or run `nndoctor lr-find`.",
            "Clip gradients (torch.nn.utils.clip_grad_norm_) while you investigate.",
        ),
    ),
    CodeInfo(
        code="lr.overfit-batch-lr-too-low",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Raise the learning rate (try {higher_lr:.3g}) or run `nndoctor lr-find`.",
            "Train for more steps: `nndoctor overfit --max-steps 2000`.",
        ),
    ),
    CodeInfo(
        code="lr.range-test-no-decrease",
        severity="info",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Run `nndoctor overfit EXP`: a model whose loss never falls usually has a bug.",
        ),
    ),
    CodeInfo(
        code="lr.range-test-suggestion",
        severity="info",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Try lr {suggested_lr:.3g}, then confirm with a short run.",
        ),
    ),
    CodeInfo(
        code="lr.start-default",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Start with lr=3e-4, or run `nndoctor lr-find EXP`.",
        ),
    ),
    CodeInfo(
        code="lr.start-far-from-working-range",
        severity="warning",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Start with Adam, lr 3e-4 (the guide's default).",
            "Run `nndoctor lr-find EXP` to measure a good lr for this model.",
        ),
    ),
    CodeInfo(
        code="lr.too-high",
        severity="warning",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Lower the learning rate of {optimizer} 10-100x (from {lr} to {suggest_low}-{suggest_high}) and"
            " rerun; for {optimizer_class}, {default_hint}.",
            "If a large rate is intended, add a warm-up (torch.optim.lr_scheduler.LinearLR) and clip "
            "gradients with torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before "
            "{optimizer}.step().",
            "Run a short learning-rate range test (exponential sweep over ~100 steps) and pick a rate about"
            " 10x below the one where the smoothed loss starts to rise.",
        ),
    ),
    CodeInfo(
        code="lr.too-low",
        severity="warning",
        step="tune",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Raise the learning rate of {optimizer} 10-100x (from {lr} to {suggest_low}-{suggest_high}); "
            "for {optimizer_class}, {default_hint}.",
            "Check that no scheduler or manual decay shrinks the rate before training starts (print "
            "{optimizer}.param_groups[0]['lr'] at the first steps).",
            "Run a short learning-rate range test to find the largest rate at which the loss still falls.",
        ),
    ),
    CodeInfo(
        code="lr.tuned-configuration",
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
