"""Finding codes of the ``labels`` category: labels corrupted, shuffled apart from inputs, noisy, or not learnable."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="labels.changed-between-epochs",
        severity="warning",
        step="implement & debug",
        title="An input comes back with a different label",
        meaning=(
            "Training inputs seen twice came back with a different label: inputs and labels are shuffled, "
            "indexed or re-sorted apart, or a label is drawn or relabelled at random on each pass."
        ),
        why="The model is trained on wrong pairs; it cannot learn.",
        detection=(
            "`nndoctor overfit` iterates the training loader twice and matches inputs seen in both passes "
            "(at least 10; more than 1% changed). `nndoctor run` fingerprints each row of the model's data input "
            "with its class label (integer cross_entropy / nll_loss targets, {0, 1} BCE targets, one per row) on "
            "sampled training steps and matches rows seen again on a later step: >= 20 matches with >= 10% "
            "changed is a warning, >= 3% info. Augmented inputs simply do not match; one-hot inputs, fewer than 50 "
            "distinct inputs (words, categories: one input has several labels by nature), a dataset whose duplicate "
            "inputs carry conflicting labels (seen inside one batch) and contrastive arange(N) targets stay "
            "quiet."
        ),
        fixes=(
            "Shuffle and index inputs and labels together (one permutation, one index in __getitem__), e.g."
            " TensorDataset(x, y) with DataLoader(shuffle=True).",
            "Check any per-epoch relabelling or label-noise code in the dataset.",
        ),
        wrong="""
def __getitem__(self, i):
    return self.x[i], self.y[random.randrange(len(self.y))]
""",
        right="""
def __getitem__(self, i):
    return self.x[i], self.y[i]
""",
    ),
    CodeInfo(
        code="labels.eval-labels-unrelated",
        severity="warning",
        step="implement & debug",
        title="Evaluation labels unrelated to the evaluation inputs",
        meaning=(
            "The model's evaluation predictions are independent of the evaluation labels although it fits "
            "learnable training labels: the validation/test labels were shuffled, sorted or re-read apart "
            "from their inputs."
        ),
        why=(
            "Validation accuracy sits at chance whatever is changed, and it reads like overfitting; early "
            "stopping and model selection on it are meaningless."
        ),
        detection=(
            "At the end of the run, on the latest evaluation pass with >= 100 predictions over >= 2 classes "
            "(the model predicting >= 2 classes, each >= 5% of the pass): a chi-square test of independence "
            "of its confusion matrix gives p >= 0.01, the training data is fitted (median training loss of "
            "the last quarter <= 0.5x the loss of predicting the class priors), and probes fitted on observed training pairs predict the training labels "
            "(z > 6 and >= 10 points over the majority class or 10% of the priors' loss), so memorised random "
            "training labels stay quiet."
        ),
        fixes=(
            "Check that the evaluation inputs and labels of {pass} stay aligned: shuffle or index them "
            "together (x_val, y_val = x_val[perm], y_val[perm]), and read them from the same rows.",
            "Print a few evaluation examples with their labels, or evaluate on a slice of the training data "
            "through the same evaluation code: it should score near the training accuracy.",
        ),
        wrong="""
perm = torch.randperm(len(x_val))
x_val = x_val[perm]
""",
        right="""
perm = torch.randperm(len(x_val))
x_val, y_val = x_val[perm], y_val[perm]
""",
    ),
    CodeInfo(
        code="labels.encoded-differently-in-eval",
        severity="warning",
        step="implement & debug",
        title="The evaluation labels are encoded differently from the training labels",
        meaning=(
            "The model fits its training labels, but on an evaluation pass its predictions agree with a "
            "remapping of the labels (class 0 predicted as 1, 1 as 2, ...) far better than with the labels "
            "themselves: the class-to-index mapping was built separately per split (sorted names of each "
            "file, a LabelEncoder fitted on the test set, a split missing a class so every later id shifts)."
        ),
        why=(
            "The evaluation score is meaningless (near zero for a model that may be good), and anything tuned "
            "on it (early stopping, model selection) is wrong."
        ),
        detection=(
            "Each evaluation pass keeps a confusion matrix (true x predicted, classes < 32) from the evaluation "
            "loop's loss calls and `argmax == y` comparisons. For the latest pass with >= 30 predictions and >= 2 true "
            "classes, a one-to-one mapping true -> predicted class is chosen greedily (largest per-class recall "
            "first). Reported when its balanced accuracy (mean per-class recall under the mapping) is >= 0.7, "
            "exceeds the identity's by >= 0.3, and the classes it moves hold >= 30% of the pass: a warning when "
            "the model fits its sampled training batches (identity balanced accuracy >= 0.6, no remapping "
            "better), info when no training predictions were seen. A model merely bad on validation (diffuse "
            "confusion), overfitting, or a constant prediction under class imbalance stays quiet."
        ),
        fixes=(
            "Build the class-to-index mapping once, from the training split (or from the union of all "
            "classes), and apply that same mapping to every split ({pass} maps {mapping}).",
            "Save the mapping with the model (e.g. `classes_` of a LabelEncoder fitted on the training labels) "
            "and use it at evaluation.",
        ),
        wrong="""
y_train = LabelEncoder().fit_transform(train_names)
y_test = LabelEncoder().fit_transform(test_names)     # fitted again: other ids
""",
        right="""
enc = LabelEncoder().fit(train_names)
y_train, y_test = enc.transform(train_names), enc.transform(test_names)
""",
    ),
    CodeInfo(
        code="labels.mask-interpolated",
        severity="warning",
        step="implement & debug",
        title="Segmentation masks resized with a smoothing interpolation",
        meaning=(
            "Masks of class ids are resized with mode='bilinear' (or bicubic, linear, trilinear, area): "
            "F.interpolate, or torchvision's tensor resize whose default is bilinear. The interpolation averages "
            "neighbouring ids, so every object border gets values between two classes."
        ),
        why=(
            "Cast back with .long() or .round(), the averaged values become class ids of neither region (a "
            "line of class 1 around every class-2 object on background 0) or eroded objects; left as floats "
            "they are no class id at all. The model is trained on borders labelled with the wrong classes, "
            "and the per-class metrics are computed against them."
        ),
        detection=(
            "Function mode (sampled steps and the dense start of a run, so masks resized once before training "
            "are seen): an interpolate call with a smoothing mode whose input needs no gradient and holds only "
            "integers (2 to 64 distinct values) and whose output holds non-integer values is followed through "
            "indexing, casts, rounding, views and stack/cat (a DataLoader's collation) to the target of a loss "
            "on a training step. Two such steps make the warning (info when the target stays a float of a "
            "loss other than cross-entropy/NLL: soft borders of a binary mask may be meant)."
        ),
        fixes=(
            "Resize the masks with mode='nearest' (F.interpolate(mask[:, None].float(), size, mode='nearest')"
            ".long()[:, 0]) at {site}; torchvision: resize(mask, size, interpolation=InterpolationMode.NEAREST).",
            "Or resize the model's logits to the mask size instead (bilinear is right for logits).",
        ),
        wrong="""
mask = F.interpolate(mask[:, None].float(), size=(64, 64), mode="bilinear")[:, 0].long()
loss = F.cross_entropy(model(x), mask)   # borders: ids between two classes
""",
        right="""
mask = F.interpolate(mask[:, None].float(), size=(64, 64), mode="nearest")[:, 0].long()
loss = F.cross_entropy(model(x), mask)
""",
    ),
    CodeInfo(
        code="labels.noisy",
        severity="warning",
        step="implement & debug",
        title="Many training labels look randomly wrong",
        meaning=(
            "A large share of the training labels disagree confidently with predictions made without them: "
            "they look randomly wrong, and the model memorises them."
        ),
        why=(
            "The model learns the noise: the training loss goes far below what generalisation allows while "
            "the evaluation loss rises."
        ),
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. At the end of a run whose "
            "training loss fell below half the loss that 15% random labels allow, or whose evaluation loss "
            "rose, the kept pairs get 2-fold out-of-fold probabilities from three probes. Two estimates of "
            "the noise share (confident learning, and the disagreement with the probes' consensus where they"
            " are most confident) must both be >= 15% for a warning, with the evaluation loss rising. "
            "`nndoctor evaluate`/`data` use confident learning on out-of-sample probabilities."
        ),
        fixes=(
            "Review the {n_flagged} flagged examples ({which}) and fix or drop the wrong labels.",
            "If the labels come from a join or a shuffle, check that inputs and labels stay aligned.",
            "Train with a noise-robust loss (label smoothing) while the labels are being cleaned.",
        ),
    ),
    CodeInfo(
        code="labels.overfit-batch-conflicting-labels",
        severity="warning",
        step="implement & debug",
        title="Identical inputs with different labels in one batch",
        meaning=(
            "In the batch `nndoctor overfit` trains on, examples with identical inputs have different "
            "labels."
        ),
        why="No model can fit them, so the batch cannot be overfit.",
        detection=(
            "`nndoctor overfit` groups the batch's rows by identical input and counts the groups whose "
            "labels differ."
        ),
        fixes=(
            "Check that inputs and labels are shuffled, cropped and indexed together in the dataset / "
            "collate code.",
            "Remove or relabel duplicated examples.",
        ),
        wrong="""
x = torch.zeros(len(y), 10)        # features never filled in
""",
        right="""
x = features                        # real inputs, paired with their labels
""",
    ),
    CodeInfo(
        code="labels.padding-not-ignored",
        severity="warning",
        step="implement & debug",
        title="Padding positions counted as labels by the loss",
        meaning=(
            "Sequences are padded to one length, and the padded positions reach the loss as ordinary "
            "targets: the cross-entropy has no ignore_index for the pad (its default is -100) and the "
            "targets there are not set to it."
        ),
        why=(
            "A large share of the loss and of the accuracy is 'predict padding', which is easy: the loss "
            "and the token accuracy look good while the real tokens get a fraction of the gradient, and the "
            "model learns the sequence lengths instead of the task."
        ),
        detection=(
            "On sampled training steps, a cross_entropy/nll_loss whose integer targets have as many "
            "elements as an integer (N, T) model input is aligned with that input. Padded positions: those "
            "holding the padding_idx of one of the model's nn.Embedding layers, or else a value that only "
            "occurs as a trailing (or leading) run of varying length in >= 20% of the rows (a single "
            "end-of-sequence token per row does not qualify). A batch counts when >= 10% of the positions "
            "the loss counts are padding (target not ignore_index, class weight not 0); >= 2 such sampled "
            "batches, and at least half of those judged, make the warning. reduction='none' (masked by "
            "hand), packed sequences, fixed-length sequences and one-target-per-sequence losses are not "
            "judged. Category labels: the fault is in the targets the loss is given (padding that is no "
            "label), fixed either in the loss or by setting the padded targets to -100."
        ),
        fixes=(
            "Ignore the pad in the loss: nn.CrossEntropyLoss(ignore_index={pad_target}) or "
            "F.cross_entropy(logits, targets, ignore_index={pad_target}).",
            "Or set the padded targets to -100 (the default ignore_index) when the batch is built.",
            "Measure the accuracy over the non-padded positions only.",
        ),
        wrong="""
emb = nn.Embedding(V, 64, padding_idx=0)
loss = nn.CrossEntropyLoss()(logits.view(-1, V), targets.view(-1))     # padding (0) counted
""",
        right="""
emb = nn.Embedding(V, 64, padding_idx=0)
loss = nn.CrossEntropyLoss(ignore_index=0)(logits.view(-1, V), targets.view(-1))
""",
    ),
    CodeInfo(
        code="labels.real-class-ignored",
        severity="warning",
        step="implement & debug",
        title="A real class dropped from the loss by ignore_index",
        meaning=(
            "A classifier's cross-entropy / NLL loss has ignore_index set to a class id its targets use like "
            "any other class (CrossEntropyLoss(ignore_index=0) copied from a padded sequence model)."
        ),
        why=(
            "Every example of that class is left out of the loss, and the other examples push its score down: "
            "the model never predicts it and its share of the evaluation set is always wrong, while the "
            "training loss looks fine."
        ),
        detection=(
            "On sampled training steps: (N, C) scores, N integer targets, an ignore_index in [0, C), and a "
            "floating-point model input with N rows in the same step (features, not token ids). Over >= 2 "
            "batches, an ignored id holding between 0.5x and 2x the average class share (1/C) of the targets is "
            "a warning; a larger share (rows marked unlabelled on purpose) is info."
        ),
        fixes=(
            "Remove ignore_index from {loss} (its default, -100, ignores nothing) or set it to a value that is "
            "not a class id.",
            "Mark unlabelled rows with -100 (or the ignore_index you pass), never with a real class id.",
        ),
        wrong="""
criterion = nn.CrossEntropyLoss(ignore_index=0)     # a plain classifier: class 0 is real
""",
        right="""
criterion = nn.CrossEntropyLoss()                   # or ignore_index=-100 for unlabelled rows
""",
    ),
    CodeInfo(
        code="labels.single-class",
        severity="warning",
        step="implement & debug",
        title="All training labels are one class",
        meaning=(
            "Every training target observed is the same class although the model scores several: the labels "
            "collapsed before training, e.g. `(y / 255).long()`, an overwritten label column, or a mask "
            "thresholded at the wrong value."
        ),
        why="The model learns to predict that class always.",
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. Reported when all targets "
            "of at least 4 sampled batches (at least 64 targets) are one class while the model has several "
            "outputs."
        ),
        fixes=(
            "Check the label preprocessing: every sampled training target is class {label} ({counts}); "
            "integer class ids must not be scaled like pixels ((y / 255).long() is 0 for every id below "
            "255), and masks read as images need their class ids back (e.g. (mask * 255).round().long()).",
            "Print np.unique(y, return_counts=True) right before training and again on one batch from the "
            "DataLoader, to find the step that collapses the labels.",
        ),
        wrong="""
y = (torch.tensor(labels) / 255).long()     # all 0
""",
        right="""
y = torch.tensor(labels).long()
""",
    ),
    CodeInfo(
        code="labels.target-noise-too-strong",
        severity="warning",
        step="implement & debug",
        title="Noise added to the regression targets, as large as the targets' own spread",
        meaning=(
            "Random noise is added to the regression targets in the training step (`yb + std * "
            "torch.randn_like(yb)`, `torch.normal(yb, std)`) with a std at least the targets' own spread "
            "across the batch."
        ),
        why=(
            "The model is trained to fit noise as large as the signal: the loss cannot fall below the noise's "
            "variance (at or above the constant prediction's loss), gradients are dominated by the noise, and "
            "the flat, high training curve hides whether the model learnt anything. Target jitter meant as "
            "regularisation is a small fraction of the targets' spread."
        ),
        detection=(
            "On sampled training steps the function mode follows random tensors drawn outside the model, "
            "scaled by numbers and added to a tensor of the same shape that needs no gradient (as for "
            "regularization.input-noise-too-strong). When such a sum made in the same step is the target of "
            "a regression loss (mse/l1/smooth_l1/huber), the ratio ||noise - mean|| / ||y - batch mean of y|| "
            "is recorded once per step. Over at least 3 sampled steps, a median >= 1 is a warning (>= 0.7 "
            "info; info only with several optimizers). Quiet: noise drawn once when a synthetic data set is "
            "made, noise that is itself the target (diffusion, denoising), noise on the inputs, and noise "
            "that is also in the model's input (an autoencoder of noisy data). Noise drawn with numpy in the "
            "training Dataset's __getitem__ is measured at the end of the run from two reads of 32 examples."
        ),
        fixes=(
            "Scale the noise at {site} down to a fraction of the targets' spread: multiply its std by about "
            "{suggested_scale}, or drop it (noisy targets only add variance to the gradient).",
            "If the noise is meant to model the data (a synthetic task), draw it once with the data set, not "
            "in every training step.",
        ),
        wrong="""
loss = F.mse_loss(model(xb), yb + 2.0 * torch.randn_like(yb))   # yb has std 1
""",
        right="""
loss = F.mse_loss(model(xb), yb)
""",
    ),
    CodeInfo(
        code="labels.unrelated-to-inputs",
        severity="warning",
        step="implement & debug",
        title="The labels look unrelated to the inputs",
        meaning=(
            "The training loss stays at chance level and simple probes cannot predict the labels from the "
            "inputs either: the labels carry no information about the inputs (shuffled apart, misaligned, "
            "read from the wrong column)."
        ),
        why="No model can learn such labels; the bug is in the data pipeline.",
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. When the training loss "
            "sits at the loss of predicting the class priors, probes (logistic regression, "
            "5-nearest-neighbours, a small MLP on the principal components) are fitted on up to 4096 kept "
            "pairs with 2-fold cross-validation; none doing better than the priors (not significantly, by "
            "less than 5% of the priors' loss and 5 points of accuracy) gives this finding."
        ),
        fixes=(
            "Check that inputs and labels are indexed together: one permutation for both (idx = "
            "torch.randperm(n); x, y = x[idx], y[idx]), never a shuffle of one of them.",
            "Check how labels are read: the right column or file, the label-name -> index mapping, the "
            "order after filtering or sorting the examples.",
            "Look at a few examples next to their labels: if a person cannot predict the label, neither can"
            " the model.",
        ),
        wrong="""
X = X[np.random.permutation(len(X))]     # shuffles inputs only
ds = TensorDataset(X, y)
""",
        right="""
perm = np.random.permutation(len(X))
ds = TensorDataset(X[perm], y[perm])
""",
    ),
)
