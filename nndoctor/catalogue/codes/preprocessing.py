"""Finding codes of the ``preprocessing`` category: inputs not normalised, normalised twice, constant or NaN features, labels out of range."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="preprocessing.targets-not-scaled",
        severity="warning",
        step="implement & debug",
        title="Regression targets on their raw scale: the model never beats predicting their mean",
        meaning=(
            "The targets of a regression loss (MSE/L1/Huber) are far from unit scale (e.g. house prices "
            "~1e5, or a std of 50 while the inputs are standardised), and the loss at the end of training is "
            "still about the loss of predicting the targets' mean."
        ),
        why=(
            "A network's outputs start near 0 with unit-scale weights: reaching targets of size 1e5 needs "
            "weights and biases that an lr-sized step (Adam: ~lr per step) takes thousands of steps to grow, "
            "and SGD's gradients on that scale make steps that explode. The loss plateaus at the constant "
            "prediction's level or the lr looks wrong; the scale of the targets is the cause."
        ),
        detection=(
            "Float targets of the training regression-loss calls (mse_loss, l1_loss, smooth_l1_loss, "
            "huber_loss, mean reduction, one loss in the run) are sampled on sampled steps. At the end of the"
            " run: the targets' root mean square >= 10, >= 30 training losses, and the loss at the end (median"
            " of the last 10%) >= 0.8x the loss of predicting the targets' mean (their variance for MSE, their"
            " mean absolute deviation for L1-type losses). Large targets the model learns stay quiet. Under an "
            "L1-type loss, whose gradient per output is bounded whatever the targets' scale, a loss that rose "
            "(late >= 1.5x its first level) or ends above the loss of predicting 0 is left to the lr and "
            "loss-curve checks: the steps overshoot, they do not fall short."
        ),
        fixes=(
            "Standardise the targets: y_n = (y - {target_mean:.4g}) / {target_std:.4g} from the training set,"
            " train on y_n and report predictions * std + mean.",
            "Or train on log(y) for positive, skewed targets (prices, counts).",
            "Or initialise the output bias at the target mean and scale the output layer by the target std.",
        ),
        wrong="""
y = df["price"].values                        # ~2e5
loss = F.mse_loss(model(x), y)
""",
        right="""
mu, sd = y_train.mean(), y_train.std()
loss = F.mse_loss(model(x), (y - mu) / sd)     # predict: model(x) * sd + mu
""",
    ),
    CodeInfo(
        code="preprocessing.bce-target-out-of-range",
        severity="error",
        step="implement & debug",
        title="BCE targets outside [0, 1]",
        meaning=(
            "binary_cross_entropy (with or without logits) gets targets outside [0, 1], e.g. {0, 255} masks "
            "or {1, 2} labels."
        ),
        why="The loss is wrong and can go negative; the model is pushed to predict probabilities beyond 1.",
        detection=(
            "On BCE-style loss calls the target's minimum and maximum are measured and the values seen are "
            "reported."
        ),
        fixes=(
            "Map the targets into [0, 1] before the loss: {suggestion}.",
            "Check the label encoding where the dataset is built (e.g. np.unique(y) should be [0, 1]).",
        ),
        wrong="""
mask = torch.from_numpy(png_mask).float()            # 0 or 255
loss = F.binary_cross_entropy_with_logits(logits, mask)
""",
        right="""
mask = (torch.from_numpy(png_mask) > 127).float()     # 0 or 1
loss = F.binary_cross_entropy_with_logits(logits, mask)
""",
    ),
    CodeInfo(
        code="preprocessing.constant-features",
        severity="warning",
        step="implement & debug",
        title="Most input features never change",
        meaning="A large share of the input features are constant over all sampled rows.",
        why=(
            "Most of the input carries no information: a bug in feature extraction, a wrong join, or padding"
            " that fills most of the input."
        ),
        detection=(
            "Statistics of the first floating-point tensor each root model receives (or, for a network on weight "
            "tensors, the data that first meets a trainable weight in a matmul/linear) are aggregated over "
            "several sampled batches (at least 4) and judged once per model and argument; features that "
            "never change over the sampled rows are counted, and the share is reported when it is most of "
            "the input. Inputs computed by layers that train are features, not data, and are not judged; a "
            "root model that is, on some calls, fed its own output (a recurrent cell unrolled by hand over "
            "torch.cat([x_t, h])) has that argument skipped altogether: its zero initial state is not data."
        ),
        fixes=(
            "Check how the input columns are built: {n_constant} of {n_features} features never change "
            "(e.g. {examples}); a wrong slice, join or padding often causes this.",
            "Drop columns that are constant on the training set; they carry no information.",
        ),
        wrong="""
X = np.zeros((n, 100)); X[:, :5] = real_features
""",
        right="""
X = real_features                 # drop constant columns
""",
    ),
    CodeInfo(
        code="preprocessing.constant-input",
        severity="warning",
        step="implement & debug",
        title="Model input is constant",
        meaning=(
            "The model receives the same value everywhere in all sampled batches: an input that carries no "
            "information (e.g. a wrong column, an all-zero tensor, an image normalised with its own max of "
            "0)."
        ),
        why="The model cannot learn anything from it; the loss stays at the level of a constant prediction.",
        detection=(
            "Statistics of the first floating-point tensor each root model receives (or, for a network on weight "
            "tensors, the data that first meets a trainable weight in a matmul/linear) are aggregated over "
            "several sampled batches (at least 4) and judged once per model and argument; an input whose "
            "minimum equals its maximum over all sampled batches is an error."
        ),
        fixes=(
            "Check the data pipeline: every input value is {value}; the batch was probably zeroed, "
            "overwritten or built from the wrong array.",
            "Print a batch (x.min(), x.max(), x.std()) right before model(x) to find the step that loses "
            "the data.",
        ),
        wrong="""
x = torch.zeros(len(df), 10)
x[:, 0] = df["label"]            # features never filled in
""",
        right="""
x = torch.tensor(df[feature_cols].values, dtype=torch.float32)
""",
    ),
    CodeInfo(
        code="preprocessing.crash-index-out-of-range",
        severity="error",
        step="implement & debug",
        title="Crash: an embedding index out of range",
        meaning=(
            "An nn.Embedding got a token id >= its num_embeddings: the vocabulary used to build the ids is "
            "larger than the embedding table, or unknown tokens are not mapped."
        ),
        why="Training cannot start; on a GPU the message is an opaque device-side assert.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `index out of range in self` from an embedding), finds the module that raised from the "
            "module stack and the failing call's inputs, and names what to change. The original traceback is"
            " printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Build the vocabulary from the training data and map unknown tokens to an <unk> id.",
        ),
        wrong="""
emb = nn.Embedding(len(train_vocab), 64)
out = emb(ids_from_full_vocab)
""",
        right="""
ids = [vocab.get(t, UNK_ID) for t in tokens]
emb = nn.Embedding(len(vocab), 64)
""",
    ),
    CodeInfo(
        code="preprocessing.crash-target-out-of-range",
        severity="error",
        step="implement & debug",
        title="Crash: class target out of range",
        meaning=(
            "A class index in the targets is >= the number of outputs of the model (or negative), e.g. "
            "labels 1..10 for 10 outputs; or BCELoss targets outside [0, 1]: class ids 0, 1, 2 of a "
            "multi-class problem fed to one sigmoid output, 1/2 labels, 0/255 masks, -1/+1 labels."
        ),
        why="Training cannot start; on a GPU the message is an opaque device-side assert.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Target N is out of bounds`, CUDA device-side asserts from the loss and BCELoss's `all elements of target should be between 0 and 1`, whose target values are listed), finds the "
            "module that raised from the module stack and the failing call's inputs, and names what to "
            "change. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Check np.unique(y) and the model's number of outputs before training.",
        ),
        wrong="""
y = torch.tensor(labels)            # 1..10
loss = F.cross_entropy(model(x), y) # model has 10 outputs
""",
        right="""
y = torch.tensor(labels) - 1        # 0..9
loss = F.cross_entropy(model(x), y)
""",
    ),
    CodeInfo(
        code="preprocessing.eval-targets-differ",
        severity="warning",
        step="implement & debug",
        title="Evaluation targets scaled differently from training targets",
        meaning=(
            "The regression targets of the evaluation loop are on another scale than the training targets "
            "(standardised, log-transformed or divided by 255 for training only), while the model's "
            "predictions stay on the training scale."
        ),
        why=(
            "The validation/test loss measures the missing scaling, not the model: it looks like huge "
            "overfitting or a broken model, and early stopping or model selection on it is meaningless."
        ),
        detection=(
            "Running mean/std of the target and of the prediction of mse/l1/smooth_l1/huber losses, per target "
            "shape, in training (sampled steps) and in evaluation loops (no gradient), judged once both sides "
            "have 2 batches and 16 values: the evaluation targets' std 5x or more off the training targets', or "
            "their mean 10 or more training stds away, while the evaluation predictions keep the training "
            "targets' scale (std within 5x, mean within 3 training stds). Predictions mapped back to the raw "
            "scale follow the targets: quiet."
        ),
        fixes=(
            "Apply the same target transform to the evaluation targets as to the training targets (the "
            "training split's mean/std), or map the predictions back (pred * sd + mu) before comparing them "
            "with raw targets: {loss} sees training targets with mean {train_target_mean}, std "
            "{train_target_std} and evaluation targets with mean {eval_target_mean}, std {eval_target_std}.",
            "Build the targets of every split with one function so that the pipelines cannot drift apart.",
        ),
        wrong="""
y_train = (y_train - mu) / sd
val_loss = F.mse_loss(model(x_val), y_val)      # raw targets
""",
        right="""
y_train, y_val = (y_train - mu) / sd, (y_val - mu) / sd
""",
    ),
    CodeInfo(
        code="preprocessing.eval-inputs-differ",
        severity="warning",
        step="implement & debug",
        title="Evaluation inputs preprocessed differently from training inputs",
        meaning=(
            "A model's evaluation inputs (forwards without gradient) are on another scale than its training "
            "inputs, e.g. normalised for training but raw 0-255 at test time, or a standardised training "
            "table and a raw test table."
        ),
        why="The evaluation results say little about the trained model, and there is no error anywhere.",
        detection=(
            "Running statistics of the first floating-point argument a root model receives are kept "
            "separately for training forwards (sampled steps) and forwards without gradient, per model, and "
            "compared once both are known: a spread that differs by 5x or more, or an evaluation mean more "
            "than 3 training stds from the training mean. Augmentation and another split of the same data "
            "change the statistics far less. Also: every one of >= 3 evaluation batches of a 2-D input "
            "standardised with its own statistics (per-feature mean 0, std 1 within the batch, tolerance "
            "0.002) while no sampled training batch is: a warning for batches of <= 64 rows, info above."
        ),
        fixes=(
            "Preprocess evaluation/test inputs exactly like the training inputs (the same scaling, e.g. x /"
            " 255, and the same Normalize / StandardScaler statistics, computed on the training set); "
            "{model}'s training inputs have {train}, its evaluation inputs {eval}.",
            "Build the training and evaluation data with one function (or one transform object) so that the"
            " two pipelines cannot drift apart.",
        ),
        wrong="""
train_x = (train_x - mu) / sd
test_pred = model(test_x)             # raw test inputs
""",
        right="""
train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd   # same transform, training statistics
""",
    ),
    CodeInfo(
        code="preprocessing.labels-scaled-like-pixels",
        severity="warning",
        step="implement & debug",
        title="Class labels divided by 255",
        meaning=(
            "Float targets take only the values {0, 1/255, 2/255, ...}: small class ids scaled like pixels "
            "(labels or masks passed through the image transform)."
        ),
        why=(
            "The labels are nearly 0 everywhere, so the model learns to predict about 0 instead of the "
            "classes."
        ),
        detection=(
            "On loss calls with float targets, the set of distinct values is collected over several sampled "
            "calls; values that are all small integers divided by 255 are reported."
        ),
        fixes=(
            "Do not scale the labels like the images: use the class ids (or 0/1 targets) as they are; to "
            "undo it, y = (y * 255).round() (here ids {ids}).",
            "For masks read as images (PIL / ToTensor turn ids 0, 1, 2 into 0, 1/255, 2/255), load them "
            "with torch.as_tensor(np.array(mask)) instead, and use CrossEntropyLoss for several classes.",
        ),
        wrong="""
y = transform(label_image)          # ToTensor() divides by 255
loss = F.mse_loss(pred, y)
""",
        right="""
y = torch.as_tensor(np.array(label_image), dtype=torch.long)
loss = F.cross_entropy(pred, y)
""",
    ),
    CodeInfo(
        code="preprocessing.nan-in-inputs",
        severity="warning",
        step="implement & debug",
        title="NaN/Inf values in the model's input",
        meaning="The model receives NaN or Inf values in its input batch.",
        why=(
            "Every loss and gradient that touches them becomes NaN and the weights are destroyed at the next"
            " update."
        ),
        detection=(
            "Statistics of the first floating-point tensor each root model receives (or, for a network on weight "
            "tensors, the data that first meets a trainable weight in a matmul/linear) are aggregated over "
            "several sampled batches (at least 4) and judged once per model and argument; non-finite values "
            "are reported at once, with the step and where in the input they are."
        ),
        fixes=(
            "Clean the data before training: drop the rows with missing values or impute them "
            "(df.fillna(df.mean()) / np.nan_to_num / sklearn SimpleImputer); affected: {where}.",
            "Assert torch.isfinite(x).all() where batches are built, to catch it at the source.",
        ),
        wrong="""
X = torch.tensor(df.values, dtype=torch.float32)    # df has missing values
""",
        right="""
df = df.fillna(df.median())                         # impute (or drop) first
X = torch.tensor(df.values, dtype=torch.float32)
""",
    ),
    CodeInfo(
        code="preprocessing.mean-std-swapped",
        severity="warning",
        step="implement & debug",
        title="Images normalised with the mean and the std swapped",
        meaning=(
            "A dataset's published per-channel statistics are used in the wrong order: (x - std) / mean "
            "instead of (x - mean) / std (Normalize(std, mean), or the two tuples' names swapped). The inputs "
            "are neither centred nor of unit scale."
        ),
        why=(
            "A pretrained backbone sees inputs unlike the ones it was trained on, a model trained from scratch "
            "gets off-centre inputs, and evaluation or deployment code that normalises correctly feeds the "
            "model other inputs than training did."
        ),
        detection=(
            "Sampled training steps: the model's first floating input shaped like images ((N, C, H, W) or "
            "(N, H, W, C) with C = 1 or 3, (N, H, W), or (N, >= 64) flattened single-channel images) has, in "
            "every channel, a minimum within 0.01 of -std/mean and a maximum within 0.01 of (1 - std)/mean "
            "for the statistics of ImageNet, CIFAR-10/100, CLIP, SVHN, MNIST or Fashion-MNIST: the exact "
            "range of pixels in [0, 1] normalised with those statistics swapped. >= 2 such batches and at "
            "least half of the batches judged make the warning."
        ),
        fixes=(
            "Normalise as (x - mean) / std with mean={mean} and std={std}: Normalize(mean=MEAN, std=STD), "
            "in that order.",
        ),
        wrong="""
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
x = (x / 255.0 - torch.tensor(STD)[:, None, None]) / torch.tensor(MEAN)[:, None, None]
""",
        right="""
x = (x / 255.0 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
""",
    ),
    CodeInfo(
        code="preprocessing.normalised-twice",
        severity="warning",
        step="implement & debug",
        title="Inputs normalised twice",
        meaning=(
            "The inputs have a tiny spread (all values close to 0): they look normalised twice, or scaled "
            "far below unit size (e.g. divided by 255 twice)."
        ),
        why=(
            "The first layer sees almost no signal; the network has to learn huge weights before anything is"
            " learned."
        ),
        detection=(
            "Statistics of the first floating-point tensor each root model receives (or, for a network on weight "
            "tensors, the data that first meets a trainable weight in a matmul/linear) are aggregated over "
            "several sampled batches (at least 4) and judged once per model and argument; a tiny standard "
            "deviation (below 0.03) with every |x| below 0.1 is reported, unless every non-zero sampled row "
            "has a unit L1 or L2 norm (within 1e-3): rows normalised one by one (a row-normalised bag of "
            "words as graph networks feed it, L2-normalised TF-IDF) are small by design."
        ),
        fixes=(
            "Normalise once: the inputs already look scaled (max |x| = {max_abs}); remove the second "
            "division / Normalize step (e.g. x / 255 applied to data already in [0, 1]).",
            "After normalisation inputs should have std near 1 (or lie in [0, 1]); measured std {std}: if "
            "the raw data is this small, standardise it: x = (x - mean) / std.",
        ),
        wrong="""
x = images / 255
x = transforms.Normalize(0.5, 0.5)(x) / 255
""",
        right="""
x = (images / 255 - 0.5) / 0.5
""",
    ),
    CodeInfo(
        code="preprocessing.sentinel-values",
        severity="warning",
        step="implement & debug",
        title="A missing-value code in a feature squashes its real values",
        meaning=(
            "A feature holds a repeated extreme value, typically a missing-value code (99999, -999) left in "
            "the table, so that after min-max scaling or standardisation the real values of the column occupy "
            "a sliver of its range (e.g. [0, 1e-4] after min-max)."
        ),
        why=(
            "The network sees an almost constant feature plus a rare huge spike: the information in the real "
            "values is lost in the scale, and the spikes dominate the first layer's activations and gradients."
        ),
        detection=(
            "Rows of tabular model inputs ((N, F) tables, (N, L, F) feature sequences; not images) are kept "
            "from sampled training forwards and from evaluation forwards, up to 4096 rows (and 1M values). At the end of the "
            "run, for each column with >= 100 sampled finite values: its minimum or maximum is one exact value "
            "held by >= 3 sampled rows and at most 30% of them, the other values have >= 10 distinct values, "
            "and their 1st-99th percentile band spans < 1% of the column's range (sentinel included): warning. "
            "The same < 1% squash without a repeated extreme (isolated outliers, heavy tails): info. Log-normal "
            "features, one-hot/binary columns, sparse counts and standardised data stay quiet."
        ),
        fixes=(
            "Replace the missing-value code ({value} in column(s) {columns}, in scaled units) by NaN before "
            "scaling and impute it (median of the training rows), adding a 0/1 'was missing' column if "
            "missingness is informative.",
            "Fit the scaler after the imputation (or use a robust scaler: median and interquartile range).",
        ),
        wrong="""
X[X == -1] = 99999                            # missing readings coded as 99999
X = MinMaxScaler().fit_transform(X)           # real values squashed into [0, 1e-4]
""",
        right="""
X[X == 99999] = np.nan
X = SimpleImputer(strategy="median").fit_transform(X)
X = MinMaxScaler().fit_transform(X)
""",
    ),
    CodeInfo(
        code="preprocessing.start-constant-features",
        severity="info",
        step="start simple",
        title="Constant input features (start review)",
        meaning="Some input features are constant in the first training examples.",
        why="They carry no information and may be a sign of a feature-extraction bug.",
        detection=(
            "`nndoctor start EXP` reads the first training batches (up to 2048 examples) of the experiment "
            "without training anything; constant features among the examples read are counted and reported "
            "as info."
        ),
        fixes=(
            "Drop constant features (they carry no information).",
        ),
        wrong="""
X = np.hstack([features, np.zeros((n, 20))])
""",
        right="""
X = features[:, features.std(0) > 0]
""",
    ),
    CodeInfo(
        code="preprocessing.start-inputs-not-normalised",
        severity="warning",
        step="start simple",
        title="Inputs far from normalised (start review)",
        meaning="The training inputs are far from zero mean and unit standard deviation.",
        why=(
            "The field guide starts with normalised inputs: large or tiny inputs slow or stall training and "
            "make the learning rate hard to set."
        ),
        detection=(
            "`nndoctor start EXP` reads the first training batches (up to 2048 examples) of the experiment "
            "without training anything; a warning when |mean| > 5, std > 10, std < 1e-3, max |x| > 100, or "
            "(tabular) a feature std > 50."
        ),
        fixes=(
            "{scaling}",
            "Compute the statistics on the training set only, apply them to every split.",
        ),
        wrong="""
train = TensorDataset(torch.tensor(images, dtype=torch.float32), labels)   # 0..255
""",
        right="""
train = TensorDataset(torch.tensor(images, dtype=torch.float32) / 255, labels)
""",
    ),
    CodeInfo(
        code="preprocessing.start-inputs-roughly-normalised",
        severity="info",
        step="start simple",
        title="Inputs only roughly normalised (start review)",
        meaning="The inputs are not far off, but not zero-mean unit-std either.",
        why="Advice: standardised inputs are the guide's default and make the default learning rate work.",
        detection=(
            "`nndoctor start EXP` reads the first training batches (up to 2048 examples) of the experiment "
            "without training anything; info when |mean| > 1 or std > 3 (and not far enough for the "
            "warning)."
        ),
        fixes=(
            "Subtract the mean and divide by the std of the training inputs.",
        ),
        wrong="""
x = images / 64.0
""",
        right="""
x = (images - mean) / std        # training-set statistics
""",
    ),
    CodeInfo(
        code="preprocessing.start-nonfinite-inputs",
        severity="error",
        step="start simple",
        title="NaN/Inf in the training inputs (start review)",
        meaning="The first training inputs contain NaN or Inf values.",
        why="Any NaN in a batch turns the loss and the weights into NaN.",
        detection=(
            "`nndoctor start EXP` reads the first training batches (up to 2048 examples) of the experiment "
            "without training anything; non-finite values among the examples read are an error."
        ),
        fixes=(
            "Impute or drop NaN/Inf values in the dataset before training.",
        ),
        wrong="""
X = torch.tensor(df.values, dtype=torch.float32)    # missing values
""",
        right="""
X = torch.tensor(df.fillna(df.median()).values, dtype=torch.float32)
""",
    ),
    CodeInfo(
        code="preprocessing.start-targets-not-scaled",
        severity="info",
        step="start simple",
        title="Regression targets not scaled (start review)",
        meaning="Regression targets have a large mean or spread.",
        why=(
            "Standardised targets train faster: the output layer does not have to learn a huge scale and the"
            " loss is well conditioned."
        ),
        detection=(
            "`nndoctor start EXP` reads the first training batches (up to 2048 examples) of the experiment "
            "without training anything; info when the targets' std > 100 or |mean| > 100."
        ),
        fixes=(
            "Standardise the targets for training and invert the transform for predictions.",
        ),
        wrong="""
loss = F.mse_loss(model(x), price)            # prices ~1e5
""",
        right="""
y = (price - price_mean) / price_std
loss = F.mse_loss(model(x), y)                # invert for predictions
""",
    ),
    CodeInfo(
        code="preprocessing.unnormalised-features",
        severity="warning",
        step="implement & debug",
        title="Input features not normalised, or on very different scales",
        meaning=(
            "Tabular or other non-image inputs are far from unit scale: some features are in the hundreds or"
            " more, or the columns' standard deviations span orders of magnitude (as when one global "
            "mean/std is used instead of per-column statistics)."
        ),
        why=(
            "Large features dominate the first layer and saturate units, small ones are ignored; the loss "
            "surface is badly conditioned, so training is slow and the learning rate is hard to set."
        ),
        detection=(
            "Statistics of the first floating-point tensor each root model receives (or, for a network on weight "
            "tensors, the data that first meets a trainable weight in a matmul/linear) are aggregated over "
            "several sampled batches (at least 4) and judged once per model and argument; reported when "
            "features are in the hundreds or more (RMS >= 100), or when the column stds span 1000x or more "
            "(largest vs 10th percentile), as when one global mean/std is used instead of per-column "
            "statistics."
        ),
        fixes=(
            "Standardise every input column with statistics of the training set: X = (X - X.mean(0)) / "
            "X.std(0) (sklearn: StandardScaler().fit(X_train)); measured means {means}, stds {stds}.",
            "Apply the same mean/std (from the training set) to validation and test inputs.",
            "For heavy-tailed columns (counts, prices, areas) take log1p first, then standardise.",
        ),
        wrong="""
X = torch.tensor(df.values, dtype=torch.float32)     # income in 1e4, age in 1e1
""",
        right="""
mu, sd = X_train.mean(0), X_train.std(0) + 1e-8      # per column, training set only
X_train, X_test = (X_train - mu) / sd, (X_test - mu) / sd
""",
    ),
    CodeInfo(
        code="preprocessing.unnormalised-pixels",
        severity="warning",
        step="implement & debug",
        title="Raw pixel values fed to the model",
        meaning=(
            "The model receives raw image values (0-255, or 0-16 for 8x8 digits) instead of values scaled to"
            " about [0, 1] or standardised."
        ),
        why=(
            "Large inputs saturate units and make the gradients of the first layer huge: training is slow, "
            "unstable or stalls, and the learning rate is hard to set."
        ),
        detection=(
            "Statistics of the first floating-point tensor each root model receives (or, for a network on weight "
            "tensors, the data that first meets a trainable weight in a matmul/linear) are aggregated over "
            "several sampled batches (at least 4) and judged once per model and argument; an image-shaped "
            "input whose values lie in [0, 255] and are integers with a maximum >= 2, or reach above 20, is "
            "reported, with the per-channel mean and std to normalise with. A few levels (at most 0..16, as "
            "scikit-learn's 8x8 digits) is info only: measured on those digits, raw values trained as well as "
            "or better than scaled or standardised ones (Adam, Adamax, SGD with momentum; 3 seeds each)."
        ),
        fixes=(
            "Scale the pixels to [0, 1] once where the data is loaded: x = x / {divisor} (torchvision: "
            "transforms.ToTensor() does this for uint8 images).",
            "Then standardise with the measured statistics: {normalize}.",
        ),
        wrong="""
x = torch.tensor(images, dtype=torch.float32)     # 0..255
""",
        right="""
x = torch.tensor(images, dtype=torch.float32) / 255
x = (x - 0.5) / 0.5                                # optional: about [-1, 1]
""",
    ),
    CodeInfo(
        code="preprocessing.margin-loss-targets-not-signed",
        severity="error",
        step="implement & debug",
        title="{0, 1} labels given to a margin loss that expects -1 / +1",
        meaning=(
            "SoftMarginLoss, HingeEmbeddingLoss, CosineEmbeddingLoss or MarginRankingLoss gets labels other "
            "than -1 and +1, typically the {0, 1} labels made for BCE."
        ),
        why=(
            "These losses read the label as a sign. A 0 label gives soft_margin_loss a constant log(2) and "
            "margin_ranking_loss a constant margin (no gradient), drops the pair from cosine_embedding_loss (only "
            "similar pairs are trained, so the embeddings collapse to one point) and makes hinge_embedding_loss "
            "push both kinds of pair the same way. The loss still goes down, so nothing looks wrong."
        ),
        detection=(
            "On sampled training calls of these four losses, the label tensor (the second argument of "
            "soft_margin_loss / hinge_embedding_loss, the third of margin_ranking_loss / cosine_embedding_loss) "
            "holds at most three distinct integer values, one of them not +-1. Real-valued soft-margin targets are "
            "not judged."
        ),
        fixes=(
            "Map the labels to signs before the loss: {suggestion}.",
            "Or keep {{0, 1}} labels and use a loss made for them (BCEWithLogitsLoss on a score or on the "
            "cosine similarity, or a contrastive loss written for 0/1 labels).",
        ),
        wrong="""
same = (cls_a == cls_b).float()                          # 1 similar, 0 dissimilar
loss = nn.CosineEmbeddingLoss()(emb_a, emb_b, same)      # 0 pairs give zero loss
""",
        right="""
same = (cls_a == cls_b).float() * 2 - 1                  # +1 similar, -1 dissimilar
loss = nn.CosineEmbeddingLoss(margin=0.2)(emb_a, emb_b, same)
""",
    ),
    CodeInfo(
        code="preprocessing.rows-normalised-instead-of-columns",
        severity="warning",
        step="implement & debug",
        title="Features normalised per row (sample) instead of per column (feature)",
        meaning=(
            "Every input row was rescaled by its own statistics (mean 0 / std 1 per row, or sklearn's "
            "normalize(X) giving unit-norm rows) while one feature dwarfs the others: the normalisation ran "
            "along the wrong axis (axis=1 for axis=0, X.mean(1) for X.mean(0), normalize for StandardScaler)."
        ),
        why=(
            "Each row is scaled by its largest feature, which becomes nearly the same in every row; every other "
            "feature is squashed into a tiny range. The model sees almost constant inputs and underfits, with "
            "nothing failing."
        ),
        detection=(
            "On sampled training batches of a 2-D floating-point data input with 4..256 features: every row has "
            "mean 0 and std 1 (or unit L2 / L1 norm), and one feature holds >= 50% of each row's squared values on "
            "average, over >= 2 batches and >= 32 rows. Per-row normalisation of signals, spectra or TF-IDF rows, "
            "where no single feature dominates every row, stays quiet."
        ),
        fixes=(
            "Normalise each feature over the training rows instead: {suggestion}, with the training set's "
            "statistics reused for the validation and test sets.",
            "Per-row normalisation only makes sense for features in one unit (a signal, a spectrum, word counts).",
        ),
        wrong="""
X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)   # per sample
""",
        right="""
mu, sd = X_train.mean(axis=0), X_train.std(axis=0)                        # per feature
X_train, X_test = (X_train - mu) / sd, (X_test - mu) / sd
""",
    ),
)
