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
            "their input. A unit is dead when its output is 0 for every sample in the newest sampled "
            "training batches (about 96 positions, at least 64); a layer warns when >= 60% of its units are "
            "dead at 3 consecutive sampled steps; a narrow layer (fewer than 4 units) only when all of them "
            "are (no signal passes it at all). The finding's first step is that of the oldest batch behind "
            "the first dead share. It is info when the model learns anyway: 16 or more live units and a "
            "training loss at most 30% of a constant prediction's (or of its first loss, from 50 losses "
            "on), or 2-15 live units and a loss at most 15% of a known constant prediction's (judged from "
            "200 losses on, or at the end of the run)."
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
)
