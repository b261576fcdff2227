"""Finding codes of the ``init`` category: poor initialisation."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="init.activation-scale",
        severity="warning",
        step="start simple",
        title="The initial scale makes the signal vanish or explode with depth",
        meaning=(
            "With the custom initialisation used, the output spread of the layers shrinks or grows by orders"
            " of magnitude from the first layer to the last in the first forward pass, or (tanh/sigmoid, which"
            " bound the signal) the weights are so large that every hidden layer starts saturated."
        ),
        why=(
            "A signal that vanishes or explodes through the layers gives vanishing or exploding gradients "
            "from the first step; the scheme matching the activation fixes it."
        ),
        detection=(
            "During the first training forward, the output spread across the batch of every weighted layer "
            "is measured (std over samples, averaged over units); the activation seen chooses the "
            "recommended scheme (He for ReLU, Glorot for tanh/sigmoid). PyTorch's default initialisation is "
            "recognised and never reported for its scale. Reported when the spread changes over 100x from the "
            "first to the last layer (70% of the layers the same way), or, for a tanh/sigmoid network, when at "
            "least 2 and 70% of the hidden layers have a weight std >= 3x 1/sqrt(fan_in) and pre-activations "
            "with a root mean square >= 2.5 (saturated from the first step; e.g. N(0, 1) weights), or, for a "
            "ReLU network of any depth from 2 layers, when at least 2 and two thirds of the layers have a "
            "custom weight std >= 4x 1/sqrt(fan_in) (He: 1.4x), the spread grows >= 5x from the first to the "
            "last layer and the model's output starts with a root mean square >= 20."
        ),
        fixes=(
            "Initialise the weights with {scheme} so each layer keeps the signal's scale.",
            "Or drop the custom initialisation: PyTorch's default keeps the std within ~2.5x per layer.",
            "Add normalisation layers (nn.BatchNorm1d/2d or nn.LayerNorm) between the {depth} weighted "
            "layers if the depth must stay.",
        ),
        wrong="""
for m in model.modules():
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.01)
""",
        right="""
for m in model.modules():
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
""",
    ),
    CodeInfo(
        code="init.initial-loss-too-high",
        severity="warning",
        step="start simple",
        title="The loss at initialisation is far above a uniform guess",
        meaning=(
            "The first training cross-entropy, computed on the logits of the untrained model, is several "
            "times ln(C), the loss of a uniform prediction over the C classes: the logits start large and "
            "confidently wrong."
        ),
        why=(
            "A classifier whose output layer starts small predicts about uniformly, so its first loss is about "
            "ln(C) (\"verify the loss at init\"). Far above it, the initial weights are too large (an std of 2.0 "
            "where 0.02 was meant, an N(0, 1) embedding tied to the output layer): the first hundreds of steps "
            "go to shrinking them, and normalisation layers hide the scale everywhere but in the loss."
        ),
        detection=(
            "The first training call of cross_entropy with class-index targets is read: nndoctor computes the "
            "plain per-target cross-entropy logsumexp(z) - z[y] itself (whatever the reduction, class weights "
            "or ignored index; targets out of range left out) and compares it with ln(C), C the logits' width. "
            "A warning at the end of the run when it is at least 3x ln(C) and 3 nats above it, unless the "
            "layer-by-layer init check, the inputs' preprocessing or the loss input already explain it, and only "
            "when some Linear, conv or embedding weight starts far above a normal scale (std * sqrt(fan_in) >= 4; "
            "PyTorch's default ~0.58): scaled cosine logits (ArcFace, CosFace: s * cos) start high by design. "
            "Soft (probability) targets are not read."
        ),
        fixes=(
            "Initialise the output layer small (nn.init.normal_(w, std=0.02) or zeros) and check the std of the "
            "custom initialisations feeding it: the first loss should be close to {uniform_loss} (ln {classes}).",
            "If pretrained weights are loaded, check that their classes are the labels' classes.",
        ),
        wrong="""
nn.init.normal_(module.weight, mean=0.0, std=2.0)
""",
        right="""
nn.init.normal_(module.weight, mean=0.0, std=0.02)
""",
    ),
    CodeInfo(
        code="init.constant-weights",
        severity="error",
        step="start simple",
        title="Weights initialised to a constant",
        meaning="Every weight of a layer starts with the same value (e.g. zeros or `fill_(0.5)`).",
        why=(
            "Every unit computes the same output and gets the same gradient, so the units can never differ "
            "(symmetry is never broken): the layer acts as a single unit."
        ),
        detection=(
            "At the first optimizer step, before any update, each weight matrix is checked for all-equal "
            "values (and identical rows). An error when every weight layer starts so (the network learns "
            "like one unit per layer); a warning for a single hidden layer. The last layer and "
            "zero-initialised layers after the first (ends of residual branches) are deliberate designs and "
            "left alone."
        ),
        fixes=(
            "Remove the constant initialisation of {layers} (e.g. nn.init.constant_/zeros_/fill_): the "
            "PyTorch default, or {scheme}, gives every unit different weights.",
            "If you zero-initialise on purpose, do it only for the last layer of a branch (the output head "
            "or a residual branch), never for every layer.",
        ),
        wrong="""
nn.init.zeros_(self.fc1.weight)
""",
        right="""
nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
""",
    ),
    CodeInfo(
        code="init.start-constant-weights",
        severity="error",
        step="start simple",
        title="Constant weights (start review)",
        meaning="Every weight of a layer has the same value before training.",
        why=(
            "Units stay identical (symmetry is never broken). An error for hidden layers, a warning for the "
            "last layer."
        ),
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; every Linear/Conv "
            "weight is checked for all-equal values."
        ),
        fixes=(
            "Initialise {layer} randomly: nn.init.kaiming_normal_ (ReLU) or xavier_normal_ (tanh).",
        ),
        wrong="""
nn.init.constant_(self.fc.weight, 0.1)
""",
        right="""
nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
""",
    ),
    CodeInfo(
        code="init.start-scale",
        severity="warning",
        step="start simple",
        title="Weight scale far from He/Glorot (start review)",
        meaning=(
            "A layer's weight std is more than 10x away (above or below) from the He scale (ReLU models) or "
            "the Glorot scale (tanh/sigmoid models)."
        ),
        why="Activations will explode or vanish through the layers.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; each Linear/Conv weight"
            " std is compared with sqrt(2 / fan_in) (ReLU) or sqrt(2 / (fan_in + fan_out)); a warning "
            "outside 0.1x..10x."
        ),
        fixes=(
            "Use nn.init.{scheme} for {layer}.",
        ),
        wrong="""
nn.init.normal_(self.fc.weight, std=1.0)     # fan_in 1024
""",
        right="""
nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
""",
    ),
    CodeInfo(
        code="init.start-scheme",
        severity="info",
        step="start simple",
        title="Initialisation does not match the activation (start review)",
        meaning=(
            "The weights are, in median, away from the scheme that fits the activation (He for ReLU, Glorot "
            "for tanh); PyTorch's default init is about 0.41x He."
        ),
        why=(
            "Advice: the guide starts with the init that matches the activation, which keeps the signal's "
            "scale through depth."
        ),
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when the median "
            "ratio of weight std to the ideal scale is outside 0.7..1.4 and no other init finding was made."
        ),
        fixes=(
            "Initialise Linear/Conv weights with {scheme}.",
        ),
        wrong="""
model = nn.Sequential(nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))   # default init
""",
        right="""
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
""",
    ),
    CodeInfo(
        code="init.symmetric-weights",
        severity="warning",
        step="start simple",
        title="Identical rows in a weight matrix",
        meaning="All rows (units or filters) of a weight matrix are identical at the start of training.",
        why=(
            "Identical units get identical gradients and stay identical, so the layer has the capacity of "
            "one unit."
        ),
        detection=(
            "At the first optimizer step, before any update, each weight matrix's rows are compared; a "
            "hidden layer (not the last one) whose rows are all identical is reported."
        ),
        fixes=(
            "Give the units of {layers} different initial weights: use the default init or {scheme} instead"
            " of copying one row/filter to all units.",
        ),
        wrong="""
w = torch.randn(1, 64).repeat(128, 1)
self.fc.weight.data.copy_(w)
""",
        right="""
nn.init.xavier_normal_(self.fc.weight)
""",
    ),
    CodeInfo(
        code="init.reinitialised-during-training",
        severity="warning",
        step="start simple",
        title="Weights re-initialised during training",
        meaning=(
            "The model's weights are initialised again while it trains (model.apply(init_weights), "
            "reset_parameters() or load_state_dict(initial_state) inside the epoch loop), so each epoch "
            "starts again from random weights."
        ),
        why=(
            "Everything learned so far is thrown away at every re-initialisation: the loss jumps back to "
            "its starting level and saw-tooths instead of going down, and the final model has only had the "
            "last stretch of training (it reads as a too-high learning rate or a loss that goes up)."
        ),
        detection=(
            "On sampled optimizer steps the two largest weight matrices the optimizer trains are compared "
            "with their copy from the previous sampled step: a weight replaced by unrelated values "
            "(changed by >= 50% of its norm with a cosine similarity < 0.5) or brought back to its initial "
            "values (distance to them < 25% of what it was, after moving >= 5%) was re-initialised. "
            "Reported when that happened and the loss (running median) went back to within 30% of its "
            "start after having fallen by >= 15% (and 3x its step-to-step noise) at least twice, one of "
            "those in an interval where the weights were reset. Once one optimizer step itself moved a "
            "tracked matrix by >= 10% of its norm (measured around step() on sampled steps), replaced "
            "weights are the learning rate's doing (lr.too-high) and only a return to the initial values "
            "counts. A reset at (nearly) every step (nn.init inside forward(), apply(init) in the batch "
            "loop) leaves no saw-tooth since nothing is learned: it is reported when a tracked matrix was "
            "replaced by unrelated values in >= 3 sampled intervals and >= 60% of those compared, each time "
            "by >= 3x what the optimizer's own steps (median measured update times the steps between the "
            "samples) could move it, and that median is < 10% of the weights. "
            "A model rebuilt with a new optimizer (cross-validation folds) has new "
            "tensors and is not this; a model rebuilt while the optimizer keeps the old one is "
            "grad-flow.optimizer-wrong-params."
        ),
        fixes=(
            "Initialise {model} once, before the training loop: move the re-initialisation ({how}) out of "
            "the epoch loop (and out of forward()).",
            "To restart training on purpose (a new fold or trial), build a new model AND a new optimizer "
            "over it.",
        ),
        wrong="""
for epoch in range(epochs):
    model.apply(init_weights)
    for x, y in loader:
        ...
""",
        right="""
model.apply(init_weights)
for epoch in range(epochs):
    for x, y in loader:
        ...
""",
    ),
    CodeInfo(
        code="init.lstm-forget-gate-closed",
        severity="warning",
        step="start simple",
        title="LSTM forget gates initialised (nearly) closed",
        meaning=(
            "The forget-gate bias of an LSTM (the slice [H:2H] of bias_ih + bias_hh: PyTorch orders the gates "
            "input, forget, cell, output) starts at -1 or below, so each step keeps <= 27% of the cell state."
        ),
        why=(
            "With the forget gate closed the cell forgets its input within a few steps and the gradient "
            "through time vanishes: the LSTM cannot learn dependencies longer than that. The usual recipe "
            "is the opposite sign: +1 on the forget bias (Jozefowicz et al. 2015); PyTorch's default is ~0."
        ),
        detection=(
            "At the first step of each optimizer (before it updates the weights), every nn.LSTM layer / "
            "nn.LSTMCell it trains: the summed forget-gate bias has a mean <= -1 with at least half of its "
            "units <= -1."
        ),
        fixes=(
            "Fill the forget slice of {layer}'s biases with +1 (or leave PyTorch's default): "
            "b.data[H:2*H].fill_(1.0) for b in (bias_ih_l0, bias_hh_l0), H = hidden_size.",
            "Check the gate order when filling bias slices: input [0:H], forget [H:2H], cell [2H:3H], output [3H:4H].",
        ),
        wrong="""
for name, b in lstm.named_parameters():
    if "bias" in name:
        b.data[H:2 * H].fill_(-2.0)        # meant +2 (or another gate)
""",
        right="""
for name, b in lstm.named_parameters():
    if "bias" in name:
        b.data[H:2 * H].fill_(1.0)         # forget gate open at the start
""",
    ),
    CodeInfo(
        code="init.zero-norm-weight",
        severity="warning",
        step="start simple",
        title="Normalisation weights initialised to zero outside a residual branch",
        meaning=(
            "A BatchNorm/LayerNorm/GroupNorm layer starts with its weight (gamma) all zero and, with no skip "
            "connection around it, the model's output is the same for every sample of the batch."
        ),
        why=(
            "A zero gamma makes the layer output its bias for every input; the zero-init trick only works at "
            "the end of a residual branch, where the skip path carries the signal. In a plain stack nothing "
            "reaches the output, the ReLU after it passes no gradient back, and the gamma never grows: the "
            "network predicts one constant."
        ),
        detection=(
            "On sampled training steps: a normalisation layer whose affine weight is exactly zero everywhere, "
            "and the root model's output identical for every sample of the batch (largest std over the batch "
            "below 1e-6 of its scale) at 3 sampled steps in a row. A zero-gamma residual branch (the output "
            "still varies) and a zero-initialised head that learns after its first step are not reported."
        ),
        fixes=(
            "Initialise the weight of {location} to 1 (PyTorch's default: remove the nn.init.zeros_ on it).",
            "Zero-initialise only the last normalisation layer of each residual branch (x + bn(f(x))), never "
            "a layer the whole signal must pass through.",
        ),
        wrong="""
for m in model.modules():
    if isinstance(m, nn.BatchNorm1d):
        nn.init.zeros_(m.weight)          # plain Linear-BN-ReLU stack
""",
        right="""
for block in model.blocks:            # residual blocks: x + bn2(fc2(relu(bn1(fc1(x)))))
    nn.init.zeros_(block.bn2.weight)
""",
    ),
)
