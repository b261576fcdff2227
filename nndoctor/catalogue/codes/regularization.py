"""Finding codes of the ``regularization`` category: too much weight decay, dropout or other regularisation."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="regularization.dropout-too-strong",
        severity="warning",
        step="improve",
        title="Dropout too strong to learn",
        meaning=(
            "Dropout drops most units (p >= 0.8 is almost always a keep probability passed as a drop "
            "probability)."
        ),
        why="The network cannot fit the training data.",
        detection=(
            "F.dropout calls (nn.Dropout calls it too) are seen in training forwards: p >= 0.8 is reported "
            "after a few sampled batches; 0.65 <= p < 0.8 only at the end of the run, when the training loss"
            " has barely fallen."
        ),
        fixes=(
            "Set the dropout ({site}) to p=0.1..0.5: p is the probability to DROP a unit (p={p} keeps only "
            "{keep:.0%}), unlike TensorFlow's keep_prob.",
            "Start without dropout, check the model can fit the training data, then add it back only if "
            "validation loss shows overfitting.",
        ),
        wrong="""
self.drop = nn.Dropout(p=0.9)      # meant: keep 90%
""",
        right="""
self.drop = nn.Dropout(p=0.1)
""",
    ),
    CodeInfo(
        code="regularization.label-smoothing-too-strong",
        severity="warning",
        step="improve",
        title="Label smoothing leaves no class in the targets",
        meaning=(
            "Label smoothing is so strong that the targets no longer name a class: label_smoothing=1.0 (a "
            "typo for 0.1) makes every target uniform, and hand-made smoothing with eps = 1 does the same."
        ),
        why="The loss no longer depends on the labels: the model learns nothing and stays at log(K).",
        detection=(
            "Training loss calls on sampled steps: cross_entropy with label_smoothing >= 1 is an error at once; "
            "0.5 <= label_smoothing < 1 is info at the end of the run. Probability targets of cross_entropy "
            "whose every row is uniform, or binary-loss targets that are all 0.5, in >= 3 sampled batches are a "
            "warning at the end of the run when no training classification loss had informative targets "
            "(an auxiliary uniform-target term beside a real loss stays quiet)."
        ),
        fixes=(
            "Use a small smoothing at {site}: nn.CrossEntropyLoss(label_smoothing=0.1) (0.05-0.2 is usual).",
            "If the smoothing is hand-made, check the mix: y * (1 - eps) + eps / K with eps around 0.1.",
        ),
        wrong="""
loss_fn = nn.CrossEntropyLoss(label_smoothing=1.0)
""",
        right="""
loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
""",
    ),
    CodeInfo(
        code="regularization.loss-penalty-too-strong",
        severity="warning",
        step="improve",
        title="A hand-written penalty in the loss outweighs the data loss",
        meaning=(
            "A weight penalty written into the loss by hand (`lam * sum(p.pow(2).sum() ...)`, "
            "`torch.norm(w)`, L1) is larger than the data loss and drives the update."
        ),
        why=(
            "The model cannot fit; the weight_decay check does not see it because the optimizer gets a "
            "single gradient."
        ),
        detection=(
            "On sampled steps the autograd graph of the tensor given to backward() is split into terms; a "
            "term built from parameters only (no matmul/conv/embedding) is a penalty. A warning needs, at >="
            " 3 sampled steps, a penalty at least as large as the data loss while the data loss stays above "
            "half its first value, and one more sign: penalty >= 10x the data loss, the update aligned with "
            "the penalty (cosine >= 0.9), or a data loss that has not fallen 10%."
        ),
        fixes=(
            "Lower the penalty's weight (lam) about {factor}x, so that the penalty ({penalty}) is a small "
            "fraction (~1-10%) of the data loss ({data}): typical L2 weights are 1e-5..1e-3 on a summed "
            "penalty.",
            "Or drop the term and use the optimizer's weight_decay= (AdamW for Adam), which the optimizer "
            "applies without changing the loss you monitor.",
            "Penalise weights only (not biases / norm layers) and scale the penalty by the number of "
            "samples if the data loss is a mean over the batch.",
        ),
        wrong="""
loss = ce + 1.0 * sum(p.pow(2).sum() for p in model.parameters())
""",
        right="""
loss = ce + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())
""",
    ),
    CodeInfo(
        code="regularization.start-without",
        severity="info",
        step="start simple",
        title="Regularisation from the start (start review)",
        meaning="The first version already has dropout layers or weight decay.",
        why=(
            "Advice: the guide adds regularisation only once the model overfits (variance dominates); it "
            "slows down finding bugs and fitting."
        ),
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when the model has"
            " dropout layers or the optimizer has weight decay."
        ),
        fixes=(
            "Train the first version without dropout and weight decay; add them back when train-val error "
            "is much worse than train error.",
        ),
        wrong="""
nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 2))
""",
        right="""
nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
""",
    ),
    CodeInfo(
        code="regularization.start-without-normalisation",
        severity="info",
        step="start simple",
        title="Normalisation layers from the start (start review)",
        meaning="The first version already has BatchNorm/LayerNorm/GroupNorm layers.",
        why="Advice: the guide adds them later; they can hide bugs in the first version.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when the model has"
            " normalisation layers."
        ),
        fixes=(
            "Remove BatchNorm/LayerNorm for the first version, add them back when it trains.",
        ),
        wrong="""
nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))
""",
        right="""
nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
""",
    ),
    CodeInfo(
        code="regularization.weights-clipped",
        severity="warning",
        step="improve",
        title="Weights clamped into a small box after every step",
        meaning=(
            "After each optimizer step every weight is clamped to [-c, c] (p.data.clamp_(-c, c)): WGAN critic "
            "clipping applied to a model that is not a WGAN critic."
        ),
        why=(
            "With every weight at most c (0.01 in WGAN recipes) a few layers can only output tiny values; the "
            "optimizer keeps pushing the weights into the wall and the loss stops far above what the model "
            "could reach. It is a Lipschitz constraint for a critic, not a regulariser."
        ),
        detection=(
            "On sampled steps, before the optimizer's step: all weight tensors it trains (dim >= 2) share the "
            "same largest magnitude c > 0 and >= 25% of each tensor's entries sit exactly on it, on 3 sampled "
            "steps in a row. A warning at the end when the training loss fell by < 15% of its start (>= 30 "
            "losses) with a single optimizer; info otherwise (a WGAN critic, a clipped model that trains)."
        ),
        fixes=(
            "Remove the clamp after {optimizer}.step(): weight clipping belongs to a WGAN critic only.",
            "To limit weights, use weight_decay (or nn.utils.parametrizations.spectral_norm for a Lipschitz "
            "constraint); to limit steps, clip gradients (torch.nn.utils.clip_grad_norm_).",
        ),
        wrong="""
opt.step()
for p in model.parameters():
    p.data.clamp_(-0.01, 0.01)
""",
        right="""
opt.step()                      # no weight clamp outside a WGAN critic
""",
    ),
    CodeInfo(
        code="regularization.weight-decay-too-strong",
        severity="warning",
        step="improve",
        title="Weight decay dominates the update",
        meaning="The weight-decay term outweighs the gradient: the weights shrink instead of learning.",
        why=(
            "The model cannot fit the training data (high bias); healthy settings sit at decay/gradient "
            "ratios of 0.001-0.05."
        ),
        detection=(
            "At sampled steps, per parameter group: for L2-style decay (SGD, Adam, RMSprop weight_decay) "
            "wd*|w| is compared with |g| over the entries the batch gives a gradient (an embedding's unused "
            "rows are left out); for decoupled decay (AdamW) with Adam's normalised step. A group warns when "
            "the decay wins (ratio >= 1, AdamW >= 0.5) at >= 3 sampled steps while the weights shrink by "
            ">= 3%; a decay about the size of the gradient (winning at some sampled steps only, median ratio "
            "under 1.5x the limit) also needs the training loss held back: not while "
            "it still falls (>= 5% below its first tenth with a Mann-Kendall trend z <= -3 over its second "
            "half; with under 10 losses the run is judged at its end)."
        ),
        fixes=(
            "Lower weight_decay of {optimizer} from {weight_decay} to ~{suggested} (typical: 1e-4..5e-4 for"
            " SGD/Adam L2, 0.01..0.1 for AdamW).",
            "With Adam, use torch.optim.AdamW (decoupled decay) rather than Adam(weight_decay=...).",
            "Exclude biases and normalisation weights from decay with a second parameter group "
            "(weight_decay=0).",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1.0)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)
""",
    ),
    CodeInfo(
        code="regularization.input-noise-too-strong",
        severity="warning",
        step="improve",
        title="Noise augmentation far larger than the inputs' own spread",
        meaning=(
            "Random noise added to the training inputs (`x + std * torch.randn_like(x)`) is larger than the "
            "inputs' own variation across the batch: e.g. std 3.0 on inputs standardised to std 1."
        ),
        why=(
            "The examples are buried under the noise: the model sees mostly noise, learns little of the "
            "signal and underfits, while its evaluation (on clean inputs) meets a distribution it never "
            "saw in training."
        ),
        detection=(
            "On sampled training steps the function mode follows random tensors made outside the model "
            "(randn/randn_like/rand/rand_like/normal, normal_/uniform_), scaled by numbers, added to a tensor "
            "of the same shape that needs no gradient (data, not a latent) (or `torch.normal(x, std)`) and carried through to/float/clamp/views into the "
            "model's forward; the ratio ||noise - mean|| / ||x - batch mean of x|| is recorded. Over at least 3 "
            "sampled steps at the end of the run, a median ratio >= 2 is a warning, >= 1.5 info; during the "
            "run, a median >= 2 over 5 sampled steps is reported at once. With several optimizers (a GAN's "
            "discriminator trained with instance noise) it is info only. A loss "
            "whose target has the noised input's shape (denoising, diffusion) makes the noise the task: "
            "quiet; noise scaled per example by a tensor, dropout on inputs, mixup, crops and flips are not "
            "followed. Noise drawn with numpy inside the training Dataset's __getitem__ (np.random.normal, "
            "randn, uniform...) is measured at the end of the run: 32 examples are read twice with numpy's "
            "draws recorded (random states restored); when the two reads differ by one scale times the draws, "
            "the same ratio is computed from the clean part and the noise."
        ),
        fixes=(
            "Scale the noise at {site} down to a fraction of the inputs' spread: multiply its std by about "
            "{suggested_scale} (std ~0.1-0.3 of standardised inputs).",
            "Check that the inputs were standardised before the noise was added: noise sized for std-1 "
            "inputs buries inputs of a smaller scale.",
        ),
        wrong="""
xb = X[b] + 3.0 * torch.randn_like(X[b])     # X standardised to std 1
""",
        right="""
xb = X[b] + 0.1 * torch.randn_like(X[b])
""",
    ),
)
