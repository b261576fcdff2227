"""Finding codes of the ``preprocessing`` category: inputs not normalised, normalised twice, constant or NaN features, labels out of range."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="preprocessing.bce-target-out-of-range",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Map the targets into [0, 1] before the loss: {suggestion}.",
            "Check the label encoding where the dataset is built (e.g. np.unique(y) should be [0, 1]).",
        ),
    ),
    CodeInfo(
        code="preprocessing.constant-features",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check how the input columns are built: {n_constant} of {n_features} features never change "
            "(e.g. {examples}); a wrong slice, join or padding often causes this.",
            "Drop columns that are constant on the training set; they carry no information.",
        ),
    ),
    CodeInfo(
        code="preprocessing.constant-input",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Check the data pipeline: every input value is {value}; the batch was probably zeroed, "
            "overwritten or built from the wrong array.",
            "Print a batch (x.min(), x.max(), x.std()) right before model(x) to find the step that loses "
            "the data.",
        ),
    ),
    CodeInfo(
        code="preprocessing.crash-index-out-of-range",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix}",
            "Build the vocabulary from the training data and map unknown tokens to an <unk> id.",
        ),
    ),
    CodeInfo(
        code="preprocessing.crash-target-out-of-range",
        severity="error",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{fix}",
            "Check np.unique(y) and the model's number of outputs before training.",
        ),
    ),
    CodeInfo(
        code="preprocessing.eval-inputs-differ",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Preprocess evaluation/test inputs exactly like the training inputs (the same scaling, e.g. x /"
            " 255, and the same Normalize / StandardScaler statistics, computed on the training set); "
            "{model}'s training inputs have {train}, its evaluation inputs {eval}.",
            "Build the training and evaluation data with one function (or one transform object) so that the"
            " two pipelines cannot drift apart.",
        ),
    ),
    CodeInfo(
        code="preprocessing.labels-scaled-like-pixels",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Do not scale the labels like the images: use the class ids (or 0/1 targets) as they are; to "
            "undo it, y = (y * 255).round() (here ids {ids}).",
            "For masks read as images (PIL / ToTensor turn ids 0, 1, 2 into 0, 1/255, 2/255), load them "
            "with torch.as_tensor(np.array(mask)) instead, and use CrossEntropyLoss for several classes.",
        ),
    ),
    CodeInfo(
        code="preprocessing.nan-in-inputs",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Clean the data before training: drop the rows with missing values or impute them "
            "(df.fillna(df.mean()) / np.nan_to_num / sklearn SimpleImputer); affected: {where}.",
            "Assert torch.isfinite(x).all() where batches are built, to catch it at the source.",
        ),
    ),
    CodeInfo(
        code="preprocessing.normalised-twice",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Normalise once: the inputs already look scaled (max |x| = {max_abs}); remove the second "
            "division / Normalize step (e.g. x / 255 applied to data already in [0, 1]).",
            "After normalisation inputs should have std near 1 (or lie in [0, 1]); measured std {std}: if "
            "the raw data is this small, standardise it: x = (x - mean) / std.",
        ),
    ),
    CodeInfo(
        code="preprocessing.start-constant-features",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Drop constant features (they carry no information).",
        ),
    ),
    CodeInfo(
        code="preprocessing.start-inputs-not-normalised",
        severity="warning",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "{scaling}",
            "Compute the statistics on the training set only, apply them to every split.",
        ),
    ),
    CodeInfo(
        code="preprocessing.start-inputs-roughly-normalised",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Subtract the mean and divide by the std of the training inputs.",
        ),
    ),
    CodeInfo(
        code="preprocessing.start-nonfinite-inputs",
        severity="error",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Impute or drop NaN/Inf values in the dataset before training.",
        ),
    ),
    CodeInfo(
        code="preprocessing.start-targets-not-scaled",
        severity="info",
        step="start simple",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Standardise the targets for training and invert the transform for predictions.",
        ),
    ),
    CodeInfo(
        code="preprocessing.unnormalised-features",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Standardise every input column with statistics of the training set: X = (X - X.mean(0)) / "
            "X.std(0) (sklearn: StandardScaler().fit(X_train)); measured means {means}, stds {stds}.",
            "Apply the same mean/std (from the training set) to validation and test inputs.",
            "For heavy-tailed columns (counts, prices, areas) take log1p first, then standardise.",
        ),
    ),
    CodeInfo(
        code="preprocessing.unnormalised-pixels",
        severity="warning",
        step="implement & debug",
        title="",
        meaning="",
        why="",
        detection="",
        fixes=(
            "Scale the pixels to [0, 1] once where the data is loaded: x = x / {divisor} (torchvision: "
            "transforms.ToTensor() does this for uint8 images).",
            "Then standardise with the measured statistics: {normalize}.",
        ),
    ),
)
