"""Finding codes of the ``grad`` category: vanishing or exploding gradients."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="grad.exploding-gradients",
        severity="warning",
        step="implement & debug",
        title="Exploding gradients",
        meaning=(
            "The gradient norms blow up: the first layers get gradients far larger than the last ones, or "
            "the total norm grows by orders of magnitude."
        ),
        why=(
            "Updates become huge, the loss spikes or becomes NaN; common in RNNs and with a too-large "
            "initialisation or learning rate."
        ),
        detection=(
            "Per-layer gradient norms on sampled steps: first/last ratio > 70, or the total norm grown >= "
            "1000x over the first sampled steps, at several sampled steps; a single extreme measurement "
            "(first-layer norm >= 1 and > 1000x the last layer's) is enough. Under an adaptive optimizer "
            "(Adam, RMSprop...), whose update does not grow with the gradient, a total norm that only grew "
            "is reported only once the loss shows harm: non-finite, 10x its first value, or, 30 losses "
            "after the growth, not clearly below the first sampled steps' loss."
        ),
        fixes=(
            "Clip the gradient norm before optimizer.step(): "
            "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).",
            "Shrink the initial weight scale ({init_hint}) or add normalisation layers so gradients stop "
            "growing towards {first_layer}.",
            "Lower the learning rate until the gradient norm stays within ~10x of its first value "
            "({first_total}).",
        ),
        wrong="""
for x, y in loader:
    opt.zero_grad(); loss_fn(rnn(x), y).backward(); opt.step()
""",
        right="""
for x, y in loader:
    opt.zero_grad(); loss_fn(rnn(x), y).backward()
    torch.nn.utils.clip_grad_norm_(rnn.parameters(), 1.0)
    opt.step()
""",
    ),
    CodeInfo(
        code="grad.overfit-batch-vanishing",
        severity="warning",
        step="implement & debug",
        title="Vanishing gradients while overfitting one batch",
        meaning=(
            "A likely cause named by `nndoctor overfit` for a plateau: the first layer's gradient is less "
            "than 1e-3 of the last layer's on the fixed batch."
        ),
        why="When the first layers get no signal the model cannot even memorise one batch.",
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; when the "
            "curve plateaus, the per-layer gradient norms are compared and this candidate is added when "
            "first/last < 1e-3."
        ),
        fixes=(
            "Use ReLU with He init (or tanh with Glorot), add normalisation layers or residual connections.",
        ),
        wrong="""
nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(32, 32), nn.Sigmoid())])
""",
        right="""
nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(32, 32), nn.ReLU())])
""",
    ),
    CodeInfo(
        code="grad.vanishing-gradients",
        severity="warning",
        step="implement & debug",
        title="Vanishing gradients",
        meaning=(
            "The gradient norms collapse towards the input: the first layers get gradients orders of "
            "magnitude smaller than the last ones."
        ),
        why=(
            "The first layers barely learn; typical of deep sigmoid/tanh stacks, a poor initialisation, or "
            "no normalisation/residual connections."
        ),
        detection=(
            "At sampled steps the norm of every parameter's gradient is taken and the weight matrices are "
            "ordered by the forward pass. Vanishing: first/last ratio < 1e-3 with a first-layer norm < 1e-4,"
            " or norms shrinking layer after layer through >= 4 weight layers, or every hidden layer's "
            "gradient < 1e-4 and < 1e-5 of its weight's norm. The symptom must hold at several sampled steps"
            " (>= 3, and most of them)."
        ),
        fixes=(
            "{activation_fix} between {first_layer} and {last_layer}, or put normalisation layers "
            "(nn.BatchNorm1d / nn.LayerNorm) between them.",
            "Initialise the weights for the activation in use ({init_hint}) so the signal keeps its scale "
            "through the {depth} weight layers.",
            "Add residual (skip) connections or use fewer layers, then check that {first_layer} gets a "
            "gradient within ~100x of {last_layer}.",
        ),
        wrong="""
layers = [nn.Linear(64, 64), nn.Sigmoid()] * 10
""",
        right="""
layers = [nn.Linear(64, 64), nn.ReLU()] * 10     # with He init, or add BatchNorm/residuals
""",
    ),
    CodeInfo(
        code="grad.exploding-through-time",
        severity="error",
        step="implement & debug",
        title="Gradients explode through time in a recurrent network without clipping",
        meaning=(
            "A recurrent weight's gradient is many times the weight itself: the gradient is a product over "
            "the sequence and grows geometrically when the recurrent matrix has a spectral radius of 1 or "
            "more (identity-initialised IRNN, ReLU RNN), and nothing clips it."
        ),
        why=(
            "The first updates are many times the size of the weights; the loss explodes a step later and "
            "looks like a too-high learning rate or a numerics bug. The remedy is clipping, not a smaller rate."
        ),
        detection=(
            "On sampled steps, at the optimizer step (after any clipping): a recurrent weight (`weight_hh` of "
            "`nn.RNN`/`nn.LSTM`/`nn.GRU` or their cells) whose gradient norm is at least 10x its own norm and "
            "at least 50 in absolute terms, all finite. Weights with a norm below 0.1 are not judged."
        ),
        fixes=(
            "Clip the gradients between backward() and {optimizer}.step(): "
            "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).",
            "Keep the recurrent weight's spectral radius below 1 (e.g. scale an identity init by 0.9-0.99, or "
            "use orthogonal init), or use an LSTM/GRU for long sequences.",
            "Shorten the sequences the gradient flows through (truncated backpropagation through time).",
        ),
        wrong="""
loss.backward()
opt.step()                                   # IRNN, no clipping
""",
        right="""
loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
opt.step()
""",
    ),
)
