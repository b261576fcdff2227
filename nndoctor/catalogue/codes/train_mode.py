"""Finding codes of the ``train-mode`` category: training in eval mode, or evaluating in train mode."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="train-mode.batchnorm-batch-of-one",
        severity="warning",
        step="implement & debug",
        title="Batch norm trained on batches of one sample",
        meaning=(
            "A batch-norm layer in training mode normalises batches that hold a single sample (a per-sample "
            "loop, `batch_size=1`, `x.unsqueeze(0)`): with spatial or sequence dimensions torch does not "
            "complain, but the batch statistics are that one sample's own."
        ),
        why=(
            "Each sample's per-channel mean and scale are removed from its features (what tells samples apart "
            "is partly erased), the gradients are noisy, and the running statistics used in eval mode average "
            "single samples' statistics, which training never normalised with: eval-mode accuracy can fall to "
            "chance while training looks fine."
        ),
        detection=(
            "On sampled training forwards (training mode, gradients on) each batch norm's input batch size is "
            "counted. At the end of the run a batch norm that saw at least 5 such forwards, at least 80% of "
            "them with one sample, is reported. An odd last batch of one, single-sample inference in eval mode "
            "and larger batches stay quiet."
        ),
        fixes=(
            "Train with batches of 16 or more samples (DataLoader(batch_size=...)); accumulate gradients if "
            "memory is short.",
            "For batch size 1, replace {layer} by a normalisation that does not use the batch: "
            "nn.GroupNorm, nn.LayerNorm or nn.InstanceNorm.",
        ),
        wrong="""
for x, y in zip(images, labels):                 # one image per step
    loss = F.cross_entropy(model(x.unsqueeze(0)), y.unsqueeze(0))   # model has nn.BatchNorm2d
""",
        right="""
for xb, yb in DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True):
    loss = F.cross_entropy(model(xb), yb)
""",
    ),
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
            "is sampled in train mode on purpose. A model whose own flag says eval while every one of its "
            "submodules is still in train mode had `model.training = False` assigned (the attribute does "
            "not reach the submodules): its dropout / batch-norm layers count as in train mode; layers "
            "switched one by one on purpose (MC dropout after eval()) leave the plain layers in eval and "
            "stay quiet."
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
        code="train-mode.functional-dropout-in-eval",
        severity="warning",
        step="implement & debug",
        title="Functional dropout stays on in eval mode",
        meaning=(
            "`F.dropout(x, p)` inside a module's forward runs with `training=True` (its default, or "
            "hard-coded) while the module is in eval mode: `model.eval()` does not reach a functional call, "
            "so every evaluation or inference pass still drops units at random."
        ),
        why=(
            "Evaluation is stochastic and pessimistic: validation loss and accuracy are noisy and worse than "
            "the model really is, and early stopping, model selection and the train/validation gap read the "
            "noise. Predictions served from the model change from call to call."
        ),
        detection=(
            "The torch function mode watches dropout calls (F.dropout, dropout1d/2d/3d, alpha_dropout) on "
            "sampled training steps and in evaluation loops. A call with p > 0 and training=True is "
            "reported when the module whose forward made the call (read from the calling frame; the root "
            "model when the call is not inside a module) is in eval mode. nn.Dropout modules follow their "
            "own mode and stay quiet, as does `F.dropout(x, p, training=self.training)`."
        ),
        fixes=(
            "Pass the module's mode at {site}: F.dropout(x, p={p}, training=self.training).",
            "Or use an nn.Dropout({p}) module, which model.eval() switches off.",
            "If dropout at inference is intended (Monte-Carlo dropout), keep it but average several passes "
            "and report the validation metric of the deterministic model separately.",
        ),
        wrong="""
def forward(self, x):
    return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5))     # training=True by default
""",
        right="""
def forward(self, x):
    return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, training=self.training))
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
            "part (a frozen backbone kept in eval) stays quiet. A model whose own flag says train while "
            "every submodule is in eval had `model.training = True` assigned after eval() (the attribute "
            "does not reach the submodules): it trains in eval mode."
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
    CodeInfo(
        code="train-mode.batchnorm-stats-frozen",
        severity="warning",
        step="implement & debug",
        title="Batch-norm running statistics never move, and eval mode uses them",
        meaning=(
            "A batch norm tracked many training batches but its running mean is still exactly 0 and its running "
            "variance exactly 1 (momentum=0, or a Keras momentum translated the wrong way), and the model is "
            "evaluated in eval mode, which normalises with those statistics."
        ),
        why=(
            "Evaluation normalises the features with a mean and variance training never had, so the evaluated "
            "model scores far below the trained one."
        ),
        detection=(
            "Sampled training forwards read how far each batch norm's input is from mean 0 / variance 1 "
            "(median over channels of |mean| / std and of the std ratio). When a root model is evaluated in "
            "eval mode, a batch norm that tracked >= 10 batches with its running mean exactly 0 and variance "
            "exactly 1 is stale: a warning when its training inputs were >= 0.5 std off 0 or >= 2x off unit "
            "variance, or when >= 3 batch norms are stale; info otherwise."
        ),
        fixes=(
            "Give the batch norms of {model} a momentum in (0, 1] (PyTorch's default 0.1; PyTorch's momentum is "
            "1 - Keras' momentum) or momentum=None for a cumulative average; stale: {layers}.",
            "Or re-estimate the statistics before evaluating: run a few training batches through the model in "
            "train mode under torch.no_grad() (torch.optim.swa_utils.update_bn does this).",
        ),
        wrong="""
nn.BatchNorm1d(64, momentum=0.0)   # running statistics never updated
""",
        right="""
nn.BatchNorm1d(64)                  # momentum=0.1
""",
    ),
    CodeInfo(
        code="train-mode.copy-batchnorm-stats-never-updated",
        severity="warning",
        step="implement & debug",
        title="Averaged copy evaluated with batch-norm statistics never updated",
        meaning=(
            "An EMA or averaged copy of the model follows its weights, but its batch-norm running "
            "statistics were never updated: it is evaluated in eval mode with the initial mean 0 and "
            "variance 1."
        ),
        why=(
            "In eval mode a batch norm normalises with its running statistics. The copy's weights were "
            "learned with the real statistics of the activations, so with mean 0 / variance 1 every "
            "normalised layer is off and the copy's evaluations are much worse than the model it averages."
        ),
        detection=(
            "A model run without gradient in eval mode, whose parameters are in no optimizer, with the "
            "same parameter shapes as a model an optimizer trains, whose weights are close to that model's "
            "current ones (cosine >= 0.9 over a fingerprint of up to 16 tensors x 64 values) and not equal "
            "to its initial ones, and with a batch norm whose buffers are untouched (num_batches_tracked "
            "0, running_mean exactly 0, running_var exactly 1) while the trained model's matching batch "
            "norm has tracked batches. Reported at the end of the run: a warning when the trained model's "
            "statistics at those batch norms are far from mean 0 / variance 1 (median over channels of "
            "|mean|/std >= 0.5, or of the std ratio >= 2, or 3 or more such batch norms, whose errors "
            "compound), info when they are close (the copy is then only slightly off)."
        ),
        fixes=(
            "Copy or average the buffers too: after each update, "
            "`for eb, b in zip({copy}.buffers(), {model}.buffers()): eb.copy_(b)`.",
            "Or use torch.optim.swa_utils.AveragedModel, which keeps the buffers in sync with the model "
            "(or recompute them with `torch.optim.swa_utils.update_bn(train_loader, {copy})` before "
            "evaluating).",
        ),
        wrong="""
with torch.no_grad():
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(0.99).add_(p, alpha=0.01)     # BatchNorm running stats of ema never change
ema.eval(); evaluate(ema)
""",
        right="""
with torch.no_grad():
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(0.99).add_(p, alpha=0.01)
    for eb, b in zip(ema.buffers(), model.buffers()):
        eb.copy_(b)
ema.eval(); evaluate(ema)
""",
    ),
)
