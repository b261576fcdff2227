"""Finding codes of the ``lr`` category: learning rate too high or too low."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="lr.above-divergence",
        severity="warning",
        step="tune",
        title="The learning rate is above where the range test diverged",
        meaning="The current learning rate is at or above the value where the range test's loss blew up.",
        why="Training at this learning rate will diverge.",
        detection=(
            "`nndoctor lr-find` records where the loss diverged (or became non-finite) and compares it with "
            "the optimizer's current lr."
        ),
        fixes=(
            "Use lr {suggested_lr:.3g} (the range test's suggestion).",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), lr=1.0)     # range test diverged at 0.05
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=suggested_lr)
""",
    ),
    CodeInfo(
        code="lr.overfit-batch-lr-too-high",
        severity="warning",
        step="implement & debug",
        title="Learning rate too high for one batch",
        meaning=(
            "A likely cause named by `nndoctor overfit`: the loss on the fixed batch goes up, explodes or "
            "oscillates and the parameters move by a large share of their size per step (healthy: "
            "0.01%-10%)."
        ),
        why="A learning rate that cannot fit one batch will not fit the dataset.",
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; for a rising,"
            " exploding or oscillating curve this candidate is scored higher when the median "
            "update-to-weight ratio is above 10%."
        ),
        fixes=(
            "Lower the learning rate 10x (to {lower_lr:.3g}) or run `nndoctor lr-find`.",
            "Clip gradients (torch.nn.utils.clip_grad_norm_) while you investigate.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=10.0)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
    ),
    CodeInfo(
        code="lr.overfit-batch-lr-too-low",
        severity="warning",
        step="implement & debug",
        title="Learning rate too low for one batch",
        meaning=(
            "A likely cause named by `nndoctor overfit`: the loss plateaus on the fixed batch while the "
            "parameters move by a tiny share of their size per step."
        ),
        why="With such small steps the model cannot even memorise one batch in the steps given.",
        detection=(
            "`nndoctor overfit EXP` trains on one fixed batch until the loss reaches a target; for a plateau"
            " this candidate is scored higher when the median update-to-weight ratio is below 1e-4, and a "
            "little higher if the loss did fall."
        ),
        fixes=(
            "Raise the learning rate (try {higher_lr:.3g}) or run `nndoctor lr-find`.",
            "Train for more steps: `nndoctor overfit --max-steps 2000`.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), lr=1e-7)
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=3e-4)
""",
    ),
    CodeInfo(
        code="lr.plateau-scheduler-wrong-mode",
        severity="warning",
        step="tune",
        title="ReduceLROnPlateau's mode is the opposite of its metric's direction",
        meaning=(
            "ReduceLROnPlateau(mode='max') is stepped with a validation loss, or mode='min' (the default) "
            "with an accuracy: every improvement looks like a worse value to it."
        ),
        why=(
            "Its best stays at the first, worst value, so it cuts the learning rate every patience + 1 epochs "
            "however well training goes, until the rate is ~0 and training has stopped in effect."
        ),
        detection=(
            "The ReduceLROnPlateau holding an optimizer is found among the script's variables (and their "
            "attributes) at the optimizer's first two sampled steps; its mode, best and factor and the lr are read "
            "on sampled steps (the cuts counted from the lr at the first one) and judged at the end of the run "
            "against the metric recorded "
            "in the script's evaluation passes (the mean evaluation loss per step, or the accuracy of each pass "
            "where argmax is compared with the labels). Reported when the scheduler's best is the worst value "
            "of that metric (within 2%; an accuracy also in percent), the metric then improved (a loss fell by "
            ">= 20%, an accuracy rose by >= 5 points), and the rate was cut at least twice. A scheduler given "
            "another number (a training loss, a mixed score) matches neither and stays quiet."
        ),
        fixes=(
            "Construct it with mode='{right_mode}' for the {metric} (a loss improves when it falls, an accuracy "
            "when it rises): ReduceLROnPlateau({optimizer}, mode='{right_mode}', ...).",
        ),
        wrong="""
scheduler = ReduceLROnPlateau(optimizer, mode="max", patience=2)
...
scheduler.step(val_loss)
""",
        right="""
scheduler = ReduceLROnPlateau(optimizer, mode="min", patience=2)
...
scheduler.step(val_loss)
""",
    ),
    CodeInfo(
        code="lr.range-test-no-decrease",
        severity="info",
        step="tune",
        title="The learning-rate range test found no lr where the loss falls",
        meaning="`nndoctor lr-find` swept the learning rate and the loss never fell at any value.",
        why="A model whose loss never falls at any learning rate usually has a bug, not a tuning problem.",
        detection=(
            "The range test raises the lr exponentially over a short run and smooths the loss; no suggestion"
            " is made when no stretch of falling loss is found."
        ),
        fixes=(
            "Run `nndoctor overfit EXP`: a model whose loss never falls usually has a bug.",
        ),
    ),
    CodeInfo(
        code="lr.range-test-suggestion",
        severity="info",
        step="tune",
        title="The learning rate is far from the range test's suggestion",
        meaning="The current learning rate is more than 10x above or 30x below the range test's suggestion.",
        why="Advice: a learning rate near the suggestion usually trains faster; confirm with a short run.",
        detection=(
            "`nndoctor lr-find` compares the optimizer's current lr with its suggested lr (info when current"
            " > 10x or < 1/30 of the suggestion)."
        ),
        fixes=(
            "Try lr {suggested_lr:.3g}, then confirm with a short run.",
        ),
    ),
    CodeInfo(
        code="lr.start-default",
        severity="info",
        step="start simple",
        title="Learning rate away from the guide's default (start review)",
        meaning="Adam/AdamW runs with a learning rate outside 1e-4..1e-3.",
        why="Advice: the guide's starting point is Adam with lr 3e-4.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info for Adam/AdamW "
            "with lr outside 1e-4..1e-3 (within the working range)."
        ),
        fixes=(
            "Start with lr=3e-4, or run `nndoctor lr-find EXP`.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), lr=0.01)
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=3e-4)
""",
    ),
    CodeInfo(
        code="lr.start-far-from-working-range",
        severity="warning",
        step="start simple",
        title="Learning rate far outside the usual range (start review)",
        meaning=(
            "The optimizer's learning rate is far outside the range in which that optimizer usually works."
        ),
        why="Training will likely diverge (too high) or barely move (too low).",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; a warning outside "
            "1e-6..0.1 for adaptive optimizers (Adam, AdamW, RMSprop, Adagrad...) and 1e-4..1.0 for others."
        ),
        fixes=(
            "Start with Adam, lr 3e-4 (the guide's default).",
            "Run `nndoctor lr-find EXP` to measure a good lr for this model.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), lr=1.0)
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=3e-4)
""",
    ),
    CodeInfo(
        code="lr.too-high",
        severity="warning",
        step="tune",
        title="Learning rate too high",
        meaning=(
            "The loss explodes, goes up or oscillates while each update changes the weights by a large "
            "fraction of their size."
        ),
        why="Training diverges or bounces around without converging; the finding suggests a range to try.",
        detection=(
            "Two kinds of evidence are combined over many steps: the update-to-weight ratio |w_after - "
            "w_before| / |w_before| of a few large weight tensors on sampled optimizer steps (healthy "
            "training sits around 1e-3, 1e-2 for Adam on small layers), and the shape of the loss curve. "
            "Either alone is not enough. Too high: the loss explodes, rises or oscillates while the updates "
            "are large. Short runs are judged at steps 25-100 on stricter evidence: updates as large as the "
            "weights with a loss that jumped (>= 2x) or never got below its start. A script with no optimizer "
            "object (w -= lr * w.grad written by hand) is measured between two backward calls, and the rate "
            "it uses is read off its updates (update / gradient, where the update is the gradient scaled). A "
            "training loss summed over N terms (reduction='sum', .sum()) is named under SGD-like optimizers: its "
            "gradient is N x a mean's. Every gradient turning exactly zero well after the start, after updates "
            "as large as the weights, is linked as this rate's symptom (the updates saturated the model). With "
            "several optimizers (a GAN's G and D, an actor and a critic, an encoder and a head) the curve mixes "
            "their losses and is not read; each optimizer's own update ratio is: one whose median over its first "
            "4 sampled steps is >= 0.1 of its weights and >= 30x every other optimizer's is named."
        ),
        fixes=(
            "Lower the learning rate of {optimizer} 10-100x (from {lr} to {suggest_low}-{suggest_high}) and"
            " rerun; for {optimizer_class}, {default_hint}.",
            "If a large rate is intended, add a warm-up (torch.optim.lr_scheduler.LinearLR) and clip "
            "gradients with torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before "
            "{step_call}.",
            "Run a short learning-rate range test (exponential sweep over ~100 steps) and pick a rate about"
            " 10x below the one where the smoothed loss starts to rise.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), lr=0.5)
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=3e-4)   # or run `nndoctor lr-find`
""",
    ),
    CodeInfo(
        code="lr.too-low",
        severity="warning",
        step="tune",
        title="Learning rate too low",
        meaning=(
            "The loss has barely moved after many steps while each update changes the weights by a tiny "
            "fraction of their size."
        ),
        why="Training is wasted: the model would learn much faster with a larger step.",
        detection=(
            "Two kinds of evidence are combined over many steps: the update-to-weight ratio |w_after - "
            "w_before| / |w_before| of a few large weight tensors on sampled optimizer steps (healthy "
            "training sits around 1e-3, 1e-2 for Adam on small layers), and the shape of the loss curve. "
            "Either alone is not enough. Too low: the loss has not moved after many steps while the updates "
            "are tiny; in short runs, every sampled update under 1e-5 of the weights while the loss has not "
            "moved. Where updates that small can come from a working setting (plain SGD at 1e-3 or more, an "
            "adaptive optimizer whose updates sit between 1e-4 and 5e-4 of the weights) the rate is named only "
            "after a probe: copies of the weights (never the run's own) are trained for 100 steps on 3 of the "
            "run's batches at the current setting and at 10x the rate (for SGD without momentum, also with "
            "momentum 0.9), and evaluated on them and on a fourth batch held out; said when the larger step "
            "brings the trained batches' loss to <= 75% of its start (5x the current setting's fall) and the "
            "held-out batch's to <= 90%. Where only Adam learns, `optimizer.plain-sgd-stalls` is said instead."
        ),
        fixes=(
            "Raise the learning rate of {optimizer} from {lr} to {suggest_low}-{suggest_high} (the rates at which "
            "the measured updates would be 1e-3 to 1e-2 of the weights); "
            "for {optimizer_class}, {default_hint}.",
            "Check that no scheduler or manual decay shrinks the rate before training starts (print "
            "{optimizer}.param_groups[0]['lr'] at the first steps).",
            "Run a short learning-rate range test to find the largest rate at which the loss still falls.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=1e-6)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
""",
    ),
    CodeInfo(
        code="lr.tuned-configuration",
        severity="info",
        step="tune",
        title="Best configuration found by tuning (learning rate included)",
        meaning=(
            "`nndoctor diagnose` ran a hyperparameter search and reports the best trial, whose parameters "
            "include the learning rate."
        ),
        why="Advice: re-run with the tuned values.",
        detection="The best completed trial of the study is reported with a `--set` line to re-run it.",
        fixes=(
            "Re-run with {set}",
        ),
    ),
    CodeInfo(
        code="lr.cosine-schedule-wraps-around",
        severity="warning",
        step="tune",
        title="A cosine annealing schedule stepped past T_max cycles up and down",
        meaning=(
            "CosineAnnealingLR was stepped at least 2 x T_max times (typically T_max counted in epochs and "
            "scheduler.step() called every batch): past T_max the cosine climbs back to the base rate, so the "
            "rate swings between the base and eta_min instead of annealing once."
        ),
        why=(
            "The run never settles at a small rate: it keeps jumping back to the base rate and ends wherever the "
            "cycle happens to be, so the final model is worse and noisier than an annealed one."
        ),
        detection=(
            "The first optimizer's scheduler is looked up during the run; at the end, a CosineAnnealingLR "
            "stepped >= 2 x T_max times, with the lr history confirming it: after falling to within 10% of "
            "eta_min the rate rose again to at least half of the base."
        ),
        fixes=(
            "Step {optimizer}'s scheduler once per epoch, or give it T_max in the steps you call it on "
            "(T_max=epochs * len(loader) when scheduler.step() is in the batch loop); it was stepped "
            "{scheduler_steps} times with T_max={T_max}.",
            "If restarts are meant, say so with CosineAnnealingWarmRestarts(T_0=...).",
        ),
        wrong="""
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
for epoch in range(epochs):
    for x, y in loader:
        ...
        opt.step()
        sched.step()          # per batch: T_max batches, not epochs
""",
        right="""
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
""",
    ),
    CodeInfo(
        code="lr.schedule-collapses",
        severity="warning",
        step="tune",
        title="The learning-rate schedule drives the rate to ~0 long before training ends",
        meaning=(
            "The learning rate fell to about zero early and training went on for as long again: typically an "
            "epoch-based scheduler (`StepLR`, `MultiStepLR`, `CosineAnnealingLR(T_max=epochs)`, "
            "`ExponentialLR`) stepped once per batch, or a manual `lr *= 0.9` per batch."
        ),
        why="Once the rate is ~0 the weights stop moving: the rest of the run is wasted and the model underfits.",
        detection=(
            "From the first optimizer's lr history (recorded on every change): the rate fell to 1% of its "
            "peak (after any warm-up) at step s and stayed there while training went on to step 2s or later, "
            "at least 20 more steps. Schedules meant per batch reach 1% only near the end; warm restarts come "
            "back up: both stay quiet. Also, at the end of a finished run, a rate that ended below 10% of its peak "
            "while the training loss, read against effective steps (cumulative lr / peak lr), was still falling "
            "as steeply as it began (the curve cut in its descent, as for fit.stopped-while-improving's warning): "
            "a decay too fast (an inverse-time decay per batch, a small gamma, early milestones)."
        ),
        fixes=(
            "Call {scheduler}.step() once per epoch (after the batch loop), not after every batch; or give it "
            "its length in batches ({horizon} x len(loader)).",
            "Print {optimizer}.param_groups[0]['lr'] every few hundred steps: it should not reach ~0 before the "
            "last part of training.",
            "Decay slower: a gamma closer to 1, later milestones, or an inverse-time decay per epoch rather than "
            "per batch, so the rate stays above ~10% of its peak until the loss flattens.",
        ),
        wrong="""
for epoch in range(30):
    for x, y in loader:
        ...
        opt.step()
        sched.step()              # StepLR(step_size=10): epochs counted as batches
""",
        right="""
for epoch in range(30):
    for x, y in loader:
        ...
        opt.step()
    sched.step()                  # once per epoch
""",
    ),
    CodeInfo(
        code="lr.schedule-keeps-rising",
        severity="warning",
        step="tune",
        title="The learning-rate schedule keeps rising past the rate it was meant to reach",
        meaning=(
            "The learning rate is still growing at the end of the run, many times above its base rate: "
            "typically a warm-up written without its cap (`LambdaLR(opt, lambda s: (s + 1) / warmup)` "
            "instead of `min(1.0, (s + 1) / warmup)`, or a hand-written `g['lr'] = base * step / warmup`)."
        ),
        why=(
            "After the warm-up the multiplier keeps growing with the step count: at 20x the warm-up length "
            "the optimizer runs at 20x its base rate, the steps overshoot and the loss gets worse."
        ),
        detection=(
            "At the end of the run (40 steps or more), from the first optimizer's lr history: the last lr is "
            "the run's peak and at least 1.5x the lr at half the run. With a torch scheduler the reference "
            "is `param_groups[0]['initial_lr']` (the base lr): a warning when the final lr is >= 4x it and "
            "the loss got worse (its last window >= 1.3x its best of ~20 windows), or >= 10x it. Without a "
            "scheduler (hand-written schedule) the reference is the first step's lr: >= 10x it and the loss "
            "got worse. During the run (at the loss-curve reads) only a torch scheduler's lr >= 10x its base "
            "with a loss that got worse is reported. OneCycleLR, CyclicLR and lr-finder schedulers with an `end_lr` (rising on purpose), warm-ups that stop at the "
            "base, decays and plateau schedulers stay quiet; a rise by a constant factor per step (an lr "
            "range test, `gamma > 1`) is info."
        ),
        fixes=(
            "Cap the schedule of {optimizer} at its base rate: `lambda s: min(1.0, (s + 1) / warmup)` "
            "(or `LinearLR(opt, start_factor=1/warmup, total_iters=warmup)`), then keep it constant or decay it.",
            "Print {optimizer}.param_groups[0]['lr'] every few hundred steps: after the warm-up it should "
            "stay at or below the base lr.",
        ),
        wrong="""
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 20)   # grows forever
""",
        right="""
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
""",
    ),
    CodeInfo(
        code="lr.warmup-never-ends",
        severity="warning",
        step="tune",
        title="Warm-up that never ends",
        meaning=(
            "The learning rate rises for the whole run and never reaches the rate the scheduler warms up "
            "to: the warm-up is longer than the training, usually because it is counted in batches while "
            "the scheduler is stepped once per epoch."
        ),
        why=(
            "Every update uses a fraction of the intended lr, so training is as slow as with an lr that "
            "much too low, and the lr you tuned is never used."
        ),
        detection=(
            "From the first optimizer's lr history at the end of the run, with the base lr a torch scheduler "
            "stores in param_groups[0]['initial_lr']: the lr never went down, rose at least 2-fold and ends "
            "at its peak at or below 50% of the base, over at least 50 optimizer steps. A warning when the "
            "script ran to its end; info when the run was cut short (--max-steps, an interrupt) or the rise "
            "is geometric (an lr range test). OneCycleLR and CyclicLR rise on purpose: they are judged "
            "against their peak (max_lr), only when the run finished and the scheduler was stepped at most once "
            "per 4 optimizer steps (a length counted in batches, stepped per epoch: the lr stays near "
            "max_lr / div_factor). Hand-written schedules (no stored base) stay quiet."
        ),
        fixes=(
            "Step {scheduler} once per optimizer step (inside the batch loop) when its warm-up is counted in "
            "batches, or count the warm-up in epochs when it is stepped per epoch.",
            "Make the warm-up a small part of the run (a few hundred steps, or ~1-10% of the total), and "
            "check that the total number of steps it is built with matches epochs x batches per epoch.",
        ),
        wrong="""
warmup = 500  # batches
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
for epoch in range(20):
    for x, y in loader:
        ...
        opt.step()
    sched.step()            # once per epoch: after 20 epochs the lr is at 4% of its base
""",
        right="""
for epoch in range(20):
    for x, y in loader:
        ...
        opt.step()
        sched.step()        # once per batch, as the warm-up length assumes
""",
    ),
)
