"""Finding codes of the ``loss-curve`` category: loss goes up, explodes, oscillates or plateaus."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="loss-curve.policy-gradient-surrogate",
        severity="info",
        step="implement & debug",
        title="The loss is a policy-gradient surrogate: its curve does not measure progress",
        meaning=(
            "The tensor given to backward() multiplies log-probabilities of the actions (REINFORCE, actor-critic;"
            " PPO's probability ratio) by a factor without gradient that takes both signs: an advantage or a "
            "normalised return. Its gradient is the policy gradient; its value is not an objective."
        ),
        why=(
            "The advantages are re-estimated and normalised at every batch, so the surrogate hovers around zero"
            ", rises and swings while the returns improve. Read as a training loss it looks like a too-high "
            "learning rate or a diverging run: nndoctor does not judge the learning rate or the fit from it."
        ),
        detection=(
            "On sampled steps a bounded breadth-first walk (200 nodes) of the backward tensor's autograd graph "
            "looks for a product of a differentiable term and a saved factor without gradient whose values "
            "have both signs, where the differentiable term reaches a log-probability (log_softmax, log, "
            "log_sigmoid, or a Gaussian log-density) within 8 nodes. Seen at 2 sampled backward calls: the "
            "loss curve is no longer read for lr, loss-curve and fit findings (a non-finite loss still is), "
            "and this note is given at the end. Per-sample weights >= 0, mixup and hinge losses are not it."
        ),
        fixes=(
            "Judge the run by what the policy is trained for: log the episode return (or reward, success rate)"
            " per iteration and compare it with a random policy and a published result for the environment.",
            "For the learning rate, watch the policy's entropy and the KL divergence between successive "
            "policies (PPO targets ~0.01 per update): a collapsing entropy or a large KL means steps too big.",
        ),
        wrong="""
loss = -(dist.log_prob(action) * advantage.detach()).mean()
print(f"loss {loss.item():.3f}")     # a surrogate: it rises and swings while the policy learns
""",
        right="""
loss = -(dist.log_prob(action) * advantage.detach()).mean()
print(f"return {episode_return:.2f}  entropy {dist.entropy().mean():.3f}")   # what the policy is for
""",
    ),
    CodeInfo(
        code="loss-curve.gradient-reversal",
        severity="info",
        step="implement & debug",
        title="Part of the loss is maximised through a gradient reversal: its curve does not measure progress",
        meaning=(
            "A custom autograd Function in the loss's graph passes down minus a multiple of the gradient it "
            "receives: a gradient reversal layer (domain-adversarial training, adversarial debiasing). The "
            "discriminator after it minimises its loss while the features before it maximise the same loss."
        ),
        why=(
            "The adversarial term is meant to climb towards chance (as the reversal's lambda ramps up) or to "
            "hover, so the total loss rises or stays flat while the model learns. Read as a training loss it "
            "looks like a flipped sign or a too-high learning rate: nndoctor does not judge the learning rate "
            "or the fit from it."
        ),
        detection=(
            "On sampled steps a bounded breadth-first walk (200 nodes) of the backward tensor's autograd graph "
            "finds custom Function nodes; a one-shot hook on up to 4 of them compares the gradient passed down "
            "with the one received. -c times it (c > 0, relative residual < 1e-3) at 2 sampled backward calls:"
            " the loss curve is no longer read for lr, loss-curve and fit findings (a non-finite loss still "
            "is), and this note is given at the end. A straight-through estimator is not it."
        ),
        fixes=(
            "Judge the run by the task's own loss and metric (the label classifier's loss and accuracy on the "
            "target domain), logged apart from the adversarial term.",
            "Watch the discriminator's accuracy: near chance means the features are invariant; near 100% "
            "means the reversal is too weak (ramp lambda up) and the features still give the domain away.",
        ),
        wrong="""
loss = task_loss + domain_loss        # domain_loss passes through GradReverse
print(f"loss {loss.item():.3f}")      # rises while the features become domain-invariant
""",
        right="""
loss = task_loss + domain_loss
print(f"task {task_loss.item():.3f}  domain acc {domain_acc:.2f}")   # what the model is for
""",
    ),
    CodeInfo(
        code="loss-curve.log-likelihood-minimised",
        severity="error",
        step="implement & debug",
        title="The loss is a log-likelihood, not its negative: it falls below zero without bound",
        meaning=(
            "The tensor given to backward() is built from log-probabilities (log_softmax, log of a softmax or"
            " sigmoid) with no net minus sign, e.g. the minus of the NLL dropped, `-F.cross_entropy(...)` or "
            "NLLLoss fed negated log-probabilities: the optimizer minimises the log-likelihood."
        ),
        why=(
            "Minimising a log-likelihood drives the probability of the true class to 0: the loss goes below "
            "zero and keeps falling, the logits and gradients grow, and the curve looks like an exploding loss"
            " or a too-high learning rate; lowering the lr only slows it down."
        ),
        detection=(
            "On sampled steps the autograd graph of the backward tensor is followed along a single chain of "
            "nodes that keep the sign (mean, sum, gather/index/select, views, scaling by a positive constant) "
            "or flip it (neg, nll_loss, scaling by a negative constant) down to a log-probability (<= 0). An "
            "even number of flips, a negative loss at >= 2 sampled steps, lower at the last, and no optimizer "
            "with maximize=True: reported. Sums with other terms and log-probabilities multiplied by another "
            "tensor (a policy gradient's advantage) are not judged."
        ),
        fixes=(
            "Negate the log-likelihood: the loss is -(log-probability of the target), i.e. F.nll_loss(log_probs,"
            " y) or F.cross_entropy(logits, y) on the raw logits, without an extra minus ({graph}).",
            "Feed NLLLoss the log-probabilities themselves (log_softmax output), not their negative.",
        ),
        wrong="""
log_probs = torch.log_softmax(model(x), dim=1)
loss = log_probs.gather(1, y[:, None]).mean()        # the minus of the NLL dropped
""",
        right="""
log_probs = torch.log_softmax(model(x), dim=1)
loss = -log_probs.gather(1, y[:, None]).mean()       # or F.nll_loss(log_probs, y)
""",
    ),
    CodeInfo(
        code="loss-curve.cannot-overfit-one-batch",
        severity="error",
        step="implement & debug",
        title="The model cannot overfit a single batch",
        meaning=(
            "`nndoctor diagnose` ran the overfit-one-batch stage and the loss did not reach the target (and "
            "is not merely falling slowly)."
        ),
        why=(
            "The field guide's key debugging test: a model that cannot memorise one batch has a bug or a "
            "setting that prevents learning; fix it before training further. The finding carries the first "
            "fix of each likely cause."
        ),
        detection=(
            "The symptom and ranked causes of `nndoctor overfit` are summarised; the diagnose loop stops "
            "here."
        ),
    ),
    CodeInfo(
        code="loss-curve.explodes",
        severity="error",
        step="implement & debug",
        title="The training loss explodes",
        meaning="The training loss grows by orders of magnitude or becomes NaN/Inf.",
        why=(
            "Training is lost from that point; usually the learning rate is too high, gradients explode, or "
            "an op is numerically unsafe. Reported as an error."
        ),
        detection=(
            "The training loss is read every 25 recorded losses at first, then every 1/8 of the run, and at "
            "the end. Decisions compare a change of the curve's level (a median over a window) with the "
            "noise of that level (a robust sigma from first differences), never single values; each symptom "
            "is reported with its likely causes ranked by the evidence of the run (update-to-weight ratios, "
            "parameters without gradient, optimizer settings, other findings). An explosion is reported as "
            "soon as it is seen (growth by 1000x or more over the starting level, or a non-finite loss)."
        ),
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=5.0)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.05)
""",
    ),
    CodeInfo(
        code="loss-curve.goes-up",
        severity="warning",
        step="implement & debug",
        title="The training loss goes up",
        meaning="The level of the training loss rises over the run.",
        why=(
            "The optimizer is making the model worse: a learning rate too high, a flipped sign, or gradients"
            " not cleared."
        ),
        detection=(
            "The training loss is read every 25 recorded losses at first, then every 1/8 of the run, and at "
            "the end. Decisions compare a change of the curve's level (a median over a window) with the "
            "noise of that level (a robust sigma from first differences), never single values; each symptom "
            "is reported with its likely causes ranked by the evidence of the run (update-to-weight ratios, "
            "parameters without gradient, optimizer settings, other findings). Reported mid-run only after a"
            " long stretch of steps, otherwise at the end. A rise carried by a few jumps (at most a quarter "
            "of the curve's block medians; 80% of the rise in jumps above 10% of its range and 4x the level"
            " noise), with the loss falling between the jumps and never climbing, and updates under 3e-2 of"
            " the weights, is only `info`: a curriculum, new data or learning-rate restarts do that."
        ),
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
        wrong="""
loss = -F.cross_entropy(logits, y)     # maximises the loss
""",
        right="""
loss = F.cross_entropy(logits, y)
""",
    ),
    CodeInfo(
        code="loss-curve.oscillates",
        severity="warning",
        step="implement & debug",
        title="The training loss oscillates",
        meaning=(
            "The training loss swings up and down far more than the batch-to-batch noise, without a downward"
            " trend."
        ),
        why=(
            "Usually the learning rate is too high, or the data are not shuffled (class-sorted batches pull "
            "the model back and forth)."
        ),
        detection=(
            "The training loss is read every 25 recorded losses at first, then every 1/8 of the run, and at "
            "the end. Decisions compare a change of the curve's level (a median over a window) with the "
            "noise of that level (a robust sigma from first differences), never single values; each symptom "
            "is reported with its likely causes ranked by the evidence of the run (update-to-weight ratios, "
            "parameters without gradient, optimizer settings, other findings). Reported mid-run only after a"
            " long stretch of steps, otherwise at the end. With probability targets (mixup, soft labels) "
            "cross entropy includes the targets' entropy, which changes from batch to batch: swings (and a "
            "loss back up from its minimum) within twice the spread (10th-90th percentile) of the sampled "
            "batches' target entropy are not reported."
        ),
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
        wrong="""
loader = DataLoader(ds, batch_size=64)              # sorted by class
""",
        right="""
loader = DataLoader(ds, batch_size=64, shuffle=True)
""",
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-explodes",
        severity="warning",
        step="implement & debug",
        title="One batch cannot be overfit: the loss explodes",
        meaning=(
            "`nndoctor overfit` saw the loss on one fixed batch become non-finite or exceed 10x its first "
            "value."
        ),
        why="Usually a learning rate that is too high or a numerically unsafe op.",
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; likely causes"
            " (non-finite loss, lr too high, and findings of the checks that ran) are ranked by score."
        ),
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-flipped-sign",
        severity="warning",
        step="implement & debug",
        title="The loss may have the wrong sign",
        meaning=(
            "A likely cause named by `nndoctor overfit` when the loss on the fixed batch rises while the "
            "updates are small: the loss or a manual gradient may have the wrong sign (maximising instead of"
            " minimising)."
        ),
        why="The model is trained to be wrong.",
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; for a rising "
            "curve this candidate is scored higher when the median update-to-weight ratio is at most 10% "
            "(not a learning-rate problem)."
        ),
        fixes=(
            "Check the sign of the loss (e.g. a log-likelihood must be negated) and of any manual gradient "
            "or update.",
            "Check softmax/log_softmax run over the class dimension (dim=-1 or 1).",
        ),
        wrong="""
loss = (y * torch.log_softmax(z, 1)).sum(1).mean()     # log-likelihood, not negated
""",
        right="""
loss = -(y * torch.log_softmax(z, 1)).sum(1).mean()
""",
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-goes-up",
        severity="warning",
        step="implement & debug",
        title="One batch cannot be overfit: the loss goes up",
        meaning=(
            "`nndoctor overfit` saw the loss on one fixed batch rise: the median of the second half is more "
            "than 10% above the median of the first tenth."
        ),
        why=(
            "The optimizer makes the model worse on data it sees again and again: a learning rate too high "
            "or a flipped sign."
        ),
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; likely causes"
            " (lr too high, flipped sign, and findings of the checks that ran) are ranked by score."
        ),
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-oscillates",
        severity="warning",
        step="implement & debug",
        title="One batch cannot be overfit: the loss oscillates",
        meaning=(
            "`nndoctor overfit` saw the loss on one fixed batch turn up and down on more than 30% of the "
            "steps of its second half, with swings above 10% of its level."
        ),
        why="Usually a learning rate that is too high.",
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; likely causes"
            " (lr too high, and findings of the checks that ran) are ranked by score."
        ),
    ),
    CodeInfo(
        code="loss-curve.overfit-batch-plateaus",
        severity="warning",
        step="implement & debug",
        title="One batch cannot be overfit: the loss plateaus",
        meaning=(
            "`nndoctor overfit` could not drive the loss on one fixed batch to its target: the loss stopped "
            "falling. Reported as info when it is still falling steadily, only slowly."
        ),
        why=(
            "A model that cannot memorise one batch has a bug or a setting that prevents learning; the "
            "finding carries the first fix of each likely cause."
        ),
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; the curve is "
            "classified as plateaus when it neither explodes, goes up nor oscillates; the likely causes (no "
            "gradient, vanishing gradients, lr too low, last layer vs loss, conflicting labels, and findings"
            " of the checks that ran) are ranked by score."
        ),
    ),
    CodeInfo(
        code="loss-curve.plateaus",
        severity="warning",
        step="implement & debug",
        title="The training loss plateaus",
        meaning=(
            "The training loss stopped falling for a long stretch of steps well above where it should end."
        ),
        why=(
            "The model stopped learning: typical causes are a learning rate that is too low, dead units, "
            "missing gradients or a model too small; the finding ranks them with this run's evidence."
        ),
        detection=(
            "The training loss is read every 25 recorded losses at first, then every 1/8 of the run, and at "
            "the end. Decisions compare a change of the curve's level (a median over a window) with the "
            "noise of that level (a robust sigma from first differences), never single values; each symptom "
            "is reported with its likely causes ranked by the evidence of the run (update-to-weight ratios, "
            "parameters without gradient, optimizer settings, other findings). A plateau is reported mid-run"
            " only once it has lasted 1000 steps, otherwise at the end (warm-up, schedulers and slow starts "
            "must not raise a false alarm). A loss that came down from a positive start to exactly 0 (a "
            "margin loss every example meets) has converged: no plateau. A plateau whose points keep falling"
            " (Mann-Kendall trend z <= -3 over its stretch, evidence `trend_z`) by >= 0.5% of its level is "
            "slow progress (a VAE or soft-target BCE far above zero), not a plateau; one that moved more than"
            " 3% of its level but less than its noise lets the medians tell (`within_noise`) and leans down "
            "(z <= -1) is judged at the end of the run."
        ),
        fixes=(
            "{fix1}",
            "{fix2}",
            "{fix3}",
        ),
    ),
)
