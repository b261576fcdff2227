"""Finding codes of the ``loss-input`` category: model output and loss disagree."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="loss-input.crash-bce-input-not-probabilities",
        severity="error",
        step="implement & debug",
        title="Crash: BCELoss got raw scores, not probabilities",
        meaning=(
            "nn.BCELoss / F.binary_cross_entropy gets model outputs outside [0, 1]: the last layer is linear "
            "(no sigmoid), as in a Keras port of loss='binary_crossentropy' on a Dense layer without "
            "activation, and torch stops at the first step."
        ),
        why=(
            "BCELoss takes the log of the predicted probability and of one minus it; a raw score is not a "
            "probability, so torch refuses it (Keras clips it to [eps, 1 - eps] instead and trains badly)."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's `all elements of input should be "
            "between 0 and 1`, reads the failing call's input (finite values only: NaN from a diverged run "
            "is left to the numerics checks) and reports its range and the share of negative scores."
        ),
        fixes=(
            "{fix}",
            "Keep one of the two: a sigmoid in the model with BCELoss, or raw scores with BCEWithLogitsLoss "
            "(not both).",
        ),
        wrong="""
model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))
loss = nn.BCELoss()(model(x), y)          # raw scores
""",
        right="""
model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))
loss = nn.BCEWithLogitsLoss()(model(x), y)
""",
    ),
    CodeInfo(
        code="loss-input.softmax-into-regression-loss",
        severity="warning",
        step="implement & debug",
        title="Softmax classifier trained with MSE/L1 or a margin loss instead of cross-entropy",
        meaning=(
            "The model ends in a softmax over K classes and is trained with a regression loss (MSE, L1, "
            "Huber) against one-hot rows, or with MultiMarginLoss against class ids: a Keras port of "
            "Dense(K, activation='softmax') with loss='mean_squared_error' or 'categorical_hinge'."
        ),
        why=(
            "The gradient reaching the logits is the error times the softmax's Jacobian: about 1/K of "
            "cross-entropy's at the start and near zero for a confidently wrong prediction, so SGD barely "
            "moves and training stalls near chance; cross-entropy on the logits has neither problem."
        ),
        detection=(
            "On training loss calls, the loss input comes from a softmax over the class dimension (K >= 2) "
            "and the targets are hard: one-hot rows of the input's shape (MSE/L1/Huber) or class ids "
            "(multi_margin_loss). Soft targets (a teacher's probabilities, label smoothing) stay quiet. "
            "Judged at the end of the run (>= 50 losses): a warning when the training loss plateaued or fell "
            "by less than 10% over the run, info when it trained anyway."
        ),
        fixes=(
            "Train with nn.CrossEntropyLoss on the logits: drop the softmax at {location} and pass class ids "
            "(y.argmax(1) for one-hot rows); apply softmax only to read probabilities.",
            "If the squared error on probabilities is wanted (a Brier score), use Adam and expect slower "
            "training than cross-entropy.",
        ),
        wrong="""
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
loss = nn.MSELoss()(model(x), F.one_hot(y, 10).float())
""",
        right="""
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
loss = nn.CrossEntropyLoss()(model(x), y)
""",
    ),
    CodeInfo(
        code="loss-input.clamped-scores-as-probabilities",
        severity="warning",
        step="implement & debug",
        title="Raw scores clamped into [0, 1] and fed to BCELoss as probabilities",
        meaning=(
            "The last layer is linear and its scores are clamped (torch.clamp / torch.clip to [eps, 1 - eps]) "
            "before nn.BCELoss / F.binary_cross_entropy, as a port of Keras's binary_crossentropy (which clips "
            "its input) on a Dense layer without activation reads."
        ),
        why=(
            "A clamp is not a probability model: every score outside the bounds is cut to the bound and gets "
            "no gradient, so those examples stop teaching the model (a positive scored negative costs "
            "-log(eps) and never moves), and the loss treats unbounded scores as probabilities. Nothing "
            "crashes; the model trains worse than with a sigmoid."
        ),
        detection=(
            "On training calls of binary_cross_entropy, the input's autograd node is a clamp with bounds in "
            "[0, 1] whose input comes straight from a layer with weights (views, indexing or an addition "
            "only; no sigmoid, tanh or exp on the way); over the first 3 calls at a site, at least 10% of "
            "the clamp's input values lay outside its bounds. A clamp after a sigmoid stays quiet."
        ),
        fixes=(
            "Use nn.BCEWithLogitsLoss on the raw scores (drop the clamp), or put nn.Sigmoid() before the "
            "clamp and keep BCELoss.",
        ),
        wrong="""
out = model(x)                                  # last layer: nn.Linear(16, 1)
loss = F.binary_cross_entropy(out.clamp(1e-7, 1 - 1e-7), y)
""",
        right="""
out = model(x)
loss = F.binary_cross_entropy_with_logits(out, y)
""",
    ),
    CodeInfo(
        code="loss-input.class-ids-regressed",
        severity="warning",
        step="implement & debug",
        title="Class ids regressed with a one-output regression loss",
        meaning=(
            "Integer class labels (0..K-1, K >= 3) are the targets of a single-output MSE/L1/SmoothL1/Huber "
            "loss, and the prediction is usually rounded afterwards to get a class."
        ),
        why=(
            "Regression imposes an order and distances the classes do not have: class 2 sits 'between' 1 and "
            "3, an input that could be class 0 or 2 is pushed to 1 (a class of neither), and the rounded "
            "outputs are biased toward the middle ids. A K-way classifier learns faster and better."
        ),
        detection=(
            "Sampled training steps: a regression loss on one output per sample ((N,) or (N, 1)) whose targets "
            "are whole numbers in >= 2 calls (none fractional), 3..20 distinct values forming a contiguous run "
            "from 0 or 1. Warning when the ids look nominal (from 0, K <= 12, each class 0.5/K..2/K of >= 64 "
            "targets) or when ids from 0 are compared (eq/ne) with a rounded (round/long/int/floor) one-output "
            "prediction of the same size; info otherwise (ratings from 1, rounded or not, and small counts "
            "regressed on purpose look the same)."
        ),
        fixes=(
            "Make the model output K logits and train with cross_entropy on the integer ids (at {site}); "
            "predict with argmax(dim=1).",
            "If the ids are truly ordinal (ratings), keep the regression but evaluate it as such (MAE), or use an "
            "ordinal loss (cumulative logits).",
        ),
        wrong="""
model = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 1))
loss = F.mse_loss(model(x).squeeze(1), y.float())      # y in {0, 1, 2, 3}
acc = (model(x).squeeze(1).round() == y).float().mean()
""",
        right="""
model = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 4))
loss = F.cross_entropy(model(x), y)
acc = (model(x).argmax(1) == y).float().mean()
""",
    ),
    CodeInfo(
        code="loss-input.double-softmax",
        severity="error",
        step="implement & debug",
        title="Softmax applied twice",
        meaning=(
            "softmax is applied to a tensor that is already the output of softmax over the same dimension."
        ),
        why=(
            "Probabilities in [0, 1] squashed again give an almost uniform distribution: predictions stay "
            "unsure and gradients are tiny, so training is slow or stalls."
        ),
        detection="A softmax op whose input carries a softmax provenance label over the same dim.",
        fixes=(
            "Apply softmax once: remove the softmax at {first} (or the {activation} at {location}) and keep"
            " raw logits until the one place that needs probabilities.",
            "For training, feed the raw logits to nn.CrossEntropyLoss; use softmax only for metrics.",
        ),
        wrong="""
x = self.classifier(h).softmax(dim=-1)      # in the model
probs = torch.softmax(model(x), dim=-1)      # again in the loop
""",
        right="""
logits = self.classifier(h)                  # the model returns logits
loss = F.cross_entropy(logits, y)
""",
    ),
    CodeInfo(
        code="loss-input.log-probabilities-as-kl-div-target",
        severity="error",
        step="implement & debug",
        title="Log-probabilities as kl_div's target without log_target=True",
        meaning=(
            "kl_div's target was produced by log_softmax (log-probabilities) but the call does not pass "
            "log_target=True, so the loss treats values <= 0 as probabilities."
        ),
        why="The loss is meaningless: its gradient does not move the input towards the target distribution.",
        detection="The target's provenance label is log_softmax (or logsigmoid) and log_target is False.",
        fixes=(
            "Either pass probabilities as the target (softmax instead of log_softmax) or keep the "
            "log-probabilities and add `log_target=True` to {loss} ({site}).",
        ),
        wrong="""
loss = F.kl_div(F.log_softmax(student, 1), F.log_softmax(teacher, 1), reduction="batchmean")
""",
        right="""
loss = F.kl_div(F.log_softmax(student, 1), F.log_softmax(teacher, 1),
                reduction="batchmean", log_target=True)
""",
    ),
    CodeInfo(
        code="loss-input.log-probabilities-into-logit-loss",
        severity="error",
        step="implement & debug",
        title="Log-probabilities passed to a loss that applies sigmoid",
        meaning=(
            "binary_cross_entropy_with_logits receives the output of logsigmoid/log_softmax, values that are"
            " always <= 0. The loss applies sigmoid to them, so every predicted probability is at most 0.5."
        ),
        why=(
            "The positive class can never be predicted with confidence: the loss cannot go below log 2 on "
            "positive examples and the model is pushed the wrong way."
        ),
        detection=(
            "The loss input's provenance label is a log-probability op (log_softmax, logsigmoid) while the "
            "loss is binary_cross_entropy_with_logits."
        ),
        fixes=(
            "Pass the raw scores (logits) to {loss}: remove the {activation} that produces its input "
            "({site}).",
            "If you want to work with log-probabilities, use a loss written for them (NLLLoss for "
            "log_softmax), not {loss}.",
        ),
        wrong="""
out = F.logsigmoid(self.fc(x))
loss = F.binary_cross_entropy_with_logits(out, y)
""",
        right="""
logits = self.fc(x)
loss = F.binary_cross_entropy_with_logits(logits, y)
""",
    ),
    CodeInfo(
        code="loss-input.log-softmax-into-cross-entropy",
        severity="info",
        step="implement & debug",
        title="log_softmax output passed to cross_entropy",
        meaning=(
            "cross_entropy receives log-probabilities. It applies log_softmax itself, and log_softmax of "
            "log-probabilities is the identity, so the loss value is still correct."
        ),
        why=(
            "Training is correct, but the code reads as if the loss were NLLLoss: the next edit (for "
            "instance swapping the loss or removing a line) easily turns it into a real bug. Reported as "
            "info."
        ),
        detection=(
            "The loss input's provenance label says it came from log_softmax (or a LogSoftmax module) while "
            "the loss is cross_entropy."
        ),
        fixes=(
            "Nothing is wrong with the numbers (log_softmax is idempotent); for clarity either drop the "
            "log_softmax and keep CrossEntropyLoss, or keep it and use NLLLoss ({site}).",
        ),
        wrong="""
out = F.log_softmax(self.fc(x), dim=1)
loss = F.cross_entropy(out, y)
""",
        right="""
out = F.log_softmax(self.fc(x), dim=1)
loss = F.nll_loss(out, y)            # or: cross_entropy on the raw logits
""",
    ),
    CodeInfo(
        code="loss-input.logits-into-nll-loss",
        severity="error",
        step="implement & debug",
        title="Raw logits passed to nll_loss",
        meaning=(
            "nll_loss / NLLLoss expects log-probabilities (the output of log_softmax). Given raw scores, it "
            "returns -score[target], which is not a log-likelihood."
        ),
        why=(
            "The model learns to inflate the score of the target class without bound instead of classifying;"
            " the loss goes to minus infinity and accuracy stays poor."
        ),
        detection=(
            "The input's provenance is not log_softmax, and its rows' log-sum-exp is not 0 "
            "(log-probabilities have logsumexp 0 over the class dimension); the finding's evidence records "
            "the largest deviation."
        ),
        fixes=(
            "Apply log_softmax over the class dimension before {loss}: `F.nll_loss(F.log_softmax(logits, "
            "dim=1), y)` ({site}).",
            "Or pass the raw logits to nn.CrossEntropyLoss, which is log_softmax + NLLLoss in one.",
        ),
        wrong="""
logits = self.fc(x)
loss = F.nll_loss(logits, y)
""",
        right="""
logits = self.fc(x)
loss = F.nll_loss(F.log_softmax(logits, dim=1), y)   # or F.cross_entropy(logits, y)
""",
    ),
    CodeInfo(
        code="loss-input.output-range-cannot-reach-target",
        severity="warning",
        step="implement & debug",
        title="Output activation cannot reach the regression targets",
        meaning=(
            "A regression loss (MSE, L1, Huber...) compares predictions made by a bounded activation "
            "(sigmoid in (0, 1), tanh in (-1, 1), ReLU >= 0) with targets that lie partly outside that "
            "range."
        ),
        why=(
            "The loss has a floor it can never go below: the targets out of reach are always wrong, and the "
            "model distorts the rest trying to get close."
        ),
        detection=(
            "The prediction's provenance label gives its range; the targets' min/max and the share out of "
            "reach are measured on loss calls, and the minimum achievable squared error is compared with the"
            " targets' variance."
        ),
        fixes=(
            "Remove the final {activation} at {location} so the output layer is linear and can reach "
            "targets in [{target_min}, {target_max}].",
            "Or rescale the targets into the output range {output_range} (e.g. min-max scaling) and undo "
            "the scaling at prediction time.",
        ),
        wrong="""
pred = torch.sigmoid(self.out(h))       # in (0, 1)
loss = F.mse_loss(pred, price)          # prices in the thousands
""",
        right="""
pred = self.out(h)                      # linear output
loss = F.mse_loss(pred, (price - mu) / sigma)
""",
    ),
    CodeInfo(
        code="loss-input.overfit-batch-check-output",
        severity="warning",
        step="implement & debug",
        title="Check that the last layer matches the loss",
        meaning=(
            "A likely cause named by `nndoctor overfit` when one batch cannot be overfit and the loss "
            "plateaus: the model's last layer may not match the loss (a final softmax, ReLU or sigmoid in "
            "front of it). It is a low-ranked candidate, suggested when no loss-input check fired."
        ),
        why=(
            "A mismatched output layer is one of the commonest reasons a model cannot even memorise one "
            "batch."
        ),
        detection=(
            "`nndoctor overfit` trains on one fixed batch; when the curve plateaus and no loss-input finding"
            " was seen, this candidate is added with a low score."
        ),
        fixes=(
            "Remove a final softmax/ReLU/sigmoid in front of the loss.",
        ),
        wrong="""
self.net = nn.Sequential(nn.Linear(20, 10), nn.Softmax(dim=1))
loss = nn.CrossEntropyLoss()(self.net(x), y)
""",
        right="""
self.net = nn.Linear(20, 10)
loss = nn.CrossEntropyLoss()(self.net(x), y)
""",
    ),
    CodeInfo(
        code="loss-input.probabilities-into-kl-div",
        severity="error",
        step="implement & debug",
        title="Probabilities passed as kl_div's input",
        meaning=(
            "F.kl_div(input, target) expects log-probabilities as input. Given probabilities it computes "
            "target * (log target - input), which is not a KL divergence."
        ),
        why=(
            "A distillation or distribution-matching term then pulls the model in the wrong direction; the "
            "loss can even be negative."
        ),
        detection=(
            "The input's provenance label is softmax/sigmoid, or its rows are non-negative and sum to 1."
        ),
        fixes=(
            "Pass log-probabilities as the first argument: `F.kl_div(F.log_softmax(student, dim=-1), "
            "F.softmax(teacher, dim=-1), reduction='batchmean')` ({site}).",
            "Check the argument order: input = the model's log-probabilities, target = the reference "
            "distribution.",
        ),
        wrong="""
loss = F.kl_div(torch.softmax(student, 1), torch.softmax(teacher, 1), reduction="batchmean")
""",
        right="""
loss = F.kl_div(F.log_softmax(student, 1), F.softmax(teacher, 1), reduction="batchmean")
""",
    ),
    CodeInfo(
        code="loss-input.probabilities-into-logit-loss",
        severity="error",
        step="implement & debug",
        title="Probabilities passed to a loss that expects logits",
        meaning=(
            "cross_entropy / CrossEntropyLoss and binary_cross_entropy_with_logits / BCEWithLogitsLoss apply"
            " softmax or sigmoid themselves. Here the model's output already went through softmax or "
            "sigmoid, so the loss squashes it a second time."
        ),
        why=(
            "The scores the loss sees are confined to [0, 1]: the predicted distribution stays close to "
            "uniform, the gradients are flattened, and training is slow or stalls at a poor loss. Nothing "
            "crashes, so the bug survives unnoticed."
        ),
        detection=(
            "nndoctor labels every tensor with the op that produced it (softmax, sigmoid, log_softmax, "
            "relu...), carried through views, and reads that label when the loss is called. Where the label "
            "was lost, value properties decide: rows that are non-negative and sum to 1, or values that stay"
            " inside (0, 1] call after call (a squashing op such as exp or clamp after the last layer, or"
            " >= 100 training steps of it); scores that come straight from a layer with weights (through"
            " views, indexing or an addition only) are logits whatever their values: a stalled run's raw"
            " scores may never leave (0, 1]."
        ),
        fixes=(
            "Pass the raw scores (logits) to {loss}: remove the final {activation} at {location} (the loss "
            "is called at {site}).",
            "If you need probabilities for metrics or inference, apply {activation} there only, outside the"
            " loss computation.",
        ),
        wrong="""
logits = self.fc(x)
probs = torch.softmax(logits, dim=1)
loss = F.cross_entropy(probs, y)
""",
        right="""
logits = self.fc(x)
loss = F.cross_entropy(logits, y)   # softmax only for metrics/inference
""",
    ),
    CodeInfo(
        code="loss-input.probabilities-into-nll-loss",
        severity="error",
        step="implement & debug",
        title="Probabilities passed to nll_loss",
        meaning=(
            "nll_loss receives softmax probabilities instead of log-probabilities, so it returns -p[target],"
            " a bounded linear score."
        ),
        why=(
            "The gradients are weak and the objective is not the log-likelihood: confident mistakes are "
            "barely penalised and the model trains slowly to a worse optimum."
        ),
        detection="The input's provenance label is softmax, or every row is non-negative and sums to 1.",
        fixes=(
            "Take the log: use log_softmax instead of {activation} before {loss} (`F.log_softmax(logits, "
            "dim=1)`), at {location}.",
            "Or drop the {activation} and pass the raw logits to nn.CrossEntropyLoss.",
        ),
        wrong="""
probs = torch.softmax(self.fc(x), dim=1)
loss = F.nll_loss(probs, y)
""",
        right="""
log_probs = F.log_softmax(self.fc(x), dim=1)
loss = F.nll_loss(log_probs, y)
""",
    ),
    CodeInfo(
        code="loss-input.relu-into-logit-loss",
        severity="error",
        step="implement & debug",
        title="ReLU output used as logits",
        meaning=(
            "The model's last operation is a ReLU (or another non-negative activation) and its output goes "
            "into a loss that expects logits (cross_entropy, binary_cross_entropy_with_logits). Logits must "
            "be able to go negative."
        ),
        why=(
            "With BCE-with-logits, sigmoid of a non-negative value is >= 0.5, so the negative class can "
            "never be predicted. With cross_entropy, a class whose pre-activation is negative gets no "
            "gradient and can stay stuck."
        ),
        detection=(
            "The loss input's provenance label is relu (or a similar non-negative activation) applied to the"
            " model's last layer."
        ),
        fixes=(
            "Remove the {activation} after the last layer ({location}): {loss} needs raw scores that can be"
            " negative.",
            "Keep {activation} only between hidden layers; the output layer should be linear.",
        ),
        wrong="""
self.head = nn.Sequential(nn.Linear(64, 10), nn.ReLU())
loss = F.cross_entropy(self.head(h), y)
""",
        right="""
self.head = nn.Linear(64, 10)        # no activation after the last layer
loss = F.cross_entropy(self.head(h), y)
""",
    ),
    CodeInfo(
        code="loss-input.softmax-multi-label-targets",
        severity="warning",
        step="implement & debug",
        title="Softmax outputs compared with multi-label targets",
        meaning=(
            "Softmax outputs (each row sums to 1) are compared by MSE, L1 or BCE with targets whose rows do "
            "not sum to 1: multi-hot, multi-label targets."
        ),
        why=(
            "Softmax cannot put probability 1 on several classes at once, so those targets are out of reach;"
            " the model learns a compromise."
        ),
        detection=(
            "The prediction's provenance label is softmax; the target rows' sums are measured on loss calls "
            "and their share that is not 1 is reported."
        ),
        fixes=(
            "For multi-label targets (several classes per example) replace the softmax at {location} with "
            "an independent sigmoid per class: feed the raw logits to nn.BCEWithLogitsLoss with the same "
            "targets (the loss is called at {site}).",
            "If every example really has exactly one class, give one-hot rows (or class indices) and train "
            "the logits with nn.CrossEntropyLoss; check how the target rows are built ({example_row}).",
        ),
        wrong="""
probs = torch.softmax(logits, dim=1)
loss = F.binary_cross_entropy(probs, multi_hot)
""",
        right="""
loss = F.binary_cross_entropy_with_logits(logits, multi_hot)   # one sigmoid per label
""",
    ),
    CodeInfo(
        code="loss-input.softmax-over-batch-dim",
        severity="error",
        step="implement & debug",
        title="Softmax over the batch dimension",
        meaning=(
            "softmax normalises across the samples of the batch (dim=0, or the implicit dim of a 2-D input) "
            "instead of across classes, and its output reaches the loss."
        ),
        why=(
            "Each sample's prediction depends on the rest of the batch: the probabilities of one sample do "
            "not sum to 1, training and evaluation disagree, and results change with the batch size."
        ),
        detection=(
            "A softmax whose dim is the batch dimension (of size N, the current batch size) feeds a loss; "
            "the provenance label carries the dim."
        ),
        fixes=(
            "Apply {activation} over the class dimension: dim=-1 (or dim=1) instead of dim={dim} at "
            "{location}.",
            "Better: drop the {activation} and feed the logits to nn.CrossEntropyLoss.",
        ),
        wrong="""
probs = F.softmax(logits, dim=0)
""",
        right="""
probs = F.softmax(logits, dim=1)     # or dim=-1: over classes
""",
    ),
    CodeInfo(
        code="loss-input.softmax-over-one-unit",
        severity="error",
        step="implement & debug",
        title="Softmax over a dimension of size 1",
        meaning=(
            "softmax (or log_softmax) runs over a dimension that has a single element, so its output is "
            "constant: 1 (or 0 for log_softmax) whatever the input."
        ),
        why=(
            "Nothing can be learned: the output does not depend on the weights, every gradient is zero. "
            "Typical of a one-unit binary classifier written with softmax instead of sigmoid."
        ),
        detection="The softmax op event is checked for the size of the dimension it normalises over.",
        fixes=(
            "Softmax over one unit is always 1: for a binary task keep the single raw score and train it "
            "with nn.BCEWithLogitsLoss (float 0/1 targets), replacing the {activation} at {location}.",
            "Or give the last layer one output per class (2 for a binary task) and feed those logits to "
            "nn.CrossEntropyLoss.",
        ),
        wrong="""
self.out = nn.Linear(32, 1)
p = torch.softmax(self.out(h), dim=1)     # always 1.0
""",
        right="""
self.out = nn.Linear(32, 1)
loss = F.binary_cross_entropy_with_logits(self.out(h).squeeze(1), y.float())
""",
    ),
    CodeInfo(
        code="loss-input.rate-into-poisson-log-input",
        severity="warning",
        step="implement & debug",
        title="PoissonNLLLoss's log_input contradicts what the model outputs",
        meaning=(
            "PoissonNLLLoss / F.poisson_nll_loss runs with log_input=True (its default: the input is a "
            "log-rate) on the output of softplus, exp, ReLU or sigmoid, which is already a rate; or with "
            "log_input=False (the input is a rate) on a raw output that goes negative."
        ),
        why=(
            "With log_input=True the loss is exp(input) - y * input: a rate fed there makes the model learn "
            "rate = log(count), so its predictions are on the wrong scale, and exp of an exp output can "
            "overflow. With log_input=False the loss takes log(input): negative rates give NaN."
        ),
        detection=(
            "On sampled training calls of poisson_nll_loss: log_input=True and the input was produced by a "
            "non-negative activation (the observer's provenance label, or the autograd node behind views and "
            "casts); or log_input=False, no such activation and negative inputs (reported as an error)."
        ),
        fixes=(
            "Keep the model's rate output ({activation}) and tell the loss: nn.PoissonNLLLoss(log_input=False); "
            "or drop the {activation} and let the raw output be the log-rate (predict with exp(output)).",
            "Whichever you choose, make evaluation use the same convention (exp of a log-rate output).",
        ),
        wrong="""
model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1), nn.Softplus())   # outputs the rate
loss = nn.PoissonNLLLoss()(model(x).squeeze(1), counts)                             # log_input=True
""",
        right="""
model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1), nn.Softplus())
loss = nn.PoissonNLLLoss(log_input=False)(model(x).squeeze(1), counts)
""",
    ),
)
