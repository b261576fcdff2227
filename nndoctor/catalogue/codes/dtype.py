"""Finding codes of the ``dtype`` category: float64 or integer inputs, wrong target dtype, mixed precision misuse."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="dtype.autocast-fp16-without-grad-scaler",
        severity="warning",
        step="implement & debug",
        title="float16 autocast without a GradScaler",
        meaning=(
            "Forward passes run under torch.autocast with dtype float16, but optimizer.step() is not called "
            "through a GradScaler."
        ),
        why=(
            "Small float16 gradients underflow to 0 and those updates are silently lost; training is slower "
            "or stalls. bfloat16 does not need a scaler."
        ),
        detection=(
            "Autocast regions are seen on forward passes; the optimizer step is checked for being called by "
            "GradScaler.step."
        ),
        fixes=(
            "Scale the loss with a GradScaler: scaler = torch.amp.GradScaler('{device}'); "
            "scaler.scale(loss).backward(); scaler.step({optimizer}); scaler.update().",
            "Or use dtype=torch.bfloat16 in torch.autocast, which has float32's range and needs no scaler.",
        ),
        wrong="""
with torch.autocast("cuda", dtype=torch.float16):
    loss = loss_fn(model(x), y)
loss.backward()
opt.step()
""",
        right="""
scaler = torch.amp.GradScaler("cuda")
with torch.autocast("cuda", dtype=torch.float16):
    loss = loss_fn(model(x), y)
scaler.scale(loss).backward()
scaler.step(opt)
scaler.update()
""",
    ),
    CodeInfo(
        code="dtype.crash-device-mismatch",
        severity="info",
        step="implement & debug",
        title="Crash: tensors on different devices",
        meaning=(
            "An op got tensors on different devices, e.g. the model on the GPU and the batch still on the "
            "CPU."
        ),
        why="Training cannot start. Reported as info: the fix is mechanical.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Expected all tensors to be on the same device` and `Input type (torch.cuda...) and "
            "weight type ...`), finds the module that raised from the module stack and the failing call's "
            "inputs, and names the layer, the dtypes or devices and the change to make. The original "
            "traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Move the model once (model.to(device)) and every batch inside the loop (x, y = x.to(device), "
            "y.to(device)).",
        ),
        wrong="""
model.to("cuda")
for x, y in loader:
    loss = loss_fn(model(x), y)
""",
        right="""
model.to(device)
for x, y in loader:
    x, y = x.to(device), y.to(device)
    loss = loss_fn(model(x), y)
""",
    ),
    CodeInfo(
        code="dtype.crash-input-dtype",
        severity="error",
        step="implement & debug",
        title="Crash: input dtype differs from the model's",
        meaning=(
            "The model got inputs of another dtype than its weights: float64 numpy data into a float32 "
            "model, or integer (uint8) images."
        ),
        why=(
            "Training cannot start; converting inside the loop hides the cost, converting once where the "
            "data is loaded is the fix."
        ),
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `mat1 and mat2 must have the same dtype`, `Input type (...) and weight type (...) should"
            " be the same` and `expected scalar type X but found Y`), finds the module that raised from the "
            "module stack and the failing call's inputs, and names the layer, the dtypes or devices and the "
            "change to make. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Convert once where the data is loaded, not inside the training loop.",
        ),
        wrong="""
x = torch.from_numpy(np_images)    # uint8 or float64
out = model(x)
""",
        right="""
x = torch.from_numpy(np_images).float() / 255
out = model(x)
""",
    ),
    CodeInfo(
        code="dtype.crash-target-dtype",
        severity="error",
        step="implement & debug",
        title="Crash: targets have the wrong dtype for the loss",
        meaning=(
            "The loss rejected the target's dtype: float class labels for cross_entropy (it wants int64 "
            "class indices), or integer targets for BCE (it wants float)."
        ),
        why="Training cannot start until the labels are built with the right dtype.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `expected scalar type Long but found Float` and `Found dtype Long but expected Float`), "
            "finds the module that raised from the module stack and the failing call's inputs, and names the"
            " layer, the dtypes or devices and the change to make. The original traceback is printed "
            "afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Build the label tensor with the right dtype where the dataset is made.",
        ),
        wrong="""
y = torch.tensor(labels, dtype=torch.float32)
loss = F.cross_entropy(logits, y)
""",
        right="""
y = torch.tensor(labels, dtype=torch.long)
loss = F.cross_entropy(logits, y)
""",
    ),
    CodeInfo(
        code="dtype.float64-model",
        severity="warning",
        step="implement & debug",
        title="Model trained in float64",
        meaning=(
            "The model's parameters are float64, usually after `model.double()` to match numpy's default "
            "float64 data."
        ),
        why=(
            "Float64 is several times slower than float32 on CPU and far slower on most GPUs, and it is "
            "rarely intended. Deliberate float64 (under torch.set_default_dtype(torch.float64), or optimised"
            " by L-BFGS, which needs the extra digits) is reported as info at most."
        ),
        detection=(
            "The parameters' dtype is read at the first optimizer step, when the optimizer (and so L-BFGS) "
            "is known, together with the default dtype."
        ),
        fixes=(
            "Convert the data to float32 once, where it is loaded: X = torch.from_numpy(X).float() (or "
            "torch.tensor(X, dtype=torch.float32)); numpy arrays are float64 by default.",
            "Keep {model} in float32: remove {model}.double() / .to(torch.float64) (float64 is 2-30x slower"
            " on CPU and far slower on GPUs).",
            "If you really need float64 (e.g. a numerical-precision study), set it on purpose with "
            "torch.set_default_dtype(torch.float64) and ignore this warning.",
        ),
        wrong="""
X = torch.from_numpy(np_X)          # float64
model = Net().double()
""",
        right="""
X = torch.from_numpy(np_X).float()  # convert the data once
model = Net()
""",
    ),
    CodeInfo(
        code="dtype.half-precision-weights",
        severity="warning",
        step="implement & debug",
        title="Optimizer updating float16/bfloat16 weights directly",
        meaning=(
            "An optimizer steps parameters stored in float16 or bfloat16 with no float32 master copy (e.g. "
            "after `model.half()`)."
        ),
        why=(
            "Updates smaller than the weight's resolution in half precision are rounded away, so small "
            "learning rates do nothing and training stalls; Adam's eps may also underflow."
        ),
        detection=(
            "At optimizer steps the dtype of the parameters it holds is read; the finding counts the "
            "half-precision tensors and gives the dtype's resolution."
        ),
        fixes=(
            "Keep the weights in float32 and run only the forward pass in low precision: with "
            "torch.autocast(device_type='{device}', dtype=torch.{dtype}): loss = ...; remove model.half() /"
            " .to(torch.{dtype}).",
            "With float16 autocast also scale the loss: scaler = torch.amp.GradScaler('{device}'); "
            "scaler.scale(loss).backward(); scaler.step({optimizer}); scaler.update().",
        ),
        wrong="""
model = Net().half()
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
""",
        right="""
model = Net()                              # float32 master weights
with torch.autocast("cuda", dtype=torch.bfloat16):
    loss = loss_fn(model(x), y)
""",
    ),
    CodeInfo(
        code="dtype.uint8-wraparound",
        severity="error",
        step="implement & debug",
        title="uint8 arithmetic wraps around before the conversion to float",
        meaning=(
            "An image tensor still in `uint8` is centred, shifted or scaled (`x - 128`, `x + noise`, "
            "`x * 2`): the result wraps modulo 256 without an error (100 - 128 gives 228)."
        ),
        why="Dark pixels become bright ones: the inputs are scrambled before they reach the model.",
        detection=(
            "A `sub`/`add`/`mul` (operator or function, not in place) whose result is `uint8` and differs "
            "from the same arithmetic done in int32 on at least 0.1% of its elements (tensors up to 1M "
            "elements are compared). Arithmetic that stays in range (`255 - x`, `x // 2`) stays quiet."
        ),
        fixes=(
            "Convert to float before the arithmetic at {site}: x.float() {symbol} ... (or x.to(torch.int16)); "
            "uint8 wraps modulo 256.",
            "Scale after converting: x = x.float() / 255, then normalise with the mean and std.",
        ),
        wrong="""
x = images - 128                  # images: uint8 -> wraps
x = x.float() / 128
""",
        right="""
x = (images.float() - 128) / 128
""",
    ),
    CodeInfo(
        code="dtype.continuous-values-truncated",
        severity="warning",
        step="implement & debug",
        title="Continuous values truncated to integers, then trained on as numbers",
        meaning=(
            "Float values with fractional parts were converted to an integer dtype "
            "(`torch.tensor(y, dtype=torch.long)`, `.long()`, `.int()`, `.to(torch.int64)`), which drops the "
            "fractional part without a warning, and the whole numbers are later used as regression targets "
            "or model inputs (after `.float()`)."
        ),
        why=(
            "Every value is rounded toward zero: 2.97 becomes 2. The model learns a staircase of the true "
            "relation and its error can never fall below the truncation's."
        ),
        detection=(
            "The function mode watches conversions to integer dtypes (data preparation included): at least 8 "
            "values, at least 50% of the finite ones with a fractional part, and the truncation error "
            "`x - trunc(x)` carrying at least 2% of their variance. Reported when, on a sampled training "
            "step, the float target of a regression loss (mse/l1/smooth_l1/huber) or a model's float input "
            "holds only whole numbers (two or more distinct), all among that conversion's results, with the "
            "same shape per example. Binning into class ids for a classification loss, integer labels "
            "stored as floats and whole-number targets that were never truncated (counts) stay quiet."
        ),
        fixes=(
            "Keep the values as floats at {site}: use dtype=torch.float32 (or `.float()`) instead of "
            "{conversion}.",
            "If the integers were meant as class ids, train a classifier on them (cross_entropy), not a "
            "regression.",
        ),
        wrong="""
yt = torch.tensor(y, dtype=torch.long)       # y = [2.73, 0.41, ...] -> [2, 0, ...]
loss = F.mse_loss(model(x), yt.float())
""",
        right="""
yt = torch.tensor(y, dtype=torch.float32)
loss = F.mse_loss(model(x), yt)
""",
    ),
)
