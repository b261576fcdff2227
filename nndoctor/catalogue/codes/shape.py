"""Finding codes of the ``shape`` category: silent broadcasting or shape mismatch."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="shape.broadcast-in-elementwise-op",
        severity="error",
        step="implement & debug",
        title="Broadcasting in a hand-written loss",
        meaning=(
            "A hand-written loss combines the model's output of shape (N, 1) with a target of shape (N,), "
            "e.g. `pred - y`, where N is the batch size: the result is (N, N)."
        ),
        why=(
            "Each of the N predictions is combined with all N targets, so the loss averages over wrong pairs"
            " and the model learns the mean."
        ),
        detection=(
            "Elementwise ops (sub, add, mul, div...) are watched on sampled steps: one operand (N, 1) and "
            "the other (N,), N the current batch size, exactly one of them a computed tensor that requires "
            "grad (the model output). Legitimate broadcasting (bias adds, pairwise `x[:, None] - x`, masks, "
            "statistics of the same tensor) does not match this pattern."
        ),
        fixes=(
            "Make the shapes equal before `{op}` at {site}: {hint}.",
            "Add `assert pred.shape == target.shape` in the loss function so a reshape cannot slip back in.",
        ),
        wrong="""
loss = ((model(x) - y) ** 2).mean()      # (N, 1) - (N,)
""",
        right="""
loss = ((model(x).squeeze(-1) - y) ** 2).mean()
""",
    ),
    CodeInfo(
        code="shape.accuracy-argmax-wrong-dim",
        severity="warning",
        step="implement & debug",
        title="Predicted classes taken without a dim (or over the batch) and compared with the labels",
        meaning=(
            "The accuracy compares the labels with out.argmax() / out.max() taken without dim (one index into "
            "the flattened (N, C) tensor, or one value) or over dim 0 (one row index per class): the comparison "
            "broadcasts instead of matching each sample with its label."
        ),
        why=(
            "No error is raised and the reported accuracy is meaningless (the share of labels equal to one "
            "number, often 0): model selection, early stopping and every report built on it are wrong."
        ),
        detection=(
            "Training steps (sampled) and evaluation loops: an argmax/max of a floating tensor of N >= 2 rows "
            "and >= 2 dims, without dim or over dim 0, whose result (also after cpu/detach/squeeze/flatten/"
            "casts) is compared (eq/ne) with a tensor of N elements (integers) whose element count differs "
            "from the prediction's. Two such comparisons make the warning."
        ),
        fixes=(
            "Take the class dim at {site}: pred = out.argmax(dim=1) (or out.argmax(-1); _, pred = out.max(1)), "
            "then (pred == y).float().mean().",
        ),
        wrong="""
pred = out.argmax()                 # one index into the flattened (N, C) logits
acc = (pred == y).float().mean()    # broadcast over the labels: meaningless
""",
        right="""
pred = out.argmax(dim=1)            # one class per sample
acc = (pred == y).float().mean()
""",
    ),
    CodeInfo(
        code="shape.broadcast-in-loss",
        severity="error",
        step="implement & debug",
        title="Prediction and target broadcast to an all-pairs loss",
        meaning=(
            "A built-in elementwise loss (MSE, L1, Huber, KL, Poisson...) gets an input and a target whose "
            "shapes broadcast to something bigger than both, typically a prediction of shape (N, 1) and a "
            "target of shape (N,), which give (N, N)."
        ),
        why=(
            "Every prediction is compared with every target, so the loss is wrong and the model can only "
            "learn the mean of the targets. PyTorch accepts it with at most a warning: the field guide's "
            "most common silent bug."
        ),
        detection=(
            "On every loss call the broadcast shape of input and target is computed from their shapes; it is"
            " reported when it is larger than both, with the factor of extra terms."
        ),
        fixes=(
            "Make the shapes equal before the loss at {site}: {hint}.",
            "Add `assert pred.shape == target.shape` before the loss so a reshape cannot slip back in.",
        ),
        wrong="""
pred = model(x)                 # (N, 1)
loss = F.mse_loss(pred, y)      # y: (N,) -> (N, N)
""",
        right="""
pred = model(x).squeeze(1)      # (N,)
loss = F.mse_loss(pred, y)
""",
    ),
    CodeInfo(
        code="shape.crash-batch-of-one",
        severity="error",
        step="implement & debug",
        title="Crash: a batch of one sample reached BatchNorm in training",
        meaning=(
            "BatchNorm in training mode needs more than one value per channel; a batch of size 1 (usually "
            "the last, incomplete batch of an epoch) crashed it."
        ),
        why="The crash usually comes at the end of the first epoch, after minutes of training.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Expected more than 1 value per channel when training`), finds the module that raised "
            "from the module stack and the failing call's inputs, and names the layer, the shapes and the "
            "change to make. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Or skip batches with x.size(0) == 1 in the training loop.",
        ),
        wrong="""
loader = DataLoader(ds, batch_size=64)        # len(ds) % 64 == 1
""",
        right="""
loader = DataLoader(ds, batch_size=64, drop_last=True)
""",
    ),
    CodeInfo(
        code="shape.crash-conv-input",
        severity="error",
        step="implement & debug",
        title="Crash: a convolution got the wrong channels or dimensions",
        meaning=(
            "A Conv layer got an input with a number of channels other than its in_channels, or an input "
            "with the wrong number of dimensions (e.g. an unbatched image, or channels last)."
        ),
        why="Training cannot start until the input layout or the layer is fixed.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `weight of size [...], expected input[...] to have C channels` and `Expected 3D "
            "(unbatched) or 4D (batched) input to conv2d`), finds the module that raised from the module "
            "stack and the failing call's inputs, and names the layer, the shapes and the change to make. "
            "The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Print the shapes and dtypes right before the failing line (print(x.shape, x.dtype)) to confirm.",
        ),
        wrong="""
conv = nn.Conv2d(3, 16, 3)
out = conv(images)            # images: (N, 32, 32, 3), channels last
""",
        right="""
conv = nn.Conv2d(3, 16, 3)
out = conv(images.permute(0, 3, 1, 2))   # (N, 3, 32, 32)
""",
    ),
    CodeInfo(
        code="shape.crash-linear-input",
        severity="error",
        step="implement & debug",
        title="Crash: a Linear layer got inputs of the wrong size",
        meaning=(
            "The script crashed with `mat1 and mat2 shapes cannot be multiplied`: the features reaching an "
            "nn.Linear do not match its in_features, typically after a change of image size, a missing "
            "flatten, or a wrong in_features computed by hand."
        ),
        why=(
            "Training cannot start; the message names matrices, not the layer, so it is hard to see which "
            "layer and which size to change."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `mat1 and mat2 shapes cannot be multiplied (AxB and CxD)`), finds the module that raised"
            " from the module stack and the failing call's inputs, and names the layer, the shapes and the "
            "change to make. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Print the shapes and dtypes right before the failing line (print(x.shape, x.dtype)) to confirm.",
        ),
        wrong="""
self.fc = nn.Linear(784, 10)
out = self.fc(x)              # x: (N, 1, 28, 28)
""",
        right="""
self.fc = nn.Linear(784, 10)
out = self.fc(x.flatten(1))   # (N, 784)
""",
    ),
    CodeInfo(
        code="shape.crash-loss-shapes",
        severity="error",
        step="implement & debug",
        title="Crash: the loss got an input and a target of incompatible shapes",
        meaning=(
            "The loss function rejected its arguments: batch sizes differ, the target has an extra dimension"
            " (one-hot or (N, 1) targets for cross_entropy), or a BCE target's size differs from the "
            "input's."
        ),
        why=(
            "Training cannot start; the message names sizes, not the cause (one-hot targets, a forgotten "
            "squeeze, a sliced batch)."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Expected input batch_size (A) to match target batch_size (B)`, `0D or 1D target tensor "
            "expected, multi-target not supported`, `Expected target size ...` and `Using a target size ... "
            "that is different to the input size ...`), finds the module that raised from the module stack "
            "and the failing call's inputs, and names the layer, the shapes and the change to make. The "
            "original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Print the shapes and dtypes right before the failing line (print(x.shape, x.dtype)) to confirm.",
        ),
        wrong="""
loss = F.cross_entropy(logits, y.unsqueeze(1))   # y: (N, 1)
""",
        right="""
loss = F.cross_entropy(logits, y)                # y: (N,) class indices
""",
    ),
    CodeInfo(
        code="shape.crash-norm-features",
        severity="error",
        step="implement & debug",
        title="Crash: a normalisation layer got the wrong number of features",
        meaning=(
            "A BatchNorm or LayerNorm layer got inputs whose feature size differs from the one it was built "
            "with (`running_mean should contain C elements`, `Given normalized_shape=...`)."
        ),
        why="Training cannot start; usually num_features does not follow a change of the previous layer.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `running_mean should contain C elements not D` and `Given normalized_shape=[...], "
            "expected input with shape [...]`), finds the module that raised from the module stack and the "
            "failing call's inputs, and names the layer, the shapes and the change to make. The original "
            "traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Print the shapes and dtypes right before the failing line (print(x.shape, x.dtype)) to confirm.",
        ),
        wrong="""
nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(32))
""",
        right="""
nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64))
""",
    ),
    CodeInfo(
        code="shape.crash-out-of-memory",
        severity="info",
        step="implement & debug",
        title="Crash: out of memory",
        meaning="The script ran out of (GPU or host) memory. The finding reports the batch size seen.",
        why=(
            "Training cannot go on at this size; reported as info since it is a resource limit rather than a"
            " bug in the code."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `out of memory` / `can't allocate memory`), finds the module that raised from the module"
            " stack and the failing call's inputs, and names the layer, the shapes and the change to make. "
            "The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Then try smaller inputs, a smaller model, torch.autocast or gradient accumulation.",
        ),
        wrong="""
loader = DataLoader(ds, batch_size=1024)
""",
        right="""
loader = DataLoader(ds, batch_size=128)   # or autocast, gradient accumulation
""",
    ),
    CodeInfo(
        code="shape.crash-rnn-input",
        severity="error",
        step="implement & debug",
        title="Crash: an RNN/LSTM/GRU got the wrong input size",
        meaning=(
            "The last dimension of the input to a recurrent layer differs from its input_size, often because"
            " batch_first and the (seq, batch, feature) layout were mixed up."
        ),
        why="Training cannot start until the layout or input_size is fixed.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `input.size(-1) must be equal to input_size. Expected A, got B`), finds the module that "
            "raised from the module stack and the failing call's inputs, and names the layer, the shapes and"
            " the change to make. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Print the shapes and dtypes right before the failing line (print(x.shape, x.dtype)) to confirm.",
        ),
        wrong="""
rnn = nn.LSTM(input_size=8, hidden_size=32)
out, _ = rnn(x)               # x: (N, 8, T)
""",
        right="""
rnn = nn.LSTM(input_size=8, hidden_size=32, batch_first=True)
out, _ = rnn(x.transpose(1, 2))   # (N, T, 8)
""",
    ),
    CodeInfo(
        code="shape.crash-size-mismatch",
        severity="error",
        step="implement & debug",
        title="Crash: tensor sizes do not match",
        meaning=(
            "An elementwise op or a concatenation got tensors whose sizes differ in a non-singleton "
            "dimension (`The size of tensor a (A) must match the size of tensor b (B)`, `Sizes of tensors "
            "must match except in dimension ...`)."
        ),
        why="Training cannot start; the sizes in the message rarely say which tensor is wrong.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `The size of tensor a (A) must match the size of tensor b (B) at non-singleton dimension"
            " D` and `Sizes of tensors must match except in dimension D`), finds the module that raised from"
            " the module stack and the failing call's inputs, and names the layer, the shapes and the change"
            " to make. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Print the shapes and dtypes right before the failing line (print(x.shape, x.dtype)) to confirm.",
        ),
        wrong="""
h = torch.cat([img_feat, txt_feat], dim=0)    # (N, 64) and (N, 32)
""",
        right="""
h = torch.cat([img_feat, txt_feat], dim=1)    # (N, 96)
""",
    ),
    CodeInfo(
        code="shape.crash-state-dict",
        severity="error",
        step="implement & debug",
        title="Crash: a state_dict does not fit the model",
        meaning=(
            "load_state_dict failed: missing or unexpected keys, or parameters whose shapes differ from the "
            "checkpoint's (a changed architecture, a different number of classes, a `module.` prefix from "
            "DataParallel)."
        ),
        why=(
            "The model cannot be restored; loading with strict=False would silently leave layers randomly "
            "initialised."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Error(s) in loading state_dict`), finds the module that raised from the module stack "
            "and the failing call's inputs, and names the layer, the shapes and the change to make. The "
            "original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Load with strict=False only for layers you mean to re-initialise.",
        ),
        wrong="""
model = Net(num_classes=5)
model.load_state_dict(torch.load("ckpt.pt"))   # saved with 10 classes
""",
        right="""
state = torch.load("ckpt.pt")
state = {k: v for k, v in state.items() if not k.startswith("head.")}
model.load_state_dict(state, strict=False)      # re-initialise the head only
""",
    ),
    CodeInfo(
        code="shape.crash-view",
        severity="error",
        step="implement & debug",
        title="Crash: view/reshape to a shape that does not fit",
        meaning=(
            "A view or reshape with a hard-coded size (often the batch size) failed because the tensor has a"
            " different number of elements, e.g. on the last, smaller batch."
        ),
        why="The crash typically comes at the end of an epoch, when the last batch is smaller.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `shape '[...]' is invalid for input of size N`), finds the module that raised from the "
            "module stack and the failing call's inputs, and names the layer, the shapes and the change to "
            "make. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Or use DataLoader(..., drop_last=True) if the model really needs a fixed batch.",
        ),
        wrong="""
x = x.view(64, -1)            # batch size hard-coded
""",
        right="""
x = x.view(x.size(0), -1)     # or x.flatten(1)
""",
    ),
    CodeInfo(
        code="shape.soft-target-not-distribution",
        severity="warning",
        step="implement & debug",
        title="Float targets for cross_entropy that are not probability distributions",
        meaning=(
            "cross_entropy reads a float target of shape (N, C) as class probabilities. Here its rows are "
            "not distributions (negative values, or rows that do not sum to 1), e.g. one-hot labels that "
            "were scaled or multi-hot labels."
        ),
        why="The loss is not a cross-entropy and its minimum is not at the intended prediction.",
        detection=(
            "On cross_entropy calls with a floating (N, C) target, the row minimum and row sums are "
            "measured."
        ),
        fixes=(
            "For class labels pass integer indices of shape {batch_shape} (`target.argmax(1)` of a one-hot,"
            " dtype torch.long) to {loss} at {site}.",
            "For multi-label targets (several 1s per row) use nn.BCEWithLogitsLoss instead.",
            "For soft targets (distillation, mixup) normalise each row: `softmax(teacher_logits, 1)` or `t "
            "/ t.sum(1, keepdim=True)`.",
        ),
        wrong="""
y = F.one_hot(labels, 10).float() * 255
loss = F.cross_entropy(logits, y)
""",
        right="""
loss = F.cross_entropy(logits, labels)          # class indices
# or soft labels whose rows sum to 1
""",
    ),
    CodeInfo(
        code="shape.rnn-batch-time-swapped",
        severity="error",
        step="implement & debug",
        title="A recurrent layer reads the batch as time",
        meaning=(
            "An `nn.LSTM`/`nn.GRU`/`nn.RNN` built with `batch_first=False` (the default) is fed batch-major "
            "`(batch, seq, feature)` tensors: it recurs across the samples of the batch, and `out[:, -1]` is "
            "not the last time step."
        ),
        why="Samples leak into each other's hidden state and the model never sees a sequence in order.",
        detection=(
            "On the same training step, the recurrent layer's input dim 0 equals the batch size the loss sees "
            "(the first dim of the target) while its dim 1 does not. Time-major inputs `(T, N, F)` with `(N,)` "
            "targets, and targets shaped like the input, stay quiet."
        ),
        fixes=(
            "Build {module} with batch_first=True (its input is (batch, seq, feature) = {input_shape}), or pass "
            "it x.transpose(0, 1) and read the last time step as out[-1].",
            "Check what the loss sees: with batch_first=True, out[:, -1] is the last time step of each sample.",
        ),
        wrong="""
self.rnn = nn.LSTM(16, 64)                 # batch_first=False
out, _ = self.rnn(x)                       # x: (batch, seq, 16)
""",
        right="""
self.rnn = nn.LSTM(16, 64, batch_first=True)
out, _ = self.rnn(x)
last = out[:, -1]
""",
    ),
    CodeInfo(
        code="shape.attention-batch-seq-swapped",
        severity="warning",
        step="implement & debug",
        title="An attention layer attends across the batch",
        meaning=(
            "An `nn.MultiheadAttention` (or an `nn.TransformerEncoderLayer`/`DecoderLayer`/`nn.Transformer`, "
            "whose attention mirrors the flag) built with `batch_first=False` (the default) is fed batch-major "
            "`(batch, seq, embed)` tensors: it reads the samples of the batch as the positions of a sequence."
        ),
        why=(
            "Each sample attends to the other samples of its batch instead of to its own tokens: predictions "
            "depend on the batch, the sequence is never read as one, and pooling over dim 1 pools over the "
            "wrong axis."
        ),
        detection=(
            "On the same sampled training step, a batch_first=False nn.MultiheadAttention gets a 3-D query "
            "whose dim 0 equals the batch size the loss sees (the first dim of the target) while its dim 1 "
            "does not. Time-major inputs `(T, N, E)` with `(N,)` targets, and targets shaped like the input, "
            "stay quiet; one finding per run."
        ),
        fixes=(
            "Build the attention/Transformer layers with batch_first=True (the input of {module} is (batch, "
            "seq, embed) = {input_shape}), or pass them x.transpose(0, 1) and transpose the output back.",
        ),
        wrong="""
layer = nn.TransformerEncoderLayer(64, 4)       # batch_first=False
h = nn.TransformerEncoder(layer, 2)(emb(x))     # emb(x): (batch, seq, 64)
""",
        right="""
layer = nn.TransformerEncoderLayer(64, 4, batch_first=True)
h = nn.TransformerEncoder(layer, 2)(emb(x))
""",
    ),
    CodeInfo(
        code="shape.time-major-logits-flattened",
        severity="warning",
        step="implement & debug",
        title="Time-major sequence scores flattened against batch-major targets",
        meaning=(
            "The model takes (N, T) sequences but returns (T, N, C) scores (nn.LSTM/GRU/RNN or "
            "nn.Transformer without batch_first=True), and the loss flattens those scores as they are "
            "against targets flattened from an (N, T) layout: the score of step t of sequence n is paired "
            "with the target of another sequence and step."
        ),
        why=(
            "The shapes agree, so nothing crashes, but the model is trained on labels that do not belong "
            "to its inputs: the loss stays near chance or only position priors are learned."
        ),
        detection=(
            "Sampled training steps: the root model's input is (N, T, ...) with N != T and its output a "
            "(T, N, C) tensor; a cross-entropy/NLL loss gets a (T * N, C) view of that very output (same "
            "memory: not transposed back) and T * N targets that are a view of a (K, T) tensor (a batch-major "
            "target matrix or a slice of one). >= 2 such sampled losses make the warning."
        ),
        fixes=(
            "Bring {model}'s scores back to batch-major before flattening: out.transpose(0, 1).reshape(-1, C) "
            "(or return h.transpose(0, 1) from forward), or build the recurrent/Transformer layers with "
            "batch_first=True and drop the transposes.",
            "Or flatten the targets in the same time-major order: y.t().reshape(-1).",
        ),
        wrong="""
h, _ = self.lstm(self.emb(x).transpose(0, 1))       # (T, N, H)
out = self.head(h)                                   # (T, N, C)
loss = F.cross_entropy(out.reshape(-1, C), y.reshape(-1))   # y: (N, T)
""",
        right="""
loss = F.cross_entropy(out.transpose(0, 1).reshape(-1, C), y.reshape(-1))
""",
    ),
    CodeInfo(
        code="shape.view-scrambles-axes",
        severity="warning",
        step="implement & debug",
        title="view/reshape used where a permute was meant",
        meaning=(
            "`x.view(...)` or `x.reshape(...)` gives the same sizes as its input in another order "
            "(`(N, T, C) -> (N, C, T)`): a view keeps the memory order, so values are scrambled across the "
            "axes instead of moved."
        ),
        why="The model trains on shuffled features or time steps; nothing fails and the loss stays high.",
        detection=(
            "A `view`/`reshape` whose result has exactly the sizes of its input in a different order, moving "
            "at least one axis of size > 1. Moving only size-1 axes (`(N, 1, T) -> (N, T, 1)`) stays quiet."
        ),
        fixes=(
            "Use {tensor}.permute(...) / .transpose(...) at {site} to move the axes {before} -> {after}; "
            "view/reshape keeps the memory order and mixes values across the axes.",
            "Assert the layout after the change (e.g. compare one sample's values before and after).",
        ),
        wrong="""
x = x.view(n, c, t)                        # x: (n, t, c)
""",
        right="""
x = x.permute(0, 2, 1)                     # (n, t, c) -> (n, c, t)
""",
    ),
    CodeInfo(
        code="shape.channels-last-read-as-channels-first",
        severity="warning",
        step="implement & debug",
        title="Channels-last data reshaped to channels-first instead of permuted",
        meaning=(
            "A convolution's input has the right sizes, (N, C, H, W), but its channels are interleaved in memory: "
            "the data was stored (N, H, W, C) (numpy, PIL, OpenCV, RGB rows of a CSV) and turned into (N, C, H, W) "
            "with reshape/view, which keeps the memory order, instead of permute/transpose. Same for (N, L, C) "
            "signals reshaped to (N, C, L) for Conv1d."
        ),
        why=(
            "Each channel plane becomes a strip of R, G, B values of different pixels: the network sees scrambled "
            "images. Nothing fails, the loss falls slowly and accuracy stays far below what the model can reach."
        ),
        detection=(
            "For data batches (no autograd history) entering a model whose first weighted layer is a convolution "
            "reading C = x.shape[1] channels (2 <= C <= 16), the mean squared difference of values k apart in each "
            "sample's memory order is measured for k = 1..2C over >= 16 samples of >= 2 sampled batches. Real "
            "channels-first data has it growing with k (smooth images) or flat (noise); interleaved channels make "
            "lags C and 2C (the same channel of the next pixels) both less than half of every other lag."
        ),
        fixes=(
            "Move the channel axis instead of reinterpreting memory: x = {permute}.contiguous() on the {stored_as} "
            "data (numpy: x.transpose(0, 3, 1, 2)), where the data is loaded; torchvision's ToTensor() does this "
            "for single HWC images.",
            "Check one sample after the change: x[0, 0] should look like the red plane of the first image.",
        ),
        wrong="""
x = torch.from_numpy(images).float()             # (N, 32, 32, 3) channels-last
x = x.view(-1, 3, 32, 32)                        # right sizes, scrambled pixels
""",
        right="""
x = torch.from_numpy(images).float()             # (N, 32, 32, 3)
x = x.permute(0, 3, 1, 2).contiguous()           # (N, 3, 32, 32)
""",
    ),
    CodeInfo(
        code="shape.batch-fed-as-one-sequence",
        severity="warning",
        step="implement & debug",
        title="A batch of samples fed to a recurrent layer as one sequence",
        meaning=(
            "A model gets (N, F) rows and adds the missing axis on the wrong side (x.unsqueeze(0) for a "
            "batch_first=True LSTM/GRU/RNN, x.unsqueeze(1) for batch_first=False): the layer sees one sequence "
            "whose N time steps are the N samples of the batch."
        ),
        why=(
            "The recurrence carries each sample's hidden state into the next, unrelated sample: a prediction "
            "depends on the samples that happen to precede it in the batch, and shuffling changes it. Nothing "
            "fails and the shapes downstream look right."
        ),
        detection=(
            "On a sampled training step, the root model's input is 2-D with N >= 8 rows, the loss targets have N "
            "rows, and a recurrent layer gets a 3-D input whose batch axis (by its batch_first) has size 1 and whose "
            "time axis has size N. A real single sequence fed with its batch axis ((1, T, F) root input) stays quiet."
        ),
        fixes=(
            "Give each sample its own sequence: {fix} in front of {module} (input {per_sample_shape}: batch {batch_size}, "
            "one time step each), or drop the recurrent layer if the rows are not sequences.",
            "If each sample is a sequence, build the input as (batch, seq, feature) where the data is loaded.",
        ),
        wrong="""
out, _ = self.lstm(x.unsqueeze(0))     # x: (batch, features), lstm batch_first=True -> (1, batch, features)
""",
        right="""
out, _ = self.lstm(x.unsqueeze(1))     # (batch, 1, features): one time step per sample
""",
    ),
    CodeInfo(
        code="shape.samples-mixed-across-batch",
        severity="warning",
        step="implement & debug",
        title="A reshape mixes samples across the batch",
        meaning=(
            "A reshape / view / permute inside the model interleaves the samples of a batch: `x.view(-1, N)` or "
            "`x.reshape(F, N).t()` on an (N, F) tensor, a time-major (T, N, H) tensor flattened to (N, T*H) without "
            "a transpose. The shapes come out right, so nothing fails, but each row is built from pieces of "
            "several samples."
        ),
        why=(
            "Each prediction is computed from other samples' features: the model cannot learn the input-to-label "
            "mapping (the loss stays near chance or learns slowly), and a prediction changes with the batch it "
            "happens to be in."
        ),
        detection=(
            "Backprop charts the dependencies (Karpathy's recipe): after the optimizer step of a sampled training "
            "step, the model is run on a copy of 7 rows of the batch (the whole batch, up to 256 rows, where a "
            "slice cannot run), in eval mode, with a forked RNG and its own torch.autograd.grad (no parameter "
            "gradient is written; modes, attributes and buffers are restored). The gradient of the first and of "
            "the last sample's output must reach that sample's input only; when >= 5% of it reaches other "
            "samples and rolling the batch by one sample does not roll the outputs (attention or pooling over a "
            "set of samples on purpose is symmetric), on two batches, the warning is given. The batch dim comes "
            "from the loss targets (dim 1 for sequence-first inputs); batch-norm is probed in eval mode, losses "
            "that compare samples are not looked at, and pairwise outputs, graphs (an (N, N) argument or buffer) "
            "and per-position targets of sequence models are not judged."
        ),
        fixes=(
            "Find the reshape in {model}'s forward that moves samples: keep the batch dim first and whole, e.g. "
            "x.reshape(x.size(0), -1) (or x.flatten(1)) instead of x.view(-1, N) / x.reshape(F, N).t().",
            "For time-major (T, N, H) tensors, transpose before flattening: h.transpose(0, 1).reshape(N, -1).",
            "Check it: the gradient of out[0].sum() with respect to the input must be zero on every row but 0.",
        ),
        wrong="""
x = self.features(x)                       # (N, 8, 4, 4)
x = x.reshape(8 * 4 * 4, -1).t()           # (N, 128), but rows mix samples
""",
        right="""
x = self.features(x)
x = x.reshape(x.size(0), -1)               # (N, 128), one row per sample
""",
    ),
    CodeInfo(
        code="shape.prediction-from-one-time-step",
        severity="warning",
        step="implement & debug",
        title="A sequence model's prediction reads one time step",
        meaning=(
            "The prediction for a sequence depends on one of its time steps only: the output of a batch_first "
            "LSTM/GRU/Transformer read at `out[:, 0]` where the last step (`out[:, -1]`) was meant, `out[0]` of a "
            "time-major output where `out[-1]` was meant, a cell loop that reads `x[:, 0]` at every step. The model "
            "runs over the whole "
            "sequence, but the head reads a position that has seen one step."
        ),
        why=(
            "Everything after that step is ignored: a label that depends on the rest of the sequence cannot be "
            "learned, and the loss plateaus while nothing looks wrong."
        ),
        detection=(
            "The same probe as shape.samples-mixed-across-batch, on a model holding a recurrent or attention "
            "layer whose input is (N, T, F) floats or (N, T) tokens (the gradient then goes to the embedding's "
            "output), T >= 4: the gradient of the first and the last probed sample's output is exactly zero "
            "(below 1e-6 of its largest value) on every time step of its input but one, the same step, on two "
            "batches. A bidirectional RNN read at step 0, a Transformer's CLS token, a last-step readout, pooling "
            "and per-position outputs reach every step."
        ),
        fixes=(
            "Read the position that has seen the whole sequence: out[:, -1] for a batch_first layer (out[-1] for "
            "a time-major one), the final hidden state h_n[-1], or pool over the steps (out.mean(1)); {model} now "
            "reads time step {time_step} of {seq_len}.",
            "With padded sequences, gather each sequence's last real step (out[range(N), lengths - 1]) or pack them.",
        ),
        wrong="""
out, _ = self.lstm(x)                      # batch_first=True: (N, T, H)
return self.fc(out[:, 0])                  # has read only x[:, 0]
""",
        right="""
out, _ = self.lstm(x)
return self.fc(out[:, -1])                 # has read the whole sequence
""",
    ),
)
