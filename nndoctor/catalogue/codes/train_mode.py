"""Finding codes of the ``train-mode`` category: training in eval mode, or evaluating in train mode."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="train-mode.crash-batch-of-one-in-train-mode",
        severity="error",
        step="implement & debug",
        title="Crash: BatchNorm got one sample while evaluating in train mode",
        meaning=(
            "A forward with a single sample reached BatchNorm in training mode during evaluation or "
            "inference: the model was not switched to eval mode."
        ),
        why=(
            "The crash hides the real bug: evaluation in train mode, which also corrupts batch-norm's "
            "running statistics."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Expected more than 1 value per channel when training` outside a training step), finds "
            "the module that raised from the module stack and the failing call's inputs, and names the "
            "layer, the dtypes or devices and the change to make. The original traceback is printed "
            "afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Switch back with model.train() before the next training step.",
        ),
        wrong="""
pred = model(x[None])          # one sample, model still in train mode
""",
        right="""
model.eval()
with torch.no_grad():
    pred = model(x[None])
model.train()
""",
    ),
    CodeInfo(
        code="train-mode.eval-in-train-mode",
        severity="warning",
        step="implement & debug",
        title="Evaluating while the model is in train mode",
        meaning=(
            "Evaluation passes (forwards under torch.no_grad() or inference_mode, not followed by a "
            "backward) run while the trained model's dropout / batch-norm modules are in train mode."
        ),
        why=(
            "Dropout randomly drops units at evaluation and batch-norm's running statistics absorb the "
            "evaluation data: metrics are noisy and pessimistic, and the model is silently changed by "
            "evaluating it."
        ),
        detection=(
            "Forward passes without gradient of a model whose parameters are in an optimizer are checked for"
            " dropout / batch-norm modules in train mode. A teacher, EMA or target network evaluated under "
            "no_grad is not the trained model and stays quiet; so is a GAN's generator (a model whose output"
            " another trained model takes in training, beside inputs no model made: the real data), which "
            "is sampled in train mode on purpose."
        ),
        fixes=(
            "Call {model}.eval() before evaluating (under torch.no_grad()) and {model}.train() before "
            "training resumes.",
            "Batch-norm running statistics were updated by the evaluation data: re-evaluate after the fix.",
        ),
        wrong="""
with torch.no_grad():
    val_loss = loss_fn(model(x_val), y_val)
""",
        right="""
model.eval()
with torch.no_grad():
    val_loss = loss_fn(model(x_val), y_val)
model.train()
""",
    ),
    CodeInfo(
        code="train-mode.training-in-eval-mode",
        severity="warning",
        step="implement & debug",
        title="Training while the model is in eval mode",
        meaning=(
            "Optimizer steps are taken while the trained model is in eval mode, typically after "
            "`model.eval()` for validation without `model.train()` again."
        ),
        why=(
            "Dropout is off and batch-norm normalises with its running statistics instead of the batch's, as"
            " at inference: regularisation is lost and batch-norm statistics stop adapting."
        ),
        detection=(
            "Only models whose parameters are in an optimizer count; each optimizer step checks whether "
            "their dropout / batch-norm modules are in training mode. Batch-norm or dropout inside a frozen "
            "part (a frozen backbone kept in eval) stays quiet."
        ),
        fixes=(
            "Call {model}.train() at the start of every training epoch (after validation, which calls "
            "{model}.eval()); it was last in train mode {since}.",
            "Keep the switch next to the loops: model.train() before the training loop, model.eval() before"
            " the validation loop.",
            "If a frozen part should stay in eval mode, override train() to put only that part back in eval"
            " and freeze its parameters (requires_grad_(False)).",
        ),
        wrong="""
for epoch in range(E):
    for x, y in train_loader:
        ...
    model.eval()
    validate(model)
""",
        right="""
for epoch in range(E):
    model.train()
    for x, y in train_loader:
        ...
    model.eval()
    validate(model)
""",
    ),
)
