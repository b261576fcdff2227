"""Finding codes of the ``fit`` category: underfitting, overfitting, distribution shift, validation overfitting."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="fit.avoidable-bias",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Make the model bigger (more layers or units).",
            "Reduce regularisation (weight decay, dropout).",
            "Do error analysis on the training set: which classes or slices the model cannot fit.",
            "Move to an architecture closer to the state of the art for this input type.",
            "Tune hyperparameters (learning rate first), then add features.",
        ),
    ),
    CodeInfo(
        code="fit.distribution-shift",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Do error analysis on test-val: find the error types much worse on test-val than on train-val.",
            "Collect more training data like those test-val examples.",
            "Synthesise such data (augmentation that mimics the target distribution).",
            "Apply domain adaptation.",
        ),
    ),
    CodeInfo(
        code="fit.model-at-chance",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "The labels are learnable from the inputs, so look at the model and its training: the learning "
            "rate (run `nndoctor lr-find`), the initialisation, the output layer and the loss.",
            "Overfit a single batch (`nndoctor overfit`) to prove the model can learn at all.",
        ),
    ),
    CodeInfo(
        code="fit.no-better-than-constant",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Run `nndoctor overfit EXP`: a model that cannot fit one batch has a bug.",
            "Check labels and inputs are paired correctly (labels category).",
        ),
    ),
    CodeInfo(
        code="fit.overfitting",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Get more training data (or more varied data) - the most reliable fix for variance.",
            "Add normalisation layers (BatchNorm/LayerNorm) and data augmentation.",
            "Add regularisation: dropout, or weight decay (e.g. AdamW(weight_decay=1e-2)).",
            "Keep the checkpoint of the best validation loss (step {best_step}) rather than the last one.",
        ),
    ),
    CodeInfo(
        code="fit.slice-worse-on-test-val",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Collect or synthesise more training examples like test-val slice {slice}.",
            "Inspect the test-val examples of slice {slice}: what differs from the training ones?",
        ),
    ),
    CodeInfo(
        code="fit.start-architecture-for-input",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Try nndoctor.start.baseline(batch_inputs, outputs) ({suggested_first_model}) and compare with "
            "`nndoctor baseline EXP`.",
        ),
    ),
    CodeInfo(
        code="fit.start-large-model",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Start from nndoctor.start.baseline(...) and grow it step by step.",
        ),
    ),
    CodeInfo(
        code="fit.start-no-validation",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Hold out a validation split from the training distribution: Experiment(train_val=...).",
        ),
    ),
    CodeInfo(
        code="fit.start-simple-baseline-better",
        severity="info",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Start from nndoctor.start.baseline(...) and add complexity one step at a time.",
        ),
    ),
    CodeInfo(
        code="fit.underfitting",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Use a bigger model: more units per layer or more layers (the model cannot fit the data).",
            "Reduce regularisation (dropout, weight decay) if there is any.",
            "Check that the inputs carry the information needed: look at the examples the model gets wrong.",
            "Then tune hyperparameters (learning rate, schedule) or try an architecture closer to the state"
            " of the art for this kind of data.",
        ),
    ),
    CodeInfo(
        code="fit.validation-overfitting",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Collect or re-draw the test-val set: repeated model selection on it has overfit it.",
        ),
    ),
    CodeInfo(
        code="fit.variance",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Add more training data (or collect more of the classes that fail).",
            "Add normalisation layers (BatchNorm/LayerNorm).",
            "Add data augmentation.",
            "Add regularisation: dropout, weight decay (L2).",
            "Do error analysis on train-val, then revisit the architecture and tune hyperparameters.",
        ),
    ),
    CodeInfo(
        code="fit.worse-than-linear-baseline",
        severity="warning",
        step="evaluate",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Run `nndoctor overfit EXP` and `nndoctor lr-find EXP` to find the cause.",
            "Start from the guide's first model ({start_simple_model}) and add complexity one step at a "
            "time.",
        ),
    ),
)
