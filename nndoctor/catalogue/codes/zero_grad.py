"""Finding codes of the ``zero-grad`` category: gradients accumulate across steps."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="zero-grad.cleared-before-step",
        severity="error",
        step="implement & debug",
        title="Gradients cleared between backward() and step()",
        meaning=(
            "zero_grad() runs after loss.backward() and before optimizer.step(), so the step sees no "
            "gradient (or zero gradients)."
        ),
        why=(
            "The optimizer never moves the weights (or only by weight decay and momentum): the model does "
            "not learn."
        ),
        detection=(
            "Between two steps of an optimizer, every gradient contribution of its parameters is recorded; "
            "when the gradients are empty or zero at the step although backward ran, they were cleared in "
            "between."
        ),
        fixes=(
            "Move {optimizer}.zero_grad() before loss.backward() (or after {optimizer}.step()); the order "
            "is zero_grad(), backward(), step().",
        ),
        wrong="""
loss.backward()
opt.zero_grad()
opt.step()
""",
        right="""
opt.zero_grad()
loss.backward()
opt.step()
""",
    ),
    CodeInfo(
        code="zero-grad.gradients-discarded",
        severity="warning",
        step="implement & debug",
        title="Gradients cleared before a step used them",
        meaning=(
            "Several backward() passes run between two optimizer steps, but zero_grad() runs before each "
            "of them: every gradient but the last one before the step is computed and thrown away "
            "(zero_grad() inside a gradient-accumulation loop, or step() indented out of the batch loop)."
        ),
        why=(
            "Only one micro-batch in k (or one batch per epoch) trains the model: the update is noisy and "
            "k times rarer than meant, the compute of the other passes is wasted, and a loss divided by k "
            "for accumulation makes each step k times too small."
        ),
        detection=(
            "Between two steps of an optimizer (every backward observed), a backward discards when every "
            "parameter holding a non-zero gradient from an earlier backward of the window finds its .grad "
            "None or zero and was not changed in place since (a hand-written update such as SAM's uses "
            "it). Windows in which another optimizer stepped between two backwards are skipped (GANs), and "
            "so are windows with a forward on inputs that require a gradient (adversarial training, saliency). "
            "Reported when >= 3 windows discard, in at least half of the windows with several backwards, "
            "and >= 2/3 of their backward passes were discarded. LBFGS closures run inside step() and are "
            "not judged; accumulation done right never clears inside a window."
        ),
        fixes=(
            "Call {optimizer}.zero_grad() right after {optimizer}.step() (inside the `if (i + 1) % k == 0:` "
            "branch), not before every backward().",
            "If a step per batch was meant, indent {optimizer}.step() into the batch loop, after "
            "loss.backward().",
        ),
        wrong="""
for i, (x, y) in enumerate(loader):
    opt.zero_grad()
    (loss_fn(model(x), y) / k).backward()
    if (i + 1) % k == 0:
        opt.step()
""",
        right="""
for i, (x, y) in enumerate(loader):
    (loss_fn(model(x), y) / k).backward()
    if (i + 1) % k == 0:
        opt.step()
        opt.zero_grad()
""",
    ),
    CodeInfo(
        code="zero-grad.manual-update-not-cleared",
        severity="error",
        step="implement & debug",
        title="Weights updated by hand while their gradients are never cleared",
        meaning=(
            "The script updates the weights itself after loss.backward() (w -= lr * w.grad, no optimizer) "
            "but never clears .grad: backward() adds to it, so each update applies the sum of every gradient "
            "computed so far."
        ),
        why=(
            "The update grows with time and points in a stale direction: the loss oscillates or diverges, or "
            "the model learns far worse than it should."
        ),
        detection=(
            "While no optimizer steps, at every backward() (before it adds its gradient) the first entries of "
            "up to 16 leaf tensors of the loss's graph are read, with whether their .grad is None or zero. A "
            "leaf whose values changed since the previous backward was updated: when no backward since its "
            "previous update found its .grad cleared, that update used carried gradients. Reported when >= 3 "
            "updates did, in at least half of the updates observed; gradient accumulation (clearing after "
            "every k-th update) and leaves never updated stay quiet."
        ),
        fixes=(
            "Clear the gradients after each hand-written update: `w.grad.zero_()` (or `w.grad = None`, "
            "`model.zero_grad()`) for {params}, inside the same loop iteration.",
            "Or let an optimizer do the update: opt = torch.optim.SGD(params, lr=lr); then opt.zero_grad(), "
            "loss.backward(), opt.step() every iteration.",
        ),
        wrong="""
loss.backward()
with torch.no_grad():
    w -= lr * w.grad
    b -= lr * b.grad
""",
        right="""
loss.backward()
with torch.no_grad():
    w -= lr * w.grad
    b -= lr * b.grad
w.grad.zero_()
b.grad.zero_()
""",
    ),
    CodeInfo(
        code="zero-grad.not-cleared",
        severity="error",
        step="implement & debug",
        title="Gradients are never cleared between optimizer steps",
        meaning=(
            "zero_grad() is missing: each optimizer step applies the sum of every gradient computed so far, "
            "not the current one."
        ),
        why=(
            "The effective step grows with time and points in a stale direction: the loss oscillates or "
            "diverges, or the model learns far worse than it should."
        ),
        detection=(
            "Works with every clearing style (optimizer.zero_grad(), model.zero_grad(), set_to_none, `p.grad"
            " = None`, `p.grad.zero_()`): a parameter's grad hook runs before the new contribution is added,"
            " so a cleared gradient shows up as a contribution that finds `.grad` None or zero. When none "
            "does between two steps, the previous step's gradient was carried over. Only complete windows "
            "(every backward observed) count; gradient accumulation and GANs clear inside the window and "
            "stay quiet."
        ),
        fixes=(
            "Call {optimizer}.zero_grad() once per step: before loss.backward() or right after "
            "{optimizer}.step(); with {optimizer}.step(closure), as the closure's first line (parameters not "
            "cleared: {params}).",
            "If you accumulate gradients on purpose, step and zero_grad together every k backward calls (if"
            " (i + 1) % k == 0: {optimizer}.step(); {optimizer}.zero_grad()) and divide the loss by k.",
        ),
        wrong="""
for x, y in loader:
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
""",
        right="""
for x, y in loader:
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
""",
    ),
)
