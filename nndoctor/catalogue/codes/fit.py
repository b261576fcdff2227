"""Finding codes of the ``fit`` category: underfitting, overfitting, distribution shift, validation overfitting."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="fit.avoidable-bias",
        severity="warning",
        step="evaluate",
        title="Avoidable bias dominates",
        meaning="The training error is well above the irreducible (human-level) error.",
        why="The model underfits: make it bigger, train longer, or tune; regularising would make it worse.",
        detection=(
            "`nndoctor evaluate EXP` computes the error on train, train-val, test-val and test and "
            "decomposes test error = irreducible + avoidable bias + variance + distribution shift + "
            "validation overfitting. Each term is the gap between two error rates, with a bootstrap "
            "confidence interval (or a normal approximation from rates and sizes); a gap inside the noise is"
            " not reported. The largest significant term is a warning, the others info. Avoidable bias = "
            "train error - irreducible error."
        ),
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
        title="Distribution shift dominates",
        meaning=(
            "The test-val error is well above the train-val error: the test distribution differs from the "
            "training one."
        ),
        why=(
            "More training data of the same kind will not help; data from the test distribution (or "
            "synthesis of it) does."
        ),
        detection=(
            "`nndoctor evaluate EXP` computes the error on train, train-val, test-val and test and "
            "decomposes test error = irreducible + avoidable bias + variance + distribution shift + "
            "validation overfitting. Each term is the gap between two error rates, with a bootstrap "
            "confidence interval (or a normal approximation from rates and sizes); a gap inside the noise is"
            " not reported. The largest significant term is a warning, the others info. Distribution shift ="
            " test-val error - train-val error."
        ),
        fixes=(
            "Do error analysis on test-val: find the error types much worse on test-val than on train-val.",
            "Collect more training data like those test-val examples.",
            "Synthesise such data (augmentation that mimics the target distribution).",
            "Apply domain adaptation.",
        ),
    ),
    CodeInfo(
        code="fit.model-at-chance",
        severity="info",
        step="implement & debug",
        title="The model stays at chance although the labels are learnable",
        meaning=(
            "The training loss stays at the loss of predicting the class priors, but simple probes fitted on"
            " the same data do far better."
        ),
        why=(
            "The data are fine: look at the model and its optimisation (learning rate, gradients, output "
            "layer). Reported as info."
        ),
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. Probes (logistic "
            "regression, 5-nearest-neighbours, a small MLP) are fitted on up to 4096 kept (input, label) "
            "pairs with 2-fold cross-validation and scored against the class priors; a probe far better "
            "while the model is not gives this finding."
        ),
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
        title="The model is no better than a constant prediction",
        meaning=(
            "After training, the model's loss on the evaluation split is no better than predicting the class"
            " priors or the target mean."
        ),
        why="The model learns nothing: a bug (run `nndoctor overfit`) or labels not paired with the inputs.",
        detection=(
            "`nndoctor baseline EXP` trains the model and, with the same budget, a constant predictor, a "
            "linear model and the guide's start-simple model, and compares their loss (and accuracy) on the "
            "evaluation split; clearly worse means a loss higher by 10% and, when known, 2 points less "
            "accuracy. A warning when the model is clearly worse than the constant predictor, or its loss is"
            " at least 98% of the constant's."
        ),
        fixes=(
            "Run `nndoctor overfit EXP`: a model that cannot fit one batch has a bug.",
            "Check labels and inputs are paired correctly (labels category).",
        ),
    ),
    CodeInfo(
        code="fit.overfitting",
        severity="warning",
        step="evaluate",
        title="The model overfits",
        meaning=(
            "The validation loss the script computes rises for several evaluations while the training loss "
            "keeps falling."
        ),
        why=(
            "Variance: the model memorises the training set. Regularisation, more data or early stopping "
            "help."
        ),
        detection=(
            "The losses the script computes in its validation loop (without gradient; or with gradients "
            "from a model in eval mode, once no backward reached them; hand-written losses when made like "
            "the training loss, e.g. mean <- pow <- sub; for a regression (MSE, L1, Huber training loss) "
            "scored by a metric of the script's own, e.g. a hand-written MAE, R-squared or RMSE, the "
            "training loss of the held-out residual pred - y, where the run has no other validation loss; "
            "the same when the prediction is compared with its target outside torch: two tensors of the "
            "prediction's row shape leaving torch (.numpy(), .tolist(), np.asarray) after an evaluation "
            "forward, neither its input, or a scikit-learn regression metric (mean_squared_error, r2_score, "
            "...) called after a forward no backward followed, whose y_true may be a numpy array torch never "
            "saw) "
            "are compared with the training loss over the run: "
            "the validation loss >= 1.1x its best, two or more evaluations after it, while the training "
            "loss fell 5%. Where several models are evaluated (compared side by side in one loop, or a "
            "model and its averaged copy), each model's validation losses make a curve of their own, judged "
            "alone; when several optimizers train them, the training losses recorded are theirs together, so "
            "a rising curve is named at `info` (its own gap cannot be measured). "
            "With too few evaluations to see a rise (e.g. one evaluation at the "
            "end), the model is reported when its training loss (median of the last 10% of >= 50 losses) is "
            "below 0.1x the loss of a constant prediction (class priors, target mean) while the last "
            "evaluation's loss is >= 0.5x that and >= 10x the training loss: it memorised the training data. "
            "A script that evaluates accuracy only ((out.argmax(1) == y) without gradient after a forward "
            "without gradient): its validation accuracy fell from its best by >= 2 points and >= 3 binomial "
            "standard errors, two or more evaluations after it and still down, while the training loss fell 5%."
        ),
        fixes=(
            "Get more training data (or more varied data) - the most reliable fix for variance.",
            "Add normalisation layers (BatchNorm/LayerNorm) and data augmentation.",
            "Add regularisation: dropout, or weight decay (e.g. AdamW(weight_decay=1e-2)).",
            "Keep the checkpoint of the best validation loss (step {best_step}) rather than the last one.",
        ),
    ),
    CodeInfo(
        code="fit.restored-checkpoint-not-best",
        severity="warning",
        step="evaluate",
        title="The restored 'best' checkpoint is not the best one",
        meaning=(
            "The script keeps the state of its best evaluation and loads it back, but the weights it loads are "
            "those of an evaluation that scored clearly worse than its best: a flipped comparison "
            "(`if val_loss > best`, `if acc < best_acc`), the training loss or another variable compared, the "
            "snapshot taken before the epoch that earned the score, or `best = model.state_dict()` kept "
            "without `copy.deepcopy` (a reference that follows training, so the 'best' is the last state)."
        ),
        why=(
            "Everything after the restore (the test score you report, the model you save or deploy) uses "
            "weights that are not the best the run produced."
        ),
        detection=(
            "During `nndoctor run`, each evaluation pass of a model (its first forward without gradient after a "
            "training step or a load) fingerprints the model (32 values spread over each of up to 16 trainable "
            "parameter tensors) and keeps the pass's metrics: the mean and standard error of the evaluation "
            "losses nndoctor records in it and, where the script compares `argmax` with the labels, its "
            "accuracy. A `load_state_dict` of the model is fingerprinted again and matched exactly with the "
            "passes. Weights no pass saw (pretrained weights, another run's checkpoint, a swapped-in EMA) and "
            "the initial weights (a reset between folds, a lottery-ticket rewind) start a new series and are not "
            "judged, nor are passes from before the latest optimizer built over the model. The restored pass "
            "is compared with the best of its series (>= 3 passes): worse by > 5% of the best loss (> 1 "
            "percentage point of accuracy) and by > 3 times the evaluation noise (the smaller of the median "
            "second difference of the series over sqrt(6) and the standard error of the gap from the spread "
            "within the two passes). With the "
            "accuracy seen both must be worse; with a regression loss only, the loss; with a classifier's loss "
            "only (the script may select on an accuracy nndoctor does not see) it is a warning only when the "
            "restored pass is the worst of all and earlier than the best (what a flipped comparison restores), "
            "otherwise info, as with a hand-written loss. Loads that changed nothing and were followed by more "
            "training are a round trip (the script writes and reads back its current state), and then its "
            "last such load restores nothing either."
        ),
        fixes=(
            "Compare in the right direction and start from the worst value: a loss improves when it falls "
            "(`best = float('inf')`; `if val_loss < best:`), an accuracy when it rises (`best = 0.0`; "
            "`if val_acc > best:`); compare the validation metric, not the training loss.",
            "Keep a copy, not a reference: `best_state = copy.deepcopy({model}.state_dict())` "
            "(`state_dict()` returns the live tensors that training keeps changing).",
            "Take the snapshot right after the evaluation that measured the score, in the same `if` that "
            "records it.",
        ),
        wrong="""
best_loss, best_state = float("inf"), None
for epoch in range(epochs):
    train_one_epoch(model)
    val_loss = evaluate(model, val_loader)
    if val_loss < best_loss:
        best_loss = val_loss
        best_state = model.state_dict()      # a reference: it follows training
model.load_state_dict(best_state)          # the last weights, not the best
""",
        right="""
best_loss, best_state = float("inf"), None
for epoch in range(epochs):
    train_one_epoch(model)
    val_loss = evaluate(model, val_loader)
    if val_loss < best_loss:
        best_loss = val_loss
        best_state = copy.deepcopy(model.state_dict())
model.load_state_dict(best_state)
""",
    ),
    CodeInfo(
        code="fit.slice-worse-on-test-val",
        severity="warning",
        step="evaluate",
        title="A slice is much worse on test-val than on train-val",
        meaning=(
            "One class or slice has a test-val error much higher than its train-val error and contributes a "
            "large share of the test-val errors."
        ),
        why=(
            "Distribution shift concentrated in one slice: high priority (the field guide's example: night "
            "scenes)."
        ),
        detection=(
            "`nndoctor evaluate` computes the error per class (or slice) on train-val and test-val and sorts"
            " the rows by contribution to the total test-val error. A slice is shifted when both splits hold"
            " >= 10 of its examples, its test-val error is >= 2x and >= 0.03 above its train-val error, and "
            "a two-proportion z-test gives z >= 2.58. When most slices shift, the global distribution-shift "
            "term covers it and no slice finding is made."
        ),
        fixes=(
            "Collect or synthesise more training examples like test-val slice {slice}.",
            "Inspect the test-val examples of slice {slice}: what differs from the training ones?",
        ),
    ),
    CodeInfo(
        code="fit.start-architecture-for-input",
        severity="info",
        step="start simple",
        title="Architecture does not match the input type (start review)",
        meaning=(
            "The inputs look like images, sequences or tokens but the model has no convolution (images) or "
            "recurrent/attention layer (sequences, tokens)."
        ),
        why=(
            "Advice: the guide starts with a LeNet-like conv net for images, a one-layer LSTM for sequences,"
            " an embedding + LSTM for tokens."
        ),
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; the input kind is "
            "inferred from the first batch's shape and dtype, and the model's modules (and ops seen in a "
            "forward) are checked."
        ),
        fixes=(
            "Try nndoctor.start.baseline(batch_inputs, outputs) ({suggested_first_model}) and compare with "
            "`nndoctor baseline EXP`.",
        ),
    ),
    CodeInfo(
        code="fit.start-large-model",
        severity="info",
        step="start simple",
        title="A large model for a first version (start review)",
        meaning="The model has more than 5 million parameters.",
        why="Advice: start with a small model that trains in minutes, then add capacity when bias dominates.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when the parameter"
            " count is above 5,000,000."
        ),
        fixes=(
            "Start from nndoctor.start.baseline(...) and grow it step by step.",
        ),
    ),
    CodeInfo(
        code="fit.start-no-validation",
        severity="info",
        step="start simple",
        title="No validation set (start review)",
        meaning="The experiment has no train_val set.",
        why="Without one, under- and overfitting cannot be told apart.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when "
            "Experiment(train_val=...) is missing."
        ),
        fixes=(
            "Hold out a validation split from the training distribution: Experiment(train_val=...).",
        ),
    ),
    CodeInfo(
        code="fit.start-simple-baseline-better",
        severity="info",
        step="evaluate",
        title="The guide's first model beats yours",
        meaning=(
            "The start-simple model (a small model matched to the input type) does better than the model "
            "being trained."
        ),
        why="Advice: start from the simple model and add complexity one step at a time.",
        detection=(
            "`nndoctor baseline EXP` trains the model and, with the same budget, a constant predictor, a "
            "linear model and the guide's start-simple model, and compares their loss (and accuracy) on the "
            "evaluation split; clearly worse means a loss higher by 10% and, when known, 2 points less "
            "accuracy. Info when the model is clearly worse than the start-simple model (and not worse than "
            "the linear one)."
        ),
        fixes=(
            "Start from nndoctor.start.baseline(...) and add complexity one step at a time.",
        ),
    ),
    CodeInfo(
        code="fit.stopped-while-improving",
        severity="info",
        step="evaluate",
        title="Training ended while the loss was still falling steeply",
        meaning=(
            "The run finished while every step still lowered the training loss: a `return` or `break` "
            "indented inside the epoch loop, one epoch where many were meant, a step budget cut short."
        ),
        why=(
            "The model is left underfit: more training would likely lower the loss. Short runs are normal in "
            "tests and notebooks, so this is advice (info), sharper for a curve cut early in its descent (too "
            "few epochs or steps, a batch so large that the epochs make few updates): healthy short demos are "
            "cut in their descent too, so a warning would be a promise the evidence cannot keep."
        ),
        detection=(
            "At the end of a run that finished on its own (not --max-steps, a crash or an interrupt), with one "
            "optimizer and >= 8 finite positive per-step training losses: the last half of the curve (the "
            "whole curve below 16 losses) still falls significantly (least-squares slope beyond 3 standard "
            "errors of the step-to-step noise) by >= 15% of the final level (median of the last 10%), after an "
            "overall fall of >= 10% from the first losses, to a level still >= 25% of the first losses, and the "
            "curve has not bent: the least-squares slope of its second half is >= 50% of its first half's. Not "
            "when an evaluation loss was recorded and ended >= 5% above its best (the run overfits: more steps "
            "would not help). "
            "Sharper advice (how many times as many updates) when the evidence is strong: read against "
            "effective steps (cumulative lr / peak lr), the "
            "last half still falls significantly (slope beyond 3 standard errors) by >= 5% of the final level at "
            ">= 30% of the first half's slope, and a saturation fit c + a exp(-x / tau) has tau >= 0.9 run "
            "lengths with >= 20% of the final level still to lose, in a run of fewer than 100 optimizer steps "
            "(still info: healthy twins of 84-180 steps are cut in their descent too). "
            "A rate that ended below 10% of its peak is read by lr.schedule-collapses instead."
        ),
        fixes=(
            "Check that the training loop runs all its epochs: a `return`/`break` indented inside the epoch "
            "loop ends training after the first one.",
            "Train longer (more epochs or steps) until the training loss flattens, with a validation set to "
            "stop at the right time.",
            "With a large batch size, each epoch makes few updates: lower the batch size (or raise the epoch "
            "count in proportion) so the run makes several times as many optimizer steps.",
        ),
        wrong="""
for epoch in range(epochs):
    for xb, yb in loader:
        ...
    return model          # inside the epoch loop: one epoch only
""",
        right="""
for epoch in range(epochs):
    for xb, yb in loader:
        ...
return model
""",
    ),
    CodeInfo(
        code="fit.underfitting",
        severity="warning",
        step="evaluate",
        title="The model underfits",
        meaning=(
            "The training loss has converged but stays close to the loss of the best constant prediction "
            "(class priors or target mean): the model explains little of the data."
        ),
        why=(
            "Avoidable bias: a bigger model, longer training or better features are needed before anything "
            "else. For token targets (language models) only a model stuck at the unigram level is a warning;"
            " weaker evidence is info."
        ),
        detection=(
            "Converged means no fall between the last two quarters of the run and no significant downward "
            "slope over the last quarter, judged against the noise, with updates of a healthy size. The "
            "constant-prediction loss is estimated from the targets of a few training loss calls; for BCE on "
            "soft targets (pixels in (0, 1)) their mean binary entropy is a floor no model goes below, and the "
            "share explained is measured above it (evidence `target_entropy_floor`). A second "
            "reading, with evidence `model_is_linear`: a classifier made of nn.Linear layers only (shape, "
            "dropout and an output softmax allowed, no activation module or function run inside it) whose "
            "training loss stays above 0.2x the class priors' loss and no better than 0.8x a logistic "
            "regression's held-out loss on the observed training pairs, while a 5-NN or small-MLP probe "
            "reaches at most half that loss and 10 points more accuracy: the data need a non-linear model."
        ),
        fixes=(
            "Use a bigger model: more units per layer or more layers (the model cannot fit the data); a "
            "linear model needs hidden layers with an activation (nn.ReLU) between its nn.Linear layers.",
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
        title="Overfitting to the validation set",
        meaning=(
            "The test error is well above the test-val error: choices were tuned on the validation set until"
            " it no longer predicts the test error."
        ),
        why="The reported validation figure is optimistic; a fresh validation set is needed.",
        detection=(
            "`nndoctor evaluate EXP` computes the error on train, train-val, test-val and test and "
            "decomposes test error = irreducible + avoidable bias + variance + distribution shift + "
            "validation overfitting. Each term is the gap between two error rates, with a bootstrap "
            "confidence interval (or a normal approximation from rates and sizes); a gap inside the noise is"
            " not reported. The largest significant term is a warning, the others info. Validation "
            "overfitting = test error - test-val error."
        ),
        fixes=(
            "Collect or re-draw the test-val set: repeated model selection on it has overfit it.",
        ),
    ),
    CodeInfo(
        code="fit.variance",
        severity="warning",
        step="evaluate",
        title="Variance dominates",
        meaning="The train-val error (same distribution, unseen examples) is well above the training error.",
        why="The model overfits: more data, regularisation or early stopping help.",
        detection=(
            "`nndoctor evaluate EXP` computes the error on train, train-val, test-val and test and "
            "decomposes test error = irreducible + avoidable bias + variance + distribution shift + "
            "validation overfitting. Each term is the gap between two error rates, with a bootstrap "
            "confidence interval (or a normal approximation from rates and sizes); a gap inside the noise is"
            " not reported. The largest significant term is a warning, the others info. Variance = train-val"
            " error - train error."
        ),
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
        title="The model is worse than a linear baseline",
        meaning=(
            "After the same training budget, the model is clearly worse than a linear model on the "
            "evaluation split."
        ),
        why="A neural network that loses to a linear model usually has a bug or a bad setting.",
        detection=(
            "`nndoctor baseline EXP` trains the model and, with the same budget, a constant predictor, a "
            "linear model and the guide's start-simple model, and compares their loss (and accuracy) on the "
            "evaluation split; clearly worse means a loss higher by 10% and, when known, 2 points less "
            "accuracy. A warning when the model is clearly worse than the linear baseline (and not worse "
            "than the constant)."
        ),
        fixes=(
            "Run `nndoctor overfit EXP` and `nndoctor lr-find EXP` to find the cause.",
            "Start from the guide's first model ({start_simple_model}) and add complexity one step at a "
            "time.",
        ),
    ),
)
