"""Finding codes of the ``labels`` category: labels corrupted, shuffled apart from inputs, noisy, or not learnable."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="labels.changed-between-epochs",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Shuffle and index inputs and labels together (one permutation, one index in __getitem__), e.g."
            " TensorDataset(x, y) with DataLoader(shuffle=True).",
            "Check any per-epoch relabelling or label-noise code in the dataset.",
        ),
    ),
    CodeInfo(
        code="labels.noisy",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Review the {n_flagged} flagged examples ({which}) and fix or drop the wrong labels.",
            "If the labels come from a join or a shuffle, check that inputs and labels stay aligned.",
            "Train with a noise-robust loss (label smoothing) while the labels are being cleaned.",
        ),
    ),
    CodeInfo(
        code="labels.overfit-batch-conflicting-labels",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check that inputs and labels are shuffled, cropped and indexed together in the dataset / "
            "collate code.",
            "Remove or relabel duplicated examples.",
        ),
    ),
    CodeInfo(
        code="labels.single-class",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check the label preprocessing: every sampled training target is class {label} ({counts}); "
            "integer class ids must not be scaled like pixels ((y / 255).long() is 0 for every id below "
            "255), and masks read as images need their class ids back (e.g. (mask * 255).round().long()).",
            "Print np.unique(y, return_counts=True) right before training and again on one batch from the "
            "DataLoader, to find the step that collapses the labels.",
        ),
    ),
    CodeInfo(
        code="labels.unrelated-to-inputs",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check that inputs and labels are indexed together: one permutation for both (idx = "
            "torch.randperm(n); x, y = x[idx], y[idx]), never a shuffle of one of them.",
            "Check how labels are read: the right column or file, the label-name -> index mapping, the "
            "order after filtering or sorting the examples.",
            "Look at a few examples next to their labels: if a person cannot predict the label, neither can"
            " the model.",
        ),
    ),
)
