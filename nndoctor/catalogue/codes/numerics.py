"""Finding codes of the ``numerics`` category: NaN/Inf in loss, activations, gradients or weights."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="numerics.nonfinite-forward",
        severity="error",
        step="implement & debug",
        title="NaN/Inf made by an operation in the forward pass",
        meaning=(
            "A forward operation turned finite inputs into NaN/Inf: log of 0, division by 0, exp overflow, "
            "sqrt of a negative number, and so on."
        ),
        why="The loss and then every weight become NaN; training is lost from that step on.",
        detection=(
            "The loss is tested for NaN/Inf on every backward on CPU (on an accelerator on sampled steps, "
            "with a device-side flag read every 16 backwards). When a non-finite value appears, the loss's "
            "autograd graph is walked once from the leaves and the tensors its nodes saved are read, to find"
            " the first node whose output is non-finite while its inputs are finite. One finding per root "
            "cause; the cascade is not reported. The finding names the op, the user's line and the values "
            "that broke it."
        ),
        fixes=(
            "{op_fix} ({site}).",
            "Check the values that reach it: print x.min(), x.max() before the {op} in {module}.",
            "To stop at the first NaN while debugging: assert torch.isfinite(loss), then rerun nndoctor.",
        ),
        wrong="""
loss = -(y * torch.log(torch.sigmoid(z))).mean()
""",
        right="""
loss = F.binary_cross_entropy_with_logits(z, y)
""",
    ),
    CodeInfo(
        code="numerics.nonfinite-gradient",
        severity="error",
        step="implement & debug",
        title="NaN/Inf in the gradients",
        meaning=(
            "The gradients became non-finite while the forward values were finite: e.g. sqrt or norm at 0, "
            "or an overflow in the backward pass."
        ),
        why="The next update writes NaN into the weights.",
        detection=(
            "The loss is tested for NaN/Inf on every backward on CPU (on an accelerator on sampled steps, "
            "with a device-side flag read every 16 backwards). When a non-finite value appears, the loss's "
            "autograd graph is walked once from the leaves and the tensors its nodes saved are read, to find"
            " the first node whose output is non-finite while its inputs are finite. One finding per root "
            "cause; the cascade is not reported. On sampled steps the gradients are checked; the first "
            "parameters with non-finite gradients are named."
        ),
        fixes=(
            "Find the op with an infinite derivative{hint}: sqrt(x), x ** 0.5 or x.norm() at 0 need an "
            "epsilon (torch.sqrt(x + 1e-8)); log/div inside torch.where still get gradients from the masked"
            " branch: clamp their input before torch.where.",
            "Add torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); it does not fix NaN, only spikes.",
        ),
        wrong="""
d = (a - b).pow(2).sum(1).sqrt()      # gradient is inf where a == b
""",
        right="""
d = ((a - b).pow(2).sum(1) + 1e-12).sqrt()
""",
    ),
    CodeInfo(
        code="numerics.nonfinite-init",
        severity="error",
        step="implement & debug",
        title="Weights are NaN/Inf from the start",
        meaning=(
            "Some parameters are non-finite before the first update: a custom initialisation divided by 0, "
            "or a checkpoint that already held NaN."
        ),
        why="The model outputs NaN from the first forward.",
        detection=(
            "The loss is tested for NaN/Inf on every backward on CPU (on an accelerator on sampled steps, "
            "with a device-side flag read every 16 backwards). When a non-finite value appears, the loss's "
            "autograd graph is walked once from the leaves and the tensors its nodes saved are read, to find"
            " the first node whose output is non-finite while its inputs are finite. One finding per root "
            "cause; the cascade is not reported. The graph's parameter leaves are checked at the first "
            "steps, before any update."
        ),
        fixes=(
            "Initialise {param}: nn.init.kaiming_normal_(...) / nn.init.xavier_uniform_(...), or "
            "torch.randn(...) * scale instead of torch.empty(...).",
            "Check any custom weight-loading or init code that writes into {param}.",
        ),
        wrong="""
nn.init.normal_(layer.weight, std=1 / fan_in_that_is_zero)
""",
        right="""
nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
""",
    ),
    CodeInfo(
        code="numerics.nonfinite-input",
        severity="error",
        step="implement & debug",
        title="NaN/Inf came from the batch",
        meaning="The first non-finite value in the loss's graph comes from the input batch itself.",
        why="Every loss and gradient touching it becomes NaN; the data, not the model, needs fixing.",
        detection=(
            "The loss is tested for NaN/Inf on every backward on CPU (on an accelerator on sampled steps, "
            "with a device-side flag read every 16 backwards). When a non-finite value appears, the loss's "
            "autograd graph is walked once from the leaves and the tensors its nodes saved are read, to find"
            " the first node whose output is non-finite while its inputs are finite. One finding per root "
            "cause; the cascade is not reported. The leaves of the graph that hold the batch are checked "
            "first."
        ),
        fixes=(
            "Clean the data before training: find the bad entries with torch.isnan(x).any(dim=0) / "
            "~torch.isfinite(x) and drop or impute those rows or columns ({where}).",
            "Fix the preprocessing that made them (missing values read as NaN, division by a zero std, log "
            "of 0), and assert torch.isfinite(x).all() in the data pipeline.",
        ),
        wrong="""
X = torch.tensor(df.values, dtype=torch.float32)     # has NaN
""",
        right="""
X = torch.tensor(df.fillna(0).values, dtype=torch.float32)
""",
    ),
    CodeInfo(
        code="numerics.nonfinite-loss",
        severity="error",
        step="implement & debug",
        title="The loss became NaN/Inf",
        meaning=(
            "The loss itself is NaN/Inf, made by the loss computation (e.g. log of a probability of 0), or "
            "it was NaN at least once and then finite again (a skipped step or a recovered value)."
        ),
        why=(
            "A NaN loss poisons the weights at the next update; a transient one is usually a sign of a "
            "numerically unsafe loss."
        ),
        detection=(
            "The loss is tested for NaN/Inf on every backward on CPU (on an accelerator on sampled steps, "
            "with a device-side flag read every 16 backwards). When a non-finite value appears, the loss's "
            "autograd graph is walked once from the leaves and the tensors its nodes saved are read, to find"
            " the first node whose output is non-finite while its inputs are finite. One finding per root "
            "cause; the cascade is not reported. When the trace ends in the loss function itself, this code "
            "is used; a NaN seen late by the device flag is reported with its first step from the loss "
            "history."
        ),
        fixes=(
            "{cause_fix}",
            "Print the loss terms separately to find the one that turns non-finite (assert "
            "torch.isfinite(term)).",
        ),
        wrong="""
loss = F.nll_loss(torch.log(F.softmax(z, 1)), y)
""",
        right="""
loss = F.cross_entropy(z, y)          # log_softmax inside, stable
""",
    ),
    CodeInfo(
        code="numerics.nonfinite-update",
        severity="error",
        step="implement & debug",
        title="An optimizer update made the weights NaN/Inf",
        meaning=(
            "Parameters were finite before an optimizer step and non-finite after it: the update itself "
            "overflowed (huge learning rate, exploding gradients)."
        ),
        why="From the next forward on, every output is NaN.",
        detection=(
            "The loss is tested for NaN/Inf on every backward on CPU (on an accelerator on sampled steps, "
            "with a device-side flag read every 16 backwards). When a non-finite value appears, the loss's "
            "autograd graph is walked once from the leaves and the tensors its nodes saved are read, to find"
            " the first node whose output is non-finite while its inputs are finite. One finding per root "
            "cause; the cascade is not reported. On sampled steps parameters are compared before and after "
            "the update."
        ),
        fixes=(
            "{cause_fix}",
            "Add torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before optimizer.step().",
            "Stop at the first non-finite loss (assert torch.isfinite(loss)) and rerun nndoctor to see the "
            "step.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=100.0)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.01)
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)   # before opt.step()
""",
    ),
    CodeInfo(
        code="numerics.overfit-batch-non-finite-loss",
        severity="warning",
        step="implement & debug",
        title="The loss became NaN/Inf while overfitting one batch",
        meaning=(
            "A likely cause named by `nndoctor overfit` when the curve explodes: the loss on the fixed batch"
            " became non-finite without a numerics check pointing at an op."
        ),
        why="A loss that becomes NaN on one batch usually comes from an unguarded exp, log or division.",
        detection=(
            "`nndoctor overfit` trains on one fixed batch; when the loss explodes to a non-finite value and "
            "no numerics finding was made, this candidate is ranked higher when the updates were small (not "
            "a learning-rate problem)."
        ),
        fixes=(
            "Look for exp, log or division without a guard in the model and the loss (use log_softmax / "
            "logsumexp / BCEWithLogitsLoss, add eps to divisions).",
            "Run `nndoctor run` on the training script: it locates the first NaN/Inf.",
        ),
        wrong="""
loss = -torch.log(p[range(n), y]).mean()
""",
        right="""
loss = F.nll_loss(torch.log(p.clamp_min(1e-12)), y)   # or cross_entropy on logits
""",
    ),
)
