"""Finding codes of the ``numerics`` category: NaN/Inf in loss, activations, gradients or weights."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="numerics.nonfinite-forward",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{op_fix} ({site}).",
            "Check the values that reach it: print x.min(), x.max() before the {op} in {module}.",
            "To stop at the first NaN while debugging: assert torch.isfinite(loss), then rerun nndoctor.",
        ),
    ),
    CodeInfo(
        code="numerics.nonfinite-gradient",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Find the op with an infinite derivative{hint}: sqrt(x), x ** 0.5 or x.norm() at 0 need an "
            "epsilon (torch.sqrt(x + 1e-8)); log/div inside torch.where still get gradients from the masked"
            " branch: clamp their input before torch.where.",
            "Add torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); it does not fix NaN, only spikes.",
        ),
    ),
    CodeInfo(
        code="numerics.nonfinite-init",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Initialise {param}: nn.init.kaiming_normal_(...) / nn.init.xavier_uniform_(...), or "
            "torch.randn(...) * scale instead of torch.empty(...).",
            "Check any custom weight-loading or init code that writes into {param}.",
        ),
    ),
    CodeInfo(
        code="numerics.nonfinite-input",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Clean the data before training: find the bad entries with torch.isnan(x).any(dim=0) / "
            "~torch.isfinite(x) and drop or impute those rows or columns ({where}).",
            "Fix the preprocessing that made them (missing values read as NaN, division by a zero std, log "
            "of 0), and assert torch.isfinite(x).all() in the data pipeline.",
        ),
    ),
    CodeInfo(
        code="numerics.nonfinite-loss",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{cause_fix}",
            "Print the loss terms separately to find the one that turns non-finite (assert "
            "torch.isfinite(term)).",
        ),
    ),
    CodeInfo(
        code="numerics.nonfinite-update",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{cause_fix}",
            "Add torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before optimizer.step().",
            "Stop at the first non-finite loss (assert torch.isfinite(loss)) and rerun nndoctor to see the "
            "step.",
        ),
    ),
    CodeInfo(
        code="numerics.overfit-batch-non-finite-loss",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Look for exp, log or division without a guard in the model and the loss (use log_softmax / "
            "logsumexp / BCEWithLogitsLoss, add eps to divisions).",
            "Run `nndoctor run` on the training script: it locates the first NaN/Inf.",
        ),
    ),
)
