"""Finding codes of the ``data`` category: class imbalance, leakage, too little data, input distribution shift."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="data.class-imbalance",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check the per-class error: if the minority classes ({minority}) fail, re-weight the loss "
            "(CrossEntropyLoss(weight=...)) or over-sample them (WeightedRandomSampler).",
            "Collect more examples of the minority classes.",
            "Report a metric that is not dominated by the majority class (balanced accuracy, per-class F1).",
        ),
    ),
    CodeInfo(
        code="data.distribution-shift",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Look at the features that differ most ({top_features}): is the test-val data preprocessed the "
            "same way?",
            "Collect or synthesise training data that looks like test-val (augment towards those "
            "differences).",
            "Do error analysis on test-val: which classes or slices suffer from the shift.",
        ),
    ),
    CodeInfo(
        code="data.observed-sample",
        severity="info",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
    ),
    CodeInfo(
        code="data.start-class-imbalance",
        severity="warning",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use class weights in the loss (CrossEntropyLoss(weight=...)) or a WeightedRandomSampler.",
            "Report per-class metrics, not only accuracy.",
        ),
    ),
    CodeInfo(
        code="data.start-fewer-classes",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use nndoctor.start.simplify(dataset, classes=10) for the first versions.",
        ),
    ),
    CodeInfo(
        code="data.start-simplify",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use nndoctor.start.simplify(dataset, max_examples=10_000) for the first versions.",
        ),
    ),
    CodeInfo(
        code="data.too-little-data",
        severity="warning",
        step="improve",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Collect more training data: validation error still falls steeply from {last_fraction:.0%} to "
            "100% of the training set ({errors}).",
            "Until then, augment the data and regularise.",
        ),
    ),
    CodeInfo(
        code="data.train-test-leakage",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Remove the {n_shared} {split} examples that also occur in the training set (indices in the "
            "evidence), or split by a group key (user, patient, source file) before shuffling.",
            "Re-measure the {split} error after de-duplication: the current figure is optimistic.",
        ),
    ),
    CodeInfo(
        code="data.unseen-classes",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Shuffle before splitting, or split per class: sklearn.model_selection.train_test_split(X, y, "
            "stratify=y) or StratifiedKFold.",
            "If the split is meant to be by class (open-set evaluation), the error on classes {classes} "
            "cannot fall with this model: evaluate them separately.",
        ),
    ),
    CodeInfo(
        code="data.unshuffled-batches",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Shuffle the training data every epoch: DataLoader(train_set, batch_size=..., shuffle=True), or"
            " index with torch.randperm(n) each epoch when slicing tensors yourself.",
            "Sorted batches make each step pull the model towards one class; shuffling usually fixes both a"
            " high loss and a loss that jumps at class boundaries.",
        ),
    ),
)
