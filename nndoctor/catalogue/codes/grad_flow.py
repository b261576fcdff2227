"""Finding codes of the ``grad-flow`` category: parameters never get a gradient or are never updated."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="grad-flow.all-gradients-zero",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Remove non-differentiable steps between the model and the loss (round(), argmax(), "
            "thresholding, comparisons); use them for metrics only.",
            "For a binary output with one unit use a sigmoid (or BCEWithLogitsLoss), not softmax over that "
            "single unit, which is always 1.",
        ),
    ),
    CodeInfo(
        code="grad-flow.crash-backward-twice",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix}",
            "Log running losses with loss.item(), never by keeping the loss tensors.",
        ),
    ),
    CodeInfo(
        code="grad-flow.crash-empty-parameter-list",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix}",
            "Check len(list(model.parameters())) > 0 before building the optimizer.",
        ),
    ),
    CodeInfo(
        code="grad-flow.crash-inplace-modified",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix}",
            "To find the op, run one step under torch.autograd.set_detect_anomaly(True).",
        ),
    ),
    CodeInfo(
        code="grad-flow.crash-loss-without-grad",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix}",
            "Check that some parameter has requires_grad=True and that the optimizer holds them.",
        ),
    ),
    CodeInfo(
        code="grad-flow.frozen-middle-layers",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Unfreeze {layers} (requires_grad_(True)) and include them in the optimizer, unless freezing "
            "them was intended.",
        ),
    ),
    CodeInfo(
        code="grad-flow.frozen-output-layer",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Unfreeze {layer}: {layer}.requires_grad_(True) and include it in the optimizer.",
            "To fine-tune, freeze the backbone and train the head, not the other way round.",
        ),
    ),
    CodeInfo(
        code="grad-flow.loss-detached",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Compute the loss from the model output with torch operations only: no .item(), .detach(), "
            ".data, .numpy() or torch.tensor(..., requires_grad=True) between the model and loss.backward()"
            " ({cause}).",
            "Check with `print(loss.grad_fn)` that the loss is connected to the model (it must not be None,"
            " and loss.requires_grad must not come from a new leaf).",
        ),
    ),
    CodeInfo(
        code="grad-flow.no-gradient",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Make sure the output of {modules} reaches the loss through differentiable torch operations: "
            "remove .detach(), .data, .item(), .numpy()/torch.tensor() round trips and torch.no_grad() from"
            " the forward path ({cause}).",
            "If the branch is not meant to be trained, freeze it (requires_grad_(False)) and leave its "
            "parameters out of the optimizer.",
        ),
    ),
    CodeInfo(
        code="grad-flow.optimizer-frozen-params",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Build {optimizer} over the parameters you mean to train: torch.optim.X([p for p in "
            "model.parameters() if p.requires_grad], ...) after freezing (for fine-tuning: the new head's "
            "parameters).",
            "Unfreeze the layers you mean to train ({modules}) with requires_grad_(True); to fine-tune, "
            "freeze only the backbone (for p in model.backbone.parameters(): p.requires_grad = False).",
        ),
    ),
    CodeInfo(
        code="grad-flow.optimizer-wrong-params",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Build the optimizer over the parameters of the model you train: "
            "torch.optim.X({model}.parameters(), ...), after the model is created and moved.",
            "Do not re-create or copy.deepcopy() the model after building the optimizer.",
        ),
    ),
    CodeInfo(
        code="grad-flow.overfit-batch-no-gradient",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Look for .detach(), .item(), torch.no_grad() or .data between these layers and the loss.",
            "Check requires_grad and that the optimizer holds them.",
        ),
    ),
    CodeInfo(
        code="grad-flow.params-not-in-optimizer",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Add {modules} to the optimizer: build it over model.parameters() after every layer exists, or "
            "optimizer.add_param_group({{'params': ...}}).",
            "If they are meant to stay fixed, freeze them with requires_grad_(False) to save compute.",
        ),
    ),
    CodeInfo(
        code="grad-flow.params-not-updated",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Give {optimizer} a positive learning rate (lr={lr}); a schedule must not set it to 0.",
            "Check that {optimizer} holds the parameters the loss is computed from.",
        ),
    ),
    CodeInfo(
        code="grad-flow.step-never-called",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Call optimizer.step() after loss.backward() in every training iteration (scheduler.step() does"
            " not update the weights).",
            "Check the condition guarding optimizer.step() (e.g. gradient accumulation) is ever true.",
        ),
    ),
)
