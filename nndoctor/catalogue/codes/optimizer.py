"""Finding codes of the ``optimizer`` category: optimizer settings other than lr that break training."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="optimizer.adam-betas",
        severity="error",
        step="tune",
        title="Adam betas outside their working range",
        meaning="A beta is outside [0, 1), or beta1 exceeds sqrt(beta2) (often the two swapped).",
        why=(
            "The moment estimates diverge, or the first moment outlasts the second and updates become "
            "unstable."
        ),
        detection="The betas of each param group are read at the first optimizer step.",
        fixes=(
            "Use betas=(0.9, 0.999) (beta1 is the momentum of the gradient, beta2 of its square; beta2 must"
            " be the larger), or (0.9, 0.95) for large models.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), betas=(0.999, 0.9))
""",
        right="""
opt = torch.optim.Adam(model.parameters(), betas=(0.9, 0.999))
""",
    ),
    CodeInfo(
        code="optimizer.adam-eps",
        severity="error",
        step="tune",
        title="Adam (RMSprop, Adagrad) eps far from its working range",
        meaning=(
            "The eps of Adam (or RMSprop, Adagrad) is 0, below 1e-12, or so large compared with the "
            "gradients that it damps every update."
        ),
        why=(
            "eps=0 can divide by zero; a tiny eps gives noise-driven steps; a large eps (>= 1e-2, about 10x "
            "the typical gradient or more) turns Adam into slow SGD. The same holds for RMSprop and Adagrad, "
            "whose eps is named only when lr/eps (the plain-SGD rate they then step at) is 1e-2 or less: "
            "recipes pair a large eps with a large rate (Inception's RMSprop eps=1.0 at lr 0.045)."
        ),
        detection=(
            "At the first optimizer step the eps of each group is compared with the actual gradient RMS."
        ),
        fixes=(
            "Use eps=1e-8 (the default) for {optimizer}; {sane}.",
            "If you raised eps to fight instability, lower the learning rate or clip gradients instead.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1.0)
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=1e-3)      # eps=1e-8
""",
    ),
    CodeInfo(
        code="optimizer.bad-setting",
        severity="error",
        step="tune",
        title="An optimizer setting that breaks training",
        meaning=(
            "A setting other than the learning rate is outside its working range: momentum >= 1, dampening "
            ">= 1 with momentum, RMSprop alpha that never updates, negative weight decay, or a value torch "
            "rejects at construction."
        ),
        why=(
            "With momentum >= 1 old gradients never fade and the weights run away; other settings make the "
            "steps enormous or stop the model from following the loss."
        ),
        detection=(
            "The optimizer's param_groups are read once, at its first step (gradients ready); settings torch"
            " rejects at construction are explained from the crash message."
        ),
        fixes=(
            "Set {setting} of {optimizer} to a value in the sane range ({sane}).",
            "Or drop the argument and keep torch's default ({default}).",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=1.5)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
""",
    ),
    CodeInfo(
        code="optimizer.maximize",
        severity="error",
        step="tune",
        title="The optimizer maximises the loss",
        meaning="The optimizer was built with maximize=True.",
        why="It ascends the loss instead of descending it, so the loss goes up.",
        detection="The maximize flag of each param group is read at the first optimizer step.",
        fixes=(
            "Remove maximize=True from {optimizer}: with it the optimizer climbs the loss.",
            "If you really maximise an objective, keep maximize=True and ignore this finding.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, maximize=True)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.01)
""",
    ),
    CodeInfo(
        code="optimizer.start-with-adam",
        severity="info",
        step="start simple",
        title="Not starting with Adam (start review)",
        meaning="The experiment uses another optimizer than Adam/AdamW.",
        why=(
            "Advice: the guide starts with Adam (lr 3e-4), which is the most forgiving; switch back once the"
            " model trains."
        ),
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when the optimizer"
            " is not Adam or AdamW and its lr is in the working range."
        ),
        fixes=(
            "Use torch.optim.Adam(model.parameters(), lr=3e-4) for the first runs; switch back once the "
            "model trains.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=3e-4)
""",
    ),
    CodeInfo(
        code="optimizer.plain-sgd-stalls",
        severity="warning",
        step="tune",
        title="Plain SGD barely moves this model; Adam learns",
        meaning=(
            "SGD without momentum at a usual rate (Keras' optimizer='sgd': 0.01) moves the weights of this "
            "model by a tiny share of their size per step (its gradients are small: a deep stack whose signal "
            "shrinks layer by layer), so the loss stays near its start; trained from the same weights on the "
            "run's own batches, neither a 10x rate nor momentum 0.9 learns in 100 steps, Adam at 1e-3 does."
        ),
        why="The run is wasted: at this pace the model needs orders of magnitude more steps than the script gives it.",
        detection=(
            "The update-to-weight ratio of the sampled steps (median under 5e-4) and a loss that fell less "
            "than 5% in >= 50 steps, still near a constant prediction, at a rate no scheduler is changing, "
            "then a probe: copies of the weights (never the run's own) are trained for 100 steps on 3 of the "
            "run's batches (kept when the loss recomputed from the model gives the run's own value) at the "
            "current setting, at 10x the rate, with momentum 0.9 and with Adam at 1e-3, and evaluated on them "
            "and on a fourth batch held out. Reported when Adam brings the trained batches' loss to <= 75% of "
            "its start (5x the current setting's fall) and the held-out batch's to <= 90%, and neither a 10x "
            "rate nor momentum does (when one of them does, `lr.too-low` is said instead)."
        ),
        fixes=(
            "Use torch.optim.Adam({optimizer}'s parameters, lr=1e-3) (the probe's working setting: "
            "{probe_best}).",
            "Or keep SGD and make the signal reach the first layers: He initialisation "
            "(nn.init.kaiming_normal_(w, nonlinearity='relu')) or normalisation layers, then momentum=0.9.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.01)     # 7-layer default-init ReLU stack
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""",
    ),
    CodeInfo(
        code="optimizer.tuned-configuration",
        severity="info",
        step="tune",
        title="Best configuration found by tuning",
        meaning=(
            "`nndoctor diagnose` ran a hyperparameter search and reports the best trial (its parameters do "
            "not include the learning rate)."
        ),
        why="Advice: re-run with the tuned values.",
        detection="The best completed trial of the study is reported with a `--set` line to re-run it.",
        fixes=(
            "Re-run with {set}",
        ),
    ),
    CodeInfo(
        code="optimizer.extreme-momentum",
        severity="warning",
        step="tune",
        title="Momentum (or Adam's beta1) so close to 1 that steps overshoot",
        meaning=(
            "SGD momentum or Adam's beta1 of 0.995 or more: a gradient keeps pushing for ~1/(1-momentum) "
            "steps, so each step is that many times the gradient step."
        ),
        why="The weights overshoot and the loss oscillates or explodes; the effective learning rate is lr/(1-momentum).",
        detection=(
            "The optimizer's parameter groups are read at the first step: momentum (or beta1 when beta1 < "
            "sqrt(beta2)) at or above 0.995 and below 1 (momentum >= 1 is reported as a broken setting). SGD/"
            "RMSprop momentum in [0.98, 0.995) is reported only when the run shows its cost: a read of the "
            "training loss curve (>= 30 losses) shows it going up, oscillating or exploding."
        ),
        fixes=(
            "Set {setting} of {optimizer} back to 0.9 (SGD momentum / Adam beta1); {sane}.",
            "If you want a smoother average, lower the learning rate in proportion instead.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.999)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
""",
    ),
    CodeInfo(
        code="optimizer.dampening-cancels-momentum",
        severity="warning",
        step="tune",
        title="SGD dampening cancels the momentum",
        meaning=(
            "SGD runs with momentum m and a dampening d >= 0.5: only (1 - d) of each gradient enters the "
            "momentum buffer, so the steady step is lr * (1 - d) / (1 - m) per unit of gradient instead of "
            "lr / (1 - m). dampening=0.9 beside momentum=0.9 gives back plain SGD at lr."
        ),
        why=(
            "dampening is easily mistaken for momentum (or set equal to it); a learning rate chosen for "
            "SGD with momentum is then (1 - m) / (1 - d) times too small in effect and the run underfits."
        ),
        detection=(
            "The optimizer's parameter groups are read at the first step: momentum in (0, 1) with dampening "
            "in [0.5, 1). A dampening equal to the momentum is also a deliberate gradient average, so the "
            "setting alone is info; it is a warning when the training loss fell by less than 15% of its "
            "start over the run (at least 30 losses)."
        ),
        fixes=(
            "Drop dampening from {optimizer} (torch's default is 0): SGD(params, lr, momentum={momentum}).",
            "If you want the momentum buffer to average the gradients, raise the lr to {intended_lr} to keep "
            "the step size momentum was chosen for.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, dampening=0.9)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
""",
    ),
    CodeInfo(
        code="optimizer.recreated-in-loop",
        severity="warning",
        step="implement & debug",
        title="Optimizer re-created during training",
        meaning=(
            "A new optimizer is built over the same parameters again and again during training (inside "
            "the batch or epoch loop), instead of once before it."
        ),
        why=(
            "Each new optimizer starts with empty state: Adam's moment estimates and SGD's momentum are "
            "thrown away (a fresh Adam's first step is a sign step of size lr in every weight), and a "
            "learning-rate scheduler built on the first optimizer changes an optimizer nobody steps."
        ),
        detection=(
            "Every optimizer is recorded at its first step with the parameter tensors it holds (by "
            "identity: a model rebuilt per cross-validation fold or trial has new tensors and starts a new "
            "record). Three or more optimizers over the same parameter set are reported, with how many and "
            "every how many steps: a warning when they keep state (Adam and the like, SGD with momentum) or "
            "a scheduler was attached to an earlier one, info for stateless plain SGD. Two (a second "
            "fine-tuning phase), optimizers over disjoint parameters (a GAN's generator and discriminator) "
            "and a single LBFGS stay quiet."
        ),
        fixes=(
            "Build {optimizer} once, before the training loop, and reuse it: move the "
            "`torch.optim.{optimizer_class}(...)` line above the loop (it was built {count} times, one every "
            "~{every} steps).",
            "To change the learning rate during training, use a scheduler (torch.optim.lr_scheduler) or set "
            "param_group['lr'] on the existing optimizer rather than building a new one.",
        ),
        wrong="""
for x, y in loader:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
""",
        right="""
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for x, y in loader:
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
""",
    ),
    CodeInfo(
        code="optimizer.clip-has-no-effect",
        severity="warning",
        step="implement & debug",
        title="Gradient clipping runs before backward() or after step()",
        meaning=(
            "clip_grad_norm_ / clip_grad_value_ is called where it cannot change an update: before "
            "loss.backward() (the gradients it clips are empty or about to be replaced) or after "
            "optimizer.step() (they were already applied, and zero_grad() clears them next)."
        ),
        why=(
            "No update is ever clipped: a model that needs clipping (an RNN, a high learning rate, rare "
            "gradient spikes) explodes or diverges exactly as if the line were not there."
        ),
        detection=(
            "The clipping functions of torch.nn.utils are watched on sampled steps; each call is marked stale "
            "when no backward ran since the latest step of the optimizer holding the clipped parameters. "
            "Reported when >= 3 calls with a finite threshold were stale and none was not (a clip between "
            "backward and step anywhere, a manual update without an optimizer, and max_norm=inf read for "
            "logging stay quiet). A warning when clipping would have acted: the gradients the optimizer "
            "then applies (read at its pre-step hook on a sampled step with a stale clip), or those a clip "
            "after the step measured, exceed the threshold; otherwise info."
        ),
        fixes=(
            "Call {method} between loss.backward() and optimizer.step() ({site}).",
            "With a GradScaler: scaler.scale(loss).backward(); scaler.unscale_(optimizer); "
            "{method}(...); scaler.step(optimizer).",
        ),
        wrong="""
optimizer.zero_grad()
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)   # nothing to clip yet
loss_fn(model(x), y).backward()
optimizer.step()
""",
        right="""
optimizer.zero_grad()
loss_fn(model(x), y).backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
optimizer.step()
""",
    ),
    CodeInfo(
        code="optimizer.clip-too-tight",
        severity="warning",
        step="tune",
        title="Gradient clipping threshold far below the gradient's size",
        meaning=(
            "clip_grad_norm_ / clip_grad_value_ is called with a threshold so small (e.g. max_norm=1e-3 "
            "where the gradient's norm is ~1) that it cuts the gradient on every step, by 100x or more."
        ),
        why=(
            "Clipping rescales the gradient to the threshold, so every SGD update is 100x+ smaller than the "
            "learning rate means: training crawls exactly as with a far too low learning rate (raising the "
            "rate does not help while the clip caps the step). Clipping is meant to cut the rare spikes, "
            "not every step."
        ),
        detection=(
            "The two clipping functions of torch.nn.utils are watched on sampled steps: the gradient's size "
            "before clipping (the total norm clip_grad_norm_ returns; the largest |grad| for "
            "clip_grad_value_) is compared with the threshold. Reported when at least 5 sampled calls all "
            "clipped, by a median factor >= 100, and the loss fell less than 25% of its start after >= 30 "
            "losses (and is not already below half a constant prediction's loss). With Adam-like optimizers "
            "(which undo a uniform rescaling) only when the clipped gradient per element is within 10x of "
            "their eps. A normal clip (max_norm=1.0 that fires on some steps) stays quiet."
        ),
        fixes=(
            "Raise {arg}={threshold} in {site} to about the gradient's typical size before clipping "
            "({typical}), or use the usual 1.0, so that clipping only cuts the rare spikes.",
            "If the small threshold was meant to shrink the steps, lower the learning rate instead and clip "
            "at ~1.0.",
        ),
        wrong="""
loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)
optimizer.step()
""",
        right="""
loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
optimizer.step()
""",
    ),
    CodeInfo(
        code="optimizer.full-batch-method-on-minibatches",
        severity="warning",
        step="tune",
        title="A full-batch optimizer (Rprop, L-BFGS) stepped on changing mini-batches",
        meaning=(
            "`torch.optim.Rprop` (or `LBFGS`) is stepped on a different mini-batch at every step. Both are "
            "full-batch methods: Rprop adapts each step size from the sign of successive gradients, L-BFGS "
            "builds a curvature model from successive gradients of one objective."
        ),
        why=(
            "Mini-batch noise flips the gradient's signs from step to step: Rprop's step sizes shrink and "
            "grow erratically and the model stalls or oscillates; L-BFGS compares gradients of different "
            "batches and its line search chases noise."
        ),
        detection=(
            "On sampled training steps the model's inputs are fingerprinted (one hash per row: the first 16 "
            "values of up to 4096 rows). From 6 sampled batches on (else at the end of the run), for an "
            "Rprop/LBFGS optimizer over the model: "
            "at least 3 pairs of successive sampled steps, 80% or more of them sharing under 10% of their "
            "rows, and the batches are mini-batches of a finite dataset: they came from a DataLoader whose "
            "dataset holds at least 1.5 batches, or rows came back in later batches. A fixed full batch "
            "(shuffled or not) and fresh random inputs every step (resampled points) stay quiet. Rprop: "
            "warning; L-BFGS (sometimes run on large batches on purpose): info."
        ),
        fixes=(
            "Use an optimizer made for mini-batches for {optimizer}: `torch.optim.Adam(params, lr=1e-3)` "
            "(or SGD with momentum).",
            "Or keep {optimizer_class} and step it on the full dataset (one batch holding every example, "
            "the same at every step).",
        ),
        wrong="""
opt = torch.optim.Rprop(model.parameters())
for xb, yb in DataLoader(ds, batch_size=8, shuffle=True):
    opt.zero_grad(); loss_fn(model(xb), yb).backward(); opt.step()
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for xb, yb in DataLoader(ds, batch_size=8, shuffle=True):
    opt.zero_grad(); loss_fn(model(xb), yb).backward(); opt.step()
""",
    ),
    CodeInfo(
        code="optimizer.gradient-applied-twice",
        severity="warning",
        step="implement & debug",
        title="The same gradient applied twice",
        meaning=(
            "Some parameters are updated twice from one backward pass: two optimizers hold them and both "
            "step, the optimizer lists them twice, or optimizer.step() is called twice between backward "
            "passes."
        ),
        why=(
            "Those weights move at about twice the lr you chose (or at the sum of two optimizers' rules, "
            "each with its own momentum or Adam statistics), so lr tuning and schedules no longer mean what "
            "they say, and a layer listed twice trains faster than the rest of the network."
        ),
        detection=(
            "At the pre-step hook of sampled optimizer steps (up to 256 parameter tensors per step), a "
            "parameter whose .grad is the same tensor, unchanged (same in-place version counter), as at an "
            "earlier step of this or another optimizer with no backward() in between, and not all zero: "
            "reported after 2 such steps. A step nested inside another optimizer's step (Lookahead-style "
            "wrappers), closure optimizers such as LBFGS (their backward runs inside the step), gradients "
            "changed or replaced between the steps, and optimizers over disjoint parameters (a GAN) stay "
            "quiet. A parameter listed twice in one optimizer's param groups is reported at its first "
            "sampled step."
        ),
        fixes=(
            "Step each parameter once per backward: keep one optimizer over {params} (or split the "
            "parameters between the optimizers so that no tensor is in both).",
            "Build the parameter list without repeats: pass model.parameters() once, or use param groups "
            "with different lrs over disjoint parameters "
            "(`[{{'params': body.parameters()}}, {{'params': head.parameters(), 'lr': 1e-2}}]`).",
            "Call optimizer.step() once per loss.backward() (or once per accumulation window).",
        ),
        wrong="""
opt_sgd = torch.optim.SGD(model.parameters(), lr=0.05)
opt_adam = torch.optim.Adam(model.parameters(), lr=1e-3)
loss.backward()
opt_sgd.step()
opt_adam.step()          # the same gradient applied a second time
""",
        right="""
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss.backward()
opt.step()
""",
    ),
)
