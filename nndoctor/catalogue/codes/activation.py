"""Finding codes of the ``activation`` category: dead ReLUs, saturated tanh/sigmoid."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="activation.dead-relu",
        severity="warning",
        step="implement & debug",
        title="Dead ReLU units",
        meaning=(
            "Most units of a hidden ReLU layer output 0 for every sample: they are dead, and a dead unit "
            "gets no gradient, so it never recovers."
        ),
        why=(
            "The layer's capacity is gone; often caused by a learning rate that is too high, a large "
            "negative bias, or a bad initialisation."
        ),
        detection=(
            "ReLU calls are seen in both styles (nn.ReLU and F.relu); the layer is the module that produced "
            "their input, or, for a layer written without a module (relu(x @ w + b), F.linear on weight "
            "tensors), the weight found in the input's autograd graph, judged once a backward shows the ReLU "
            "feeding a later weighted op. A unit is dead when its output is 0 for every sample in the newest sampled "
            "training batches (about 96 positions, at least 64); a layer warns when >= 60% of its units are "
            "dead at 3 consecutive sampled steps; a narrow layer (fewer than 4 units) only when all of them "
            "are (no signal passes it at all). The finding's first step is that of the oldest batch behind "
            "the first dead share. It is info when the model learns anyway: 16 or more live units and a "
            "training loss at most 30% of a constant prediction's (or of its first loss, from 50 losses "
            "on), or 2-15 live units and a loss at most 15% of a known constant prediction's (judged from "
            "200 losses on, or at the end of the run). A layer with 16 or more live units whose loss is "
            "already below 60% of its first waits for the end of the run to be judged, and is info when "
            "the run ends before 50 losses (too short to tell whether the live units suffice). With binary "
            "cross entropy on soft targets (grey-level pixels of an autoencoder or VAE), these shares are "
            "of the loss above the targets' own entropy, which even a perfect model pays."
        ),
        fixes=(
            "Lower the learning rate (large early updates push ReLU units into the negative region for "
            "good) or add warm-up.",
            "Use nn.LeakyReLU(0.01) / nn.GELU after {location}, or put nn.BatchNorm before the ReLU.",
            "Initialise {location} with nn.init.kaiming_normal_(w, nonlinearity='relu') and zero (not "
            "negative) biases.",
        ),
        wrong="""
nn.init.constant_(layer.bias, -5.0)
opt = torch.optim.SGD(model.parameters(), lr=1.0)
""",
        right="""
nn.init.kaiming_normal_(layer.weight, nonlinearity="relu"); nn.init.zeros_(layer.bias)
opt = torch.optim.SGD(model.parameters(), lr=0.01)   # or LeakyReLU
""",
    ),
    CodeInfo(
        code="activation.saturated",
        severity="warning",
        step="implement & debug",
        title="Saturated tanh/sigmoid units",
        meaning=(
            "Most pre-activations of a hidden tanh or sigmoid layer sit where its derivative is almost 0 "
            "(the flat tails)."
        ),
        why=(
            "Saturated units pass almost no gradient, so the layers below learn very slowly; typical of "
            "unnormalised inputs or too large an initial scale."
        ),
        detection=(
            "More than 50% of the pre-activations where the local derivative is below 1% of its maximum (|x|"
            " > 3 for tanh, |x| > 5.3 for sigmoid), at 3 consecutive sampled steps, for hidden activations "
            "only (an output sigmoid may be confident). A tanh inside GELU's tanh approximation or Mish is "
            "not counted."
        ),
        fixes=(
            "Normalise the inputs of {location} (nn.BatchNorm1d / nn.LayerNorm before the {activation}) so "
            "pre-activations stay within +-2.",
            "Initialise {location} with nn.init.xavier_normal_(w, "
            "gain=nn.init.calculate_gain('{activation}')) instead of a larger scale.",
            "Use ReLU/GELU in the hidden layers, or lower the learning rate if units saturate only after "
            "the first steps.",
        ),
        wrong="""
h = torch.tanh(self.fc(x_raw))          # inputs in the thousands
""",
        right="""
h = torch.tanh(self.fc((x_raw - mu) / sd))
""",
    ),
    CodeInfo(
        code="activation.identity-activation",
        severity="warning",
        step="implement & debug",
        title="An activation that is the identity",
        meaning=(
            "A LeakyReLU (or RReLU) has a negative slope of 1, so it returns its input unchanged: "
            "`nn.LeakyReLU(True)` sets negative_slope=True=1.0, not inplace=True."
        ),
        why=(
            "Without a nonlinearity between them, any number of Linear/Conv layers compute one linear map: "
            "the network is a linear model and stops at the best linear fit (XOR-like or radial classes stay "
            "at chance)."
        ),
        detection=(
            "At the first optimizer step of each trained model with at least two layers with weights: "
            "LeakyReLU/RReLU modules whose negative slope is exactly 1 (warning) or within 0.1 of 1 "
            "(nearly linear: info)."
        ),
        fixes=(
            "Pass inplace by name: nn.LeakyReLU(inplace=True) or nn.LeakyReLU(0.01, True) for {modules}.",
            "Use a slope well below 1 (0.01-0.2), or nn.ReLU().",
        ),
        wrong="""
nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(True), nn.Linear(64, 2))
""",
        right="""
nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(inplace=True), nn.Linear(64, 2))
""",
    ),
    CodeInfo(
        code="activation.softmax-as-hidden-activation",
        severity="warning",
        step="implement & debug",
        title="Softmax used as a hidden activation",
        meaning=(
            "A hidden layer's activation is a softmax: a weighted layer receives rows that are >= 0, sum to 1 "
            "and are almost uniform (each value about 1/width), instead of a ReLU/tanh-like hidden signal."
        ),
        why=(
            "A softmax over k hidden units squashes every row onto the probability simplex, so the next layer "
            "sees inputs of about 1/k that barely differ between samples; the signal and its gradient shrink "
            "by about k and the network learns very slowly or not at all."
        ),
        detection=(
            "On sampled training steps, the input of every nn.Linear inside a model (and, for networks on "
            "weight tensors, of every matmul/linear by a trainable weight that a model or optimizer holds) is "
            "looked up in the function mode's provenance: it warns when that input was made by softmax over its "
            "last dimension, has at least 8 columns, and its rows are spread out (mean row maximum below "
            "16/width and below 0.3, whatever the layer's init scale) at 3 sampled steps in a row. Softmax "
            "feeding a matmul with a computed tensor (attention) or sharp, selective probabilities "
            "(Gumbel-softmax, routing) do not count; neither does a model input."
        ),
        fixes=(
            "Replace the softmax before {location} with nn.ReLU() (or GELU/tanh); keep softmax for the output "
            "layer only, and there only when the loss expects probabilities.",
            "If the softmax is an intended gating/attention weight, multiply it with values instead of "
            "feeding it to {location} as features.",
        ),
        wrong="""
model = nn.Sequential(nn.Linear(64, 64), nn.Softmax(dim=1), nn.Linear(64, 10))
""",
        right="""
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
""",
    ),
)
