"""Finding codes of the ``grad-flow`` category: parameters never get a gradient or are never updated."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="grad-flow.parameter-created-in-forward",
        severity="warning",
        step="implement & debug",
        title="A parameter is created anew inside forward()",
        meaning=(
            "An nn.Parameter (or a layer) is assigned to the module inside forward() instead of __init__(): "
            "every call registers a fresh tensor at its initial value, which no optimizer holds."
        ),
        why=(
            "That part of the model is never trained: its gradient is dropped with the tensor, and each "
            "forward starts again from the initial value (a gate stuck at its init, a random projection "
            "redrawn every step)."
        ),
        detection=(
            "At the start of sampled training forwards of the (first) root model, every named parameter is "
            "remembered by weak reference. A name whose Parameter object is a different one at 3 "
            "consecutive sampled forwards of the same model object, the current one in no optimizer, was "
            "created inside forward(). A model rebuilt as a whole is a new model (not judged here); lazy "
            "modules materialise their parameters once."
        ),
        fixes=(
            "Create {param} once in {module}.__init__() (self.x = nn.Parameter(...) / nn.Linear(...)) and "
            "only use it in forward(); build the optimizer after the model is complete.",
        ),
        wrong="""
def forward(self, x):
    self.gate = nn.Parameter(torch.ones(32))
    return self.fc(x) * self.gate
""",
        right="""
def __init__(self):
    super().__init__()
    self.fc = nn.Linear(16, 32)
    self.gate = nn.Parameter(torch.ones(32))
""",
    ),
    CodeInfo(
        code="grad-flow.all-gradients-zero",
        severity="error",
        step="implement & debug",
        title="Every gradient is exactly zero",
        meaning=(
            "All parameters the optimizer holds get gradients that are exactly zero at two steps in a row: "
            "the loss is flat in the weights."
        ),
        why=(
            "Nothing is learned: typical causes are a constant model output (softmax over one unit), "
            "rounding or argmax inside the forward, or a multiplication by 0."
        ),
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. Reported when every gradient of the optimizer's parameters is exactly zero at two "
            "consecutive examined steps, unless the training loss is a margin loss (triplet, ranking, hinge"
            " embedding...) that is exactly 0: every example meets the margin, nothing is left to learn."
        ),
        fixes=(
            "Remove non-differentiable steps between the model and the loss (round(), argmax(), "
            "thresholding, comparisons); use them for metrics only.",
            "For a binary output with one unit use a sigmoid (or BCEWithLogitsLoss), not softmax over that "
            "single unit, which is always 1.",
        ),
        wrong="""
pred = model(x).round()
loss = F.mse_loss(pred, y)
""",
        right="""
pred = model(x)                       # round only for metrics
loss = F.mse_loss(pred, y)
""",
    ),
    CodeInfo(
        code="grad-flow.crash-backward-twice",
        severity="error",
        step="implement & debug",
        title="Crash: backward through the graph a second time",
        meaning=(
            "backward() ran through a graph whose saved tensors were already freed: a loss tensor kept from "
            "an earlier step (e.g. summed into a running total) is part of the new graph."
        ),
        why="Training cannot go on; keeping loss tensors also keeps every graph alive and leaks memory.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `Trying to backward through the graph a second time`), finds the module that raised from"
            " the module stack and the failing call's inputs, and names what to change. The original "
            "traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Log running losses with loss.item(), never by keeping the loss tensors.",
        ),
        wrong="""
total = total + loss
total.backward()
""",
        right="""
loss.backward()
total += loss.item()              # log numbers, not tensors
""",
    ),
    CodeInfo(
        code="grad-flow.crash-empty-parameter-list",
        severity="error",
        step="implement & debug",
        title="Crash: the optimizer got an empty parameter list",
        meaning=(
            "The optimizer was built over no parameters: a model whose layers are kept in a plain Python "
            "list (not nn.ModuleList), or a generator already consumed."
        ),
        why="Training cannot start.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `optimizer got an empty parameter list`), finds the module that raised from the module "
            "stack and the failing call's inputs, and names what to change. The original traceback is "
            "printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Check len(list(model.parameters())) > 0 before building the optimizer.",
        ),
        wrong="""
self.layers = [nn.Linear(10, 10) for _ in range(3)]
""",
        right="""
self.layers = nn.ModuleList(nn.Linear(10, 10) for _ in range(3))
""",
    ),
    CodeInfo(
        code="grad-flow.crash-inplace-modified",
        severity="info",
        step="implement & debug",
        title="Crash: a tensor needed for the gradient was modified in place",
        meaning=(
            "An in-place operation (`x += ...`, `relu_`, `x[idx] = ...`) changed a tensor that autograd "
            "saved for the backward pass."
        ),
        why="backward() fails; reported as info since the fix is local.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `one of the variables needed for gradient computation has been modified by an inplace "
            "operation`), finds the module that raised from the module stack and the failing call's inputs, "
            "and names what to change. The original traceback is printed afterwards and the exit code is "
            "kept."
        ),
        fixes=(
            "{fix}",
            "To find the op, run one step under torch.autograd.set_detect_anomaly(True).",
        ),
        wrong="""
h = torch.sigmoid(z)
h += 1
""",
        right="""
h = torch.sigmoid(z)
h = h + 1
""",
    ),
    CodeInfo(
        code="grad-flow.crash-loss-without-grad",
        severity="error",
        step="implement & debug",
        title="Crash: backward on a tensor that does not require grad",
        meaning=(
            "loss.backward() failed because the loss has no grad_fn: no parameter requires grad, the forward"
            " ran under no_grad, or the graph was cut."
        ),
        why="Training cannot start.",
        detection=(
            "When the script dies, the crash explainer matches torch's error message against known patterns "
            "(here: `element 0 of tensors does not require grad and does not have a grad_fn`), finds the "
            "module that raised from the module stack and the failing call's inputs, and names what to "
            "change. The original traceback is printed afterwards and the exit code is kept."
        ),
        fixes=(
            "{fix}",
            "Check that some parameter has requires_grad=True and that the optimizer holds them.",
        ),
        wrong="""
with torch.no_grad():
    loss = loss_fn(model(x), y)
loss.backward()
""",
        right="""
loss = loss_fn(model(x), y)
loss.backward()
""",
    ),
    CodeInfo(
        code="grad-flow.frozen-middle-layers",
        severity="warning",
        step="implement & debug",
        title="Layers in the middle of a trainable stack are frozen",
        meaning=(
            "Some layers in the middle of a model have requires_grad=False while the layers before and after"
            " them train."
        ),
        why=(
            "Usually unintended (a freeze loop over the wrong slice); the frozen layers keep their random "
            "initialisation."
        ),
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. The order of weighted layers comes from the forward pass; frozen layers between "
            "trainable ones are reported."
        ),
        fixes=(
            "Unfreeze {layers} (requires_grad_(True)) and include them in the optimizer, unless freezing "
            "them was intended.",
        ),
        wrong="""
for layer in model.layers[2:4]:
    layer.requires_grad_(False)
""",
        right="""
for layer in model.layers[:2]:       # freeze a prefix, if anything
    layer.requires_grad_(False)
""",
    ),
    CodeInfo(
        code="grad-flow.frozen-output-layer",
        severity="warning",
        step="implement & debug",
        title="The output layer is frozen",
        meaning="The last layer has requires_grad=False while the layers before it train.",
        why=(
            "The model cannot adapt its outputs to the targets; a frozen backbone with a trainable head is "
            "the usual pattern, this is the reverse."
        ),
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. The order of weighted layers comes from the forward pass; the last one frozen while "
            "earlier ones train is reported."
        ),
        fixes=(
            "Unfreeze {layer}: {layer}.requires_grad_(True) and include it in the optimizer.",
            "To fine-tune, freeze the backbone and train the head, not the other way round.",
        ),
        wrong="""
for p in model.parameters():
    p.requires_grad = False
for p in model.features.parameters():
    p.requires_grad = True
""",
        right="""
for p in model.features.parameters():
    p.requires_grad = False           # freeze the backbone, train the head
""",
    ),
    CodeInfo(
        code="grad-flow.loss-detached",
        severity="error",
        step="implement & debug",
        title="The loss does not depend on any parameter",
        meaning=(
            "The graph from the parameters to the loss is cut: `.detach()`, `.item()`, a numpy round trip, "
            "or `torch.tensor(pred, requires_grad=True)` rebuilds the prediction as a new leaf."
        ),
        why=(
            "backward() computes no gradient for the model, so the weights never change, although the loop "
            "looks normal."
        ),
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. Reported as an error at the first step, with the cut (detach, item, numpy...) where it"
            " can be told."
        ),
        fixes=(
            "Compute the loss from the model output with torch operations only: no .item(), .detach(), "
            ".data, .numpy() or torch.tensor(..., requires_grad=True) between the model and loss.backward()"
            " ({cause}).",
            "Check with `print(loss.grad_fn)` that the loss is connected to the model (it must not be None,"
            " and loss.requires_grad must not come from a new leaf).",
        ),
        wrong="""
pred = torch.tensor(model(x).detach().numpy(), requires_grad=True)
loss = F.mse_loss(pred, y)
""",
        right="""
pred = model(x)
loss = F.mse_loss(pred, y)
""",
    ),
    CodeInfo(
        code="grad-flow.no-gradient",
        severity="warning",
        step="implement & debug",
        title="Parameters used in the forward never get a gradient",
        meaning=(
            "Modules that run in the training forward have parameters that never receive a gradient while "
            "the rest of the optimizer's parameters do."
        ),
        why=(
            "Those layers are never trained: a branch is detached, run under no_grad, or its output is left "
            "out of the loss."
        ),
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. A warning when modules seen in the training forward keep `.grad` None over the "
            "examined steps while other parameters of the same optimizer get gradients, or while none of an "
            "optimizer's parameters ever gets one but other optimizers' parameters do (a GAN generator whose "
            "output is detached for its own loss); the likely cause is named."
        ),
        fixes=(
            "Make sure the output of {modules} reaches the loss through differentiable torch operations: "
            "remove .detach(), .data, .item(), .numpy()/torch.tensor() round trips and torch.no_grad() from"
            " the forward path ({cause}).",
            "If the branch is not meant to be trained, freeze it (requires_grad_(False)) and leave its "
            "parameters out of the optimizer.",
        ),
        wrong="""
with torch.no_grad():
    feats = self.encoder(x)          # encoder is meant to be trained
return self.head(feats)
""",
        right="""
feats = self.encoder(x)
return self.head(feats)
""",
    ),
    CodeInfo(
        code="grad-flow.non-differentiable-op",
        severity="warning",
        step="implement & debug",
        title="A non-differentiable op in the forward stops the layers before it from learning",
        meaning=(
            "The training forward passes a tensor through an op with no useful derivative: torch.round, "
            "floor, ceil, trunc or sign (derivative 0 almost everywhere), argmax/argmin (integer indices) or "
            "a comparison cast to a float mask ((h > 0).float()). The layers before the op get an all-zero or "
            "no gradient at every step, while the layers after it learn."
        ),
        why=(
            "Those layers keep their random initial weights for the whole run: the part of the model after "
            "the op learns on top of a fixed random function of the inputs, and the model underfits."
        ),
        detection=(
            "The function mode records, on sampled training steps before backward, each round/floor/ceil/"
            "trunc/sign/heaviside/argmax/argmin/comparison applied to a floating tensor that carries a graph "
            "(up to 12 sites, file:line and module), with the parameters upstream of its input (a walk of "
            "the autograd graph, at most 4000 nodes). At the optimizer's examined steps (its first 8, then "
            "sampled ones) each parameter's `.grad` is read until it is first seen non-zero. After at least "
            "4 examined steps a warning names the modules whose parameters lie upstream of such an op and "
            "whose gradient stayed None (after argmax/comparisons) or exactly zero at 3 or more examined "
            "steps (after round/sign/..., whose result must be seen in the graph of the loss backward() ran "
            "on: a walk of at most 20000 nodes), while other parameters of the same optimizer got non-zero "
            "gradients. A straight-through estimator (x + (round(x) - x).detach()), argmax used for accuracy "
            "only, and frozen (requires_grad=False) layers give those layers a gradient or are not judged."
        ),
        fixes=(
            "Replace {op} at {site} by a differentiable relaxation during training (sigmoid/softmax instead "
            "of a hard threshold or argmax), or keep the hard value in the forward with a straight-through "
            "estimator: h = h + (torch.round(h) - h).detach().",
            "Apply {op} only at inference (under torch.no_grad()/model.eval()), not in the training forward.",
            "If {modules} are meant to stay fixed, freeze them (requires_grad_(False)) and leave them out of "
            "the optimizer.",
        ),
        wrong="""
code = torch.round(torch.sigmoid(self.enc(x)))     # zero gradient: enc never learns
return self.head(code)
""",
        right="""
soft = torch.sigmoid(self.enc(x))
code = soft + (torch.round(soft) - soft).detach()  # straight-through: enc learns
return self.head(code)
""",
    ),
    CodeInfo(
        code="grad-flow.almost-all-frozen",
        severity="warning",
        step="implement & debug",
        title="Almost nothing trains: the model is frozen, a few values learn",
        meaning=(
            "The optimizers train only a handful of values (a temperature, a scale, a bias) while the model "
            "they act on is frozen (requires_grad=False), and the loss stays at the constant-prediction level: "
            "a freeze loop that froze everything and an unfreeze filter that matches no parameter name, or "
            "requires_grad_(False) applied to the whole model instead of its backbone."
        ),
        why="The frozen model is never trained; the few values that learn cannot make its outputs useful.",
        detection=(
            "At the curve reads (from ~50 losses on) and at the end of `nndoctor run`: the live optimizers hold "
            "at most 16 trainable values in all, the models that ran hold >= 1,000 frozen values (>= 100 per "
            "trained one), and the training loss ends at >= 90% of the loss of a constant prediction, never "
            "below 80% of it. Temperature scaling of a trained model (its loss starts far below the constant "
            "prediction), prompt tuning, linear probing, BitFit and a reservoir's readout (hundreds of values "
            "or more train) are not judged."
        ),
        fixes=(
            "Unfreeze the layers you mean to train with requires_grad_(True) (frozen now: {frozen_tensors} "
            "tensors of {models}); check that an unfreeze filter's names match model.named_parameters().",
            "Freeze only the backbone, then build the optimizer over [p for p in model.parameters() if "
            "p.requires_grad].",
        ),
        wrong="""
for p in model.parameters():
    p.requires_grad = False
for name, p in model.named_parameters():
    if name.startswith("classifier"):       # nn.Sequential names are "0.weight", "4.bias": no match
        p.requires_grad = True
""",
        right="""
for name, p in model.named_parameters():
    p.requires_grad = name.startswith("4.")  # the names model.named_parameters() really has
""",
    ),
    CodeInfo(
        code="grad-flow.optimizer-frozen-params",
        severity="warning",
        step="implement & debug",
        title="The optimizer holds only frozen parameters",
        meaning=(
            "At every examined step, all the parameters an optimizer holds have requires_grad=False: the "
            "whole model is frozen, or the optimizer was built over the frozen part."
        ),
        why="Nothing it holds can ever be updated, so nothing is learned.",
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. Reported when every parameter of the optimizer has requires_grad=False at every "
            "examined step."
        ),
        fixes=(
            "Build {optimizer} over the parameters you mean to train: torch.optim.X([p for p in "
            "model.parameters() if p.requires_grad], ...) after freezing (for fine-tuning: the new head's "
            "parameters).",
            "Unfreeze the layers you mean to train ({modules}) with requires_grad_(True); to fine-tune, "
            "freeze only the backbone (for p in model.backbone.parameters(): p.requires_grad = False).",
        ),
        wrong="""
for p in model.backbone.parameters():
    p.requires_grad = False
opt = torch.optim.SGD(model.backbone.parameters(), lr=0.01)
""",
        right="""
opt = torch.optim.SGD(model.head.parameters(), lr=0.01)
""",
    ),
    CodeInfo(
        code="grad-flow.optimizers-pull-apart",
        severity="warning",
        step="implement & debug",
        title="Two optimizers push the same parameters in opposite directions",
        meaning=(
            "Some parameters are held by two optimizers whose losses pull them opposite ways: a GAN's "
            "discriminator optimizer built over the generator's parameters too (D's loss backpropagates "
            "into G through fakes that are not detached), or an adversary's optimizer holding the encoder."
        ),
        why=(
            "One optimizer moves those weights to help its loss, the other moves them back: the updates "
            "cancel, the shared part does not learn (or learns to help the opponent), and nothing crashes."
        ),
        detection=(
            "At the pre-step hook of sampled optimizer steps, the gradient an optimizer is about to apply "
            "to the parameters it shares with another optimizer (at most 1M values, groups with lr > 0) is "
            "compared with the one the other optimizer applied at its latest sampled step. Reported when "
            ">= 3 comparisons have a median cosine <= -0.5 and >= 80% of them are negative. Disjoint "
            "optimizers, a shared trunk trained by two cooperating losses and two optimizers stepping the "
            "same gradient (optimizer.gradient-applied-twice) stay quiet."
        ),
        fixes=(
            "Give each optimizer only its own model's parameters: {optimizers} should not both hold "
            "{params} (e.g. opt_d = Adam(D.parameters()), opt_g = Adam(G.parameters())).",
            "Detach what the other model produced before its opponent's loss (D(fake.detach())), so that "
            "loss does not reach those parameters at all.",
        ),
        wrong="""
opt_d = torch.optim.Adam(list(D.parameters()) + list(G.parameters()), lr=2e-4)
d_loss = bce(D(real), ones) + bce(D(G(z)), zeros)
opt_d.zero_grad(); d_loss.backward(); opt_d.step()      # also moves G to help D
""",
        right="""
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
d_loss = bce(D(real), ones) + bce(D(G(z).detach()), zeros)
opt_d.zero_grad(); d_loss.backward(); opt_d.step()
""",
    ),
    CodeInfo(
        code="grad-flow.optimizer-wrong-params",
        severity="error",
        step="implement & debug",
        title="The optimizer holds other parameters than the trained model's",
        meaning=(
            "The optimizer holds parameters that never get a gradient, while the model's parameters get "
            "gradients but are in no optimizer: it was built over another model instance or a copy (e.g. "
            "before `model = Net()` was run again, or over a deepcopy)."
        ),
        why="The model is never trained although the loss, backward and step all run.",
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. An error when the optimizer's parameters get no gradient while parameters with "
            "gradients belong to no optimizer."
        ),
        fixes=(
            "Build the optimizer over the parameters of the model you train: "
            "torch.optim.X({model}.parameters(), ...), after the model is created and moved.",
            "Do not re-create or copy.deepcopy() the model after building the optimizer.",
        ),
        wrong="""
model = Net(); opt = torch.optim.Adam(model.parameters())
model = Net().to(device)               # a new instance
""",
        right="""
model = Net().to(device)
opt = torch.optim.Adam(model.parameters())
""",
    ),
    CodeInfo(
        code="grad-flow.overfit-batch-no-gradient",
        severity="warning",
        step="implement & debug",
        title="Parameters get no gradient while overfitting one batch",
        meaning=(
            "A likely cause named by `nndoctor overfit` for a plateau: some parameter tensors get no (or an "
            "all-zero) gradient on the fixed batch."
        ),
        why="A model that cannot even fit one batch usually has a cut in its graph.",
        detection=(
            "`nndoctor overfit` trains on one fixed batch and records which parameters' `.grad` stays None "
            "or zero; the candidate is added when the curve plateaus and no grad-flow check already fired."
        ),
        fixes=(
            "Look for .detach(), .item(), torch.no_grad() or .data between these layers and the loss.",
            "Check requires_grad and that the optimizer holds them.",
        ),
        wrong="""
h = self.encoder(x).detach()
""",
        right="""
h = self.encoder(x)
""",
    ),
    CodeInfo(
        code="grad-flow.params-not-in-optimizer",
        severity="warning",
        step="implement & debug",
        title="Parameters with gradients are in no optimizer",
        meaning=(
            "Layers receive gradients but their parameters are in no optimizer: the optimizer was built "
            "before these layers were added, or over part of the model only."
        ),
        why=(
            "They are never trained. Reported as info when only an earlier, feature-extracting part is "
            "affected (it may be meant to stay fixed; freezing it saves the backward pass), unless that part "
            "still holds PyTorch's random initialisation: a random body that never trains is no feature "
            "extractor (an optimizer built over the head only, as in a fine-tuning recipe, on a model trained "
            "from scratch)."
        ),
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. Parameters that no optimizer holds and whose `.grad` changes between examined steps "
            "(a `.grad` left over from training before the watch, e.g. a teacher now run under no_grad, does "
            "not) are grouped by module. An earlier part counts as a random init when every weight matrix "
            "lies within PyTorch's default uniform bound 1/sqrt(fan_in) with a std within 0.8-1.2x of that init's."
        ),
        fixes=(
            "Add {modules} to the optimizer: build it over model.parameters() after every layer exists, or "
            "optimizer.add_param_group({{'params': ...}}).",
            "If they are meant to stay fixed, freeze them with requires_grad_(False) to save compute.",
        ),
        wrong="""
opt = torch.optim.Adam(model.parameters())
model.head = nn.Linear(512, 10)          # replaced after the optimizer was built
""",
        right="""
model.head = nn.Linear(512, 10)
opt = torch.optim.Adam(model.parameters())
""",
    ),
    CodeInfo(
        code="grad-flow.params-not-updated",
        severity="error",
        step="implement & debug",
        title="optimizer.step() leaves the weights unchanged",
        meaning=(
            "Parameters have non-zero gradients but keep their values over several optimizer steps, e.g. "
            "with lr=0 or a scheduler that drove the learning rate to 0."
        ),
        why="The model is not trained although every step runs.",
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. Parameters are compared before and after sampled optimizer steps; an error when those "
            "with non-zero gradients never change."
        ),
        fixes=(
            "Give {optimizer} a positive learning rate (lr={lr}); a schedule must not set it to 0.",
            "Check that {optimizer} holds the parameters the loss is computed from.",
        ),
        wrong="""
opt = torch.optim.SGD(model.parameters(), lr=0.0)
""",
        right="""
opt = torch.optim.SGD(model.parameters(), lr=0.01)
""",
    ),
    CodeInfo(
        code="grad-flow.param-group-lr-zero",
        severity="warning",
        step="implement & debug",
        title="A parameter group has learning rate 0 while the others train",
        meaning=(
            "One param group of the optimizer has lr 0 at every step while another group trains: its "
            "parameters get gradients but step() never moves them (a per-group lr computed as 0, e.g. "
            "base_lr * multiplier with the multiplier 0)."
        ),
        why="Those layers keep their initial (or pre-trained) weights, so the model ends worse than it should.",
        detection=(
            "The param groups' lrs are read at sampled optimizer steps (pre-step hook). Judged at the end of "
            "the run: a group whose lr was exactly 0 at every examined step (>= 5) while another group of the "
            "same optimizer had lr > 0 and the group's parameters held gradients. A warm-up from 0, a group "
            "unfrozen later or a schedule that ends at 0 shows a positive lr at some step and stays quiet."
        ),
        fixes=(
            "Give {where} a positive lr (the other groups train at {other_lrs}); check how its lr is computed.",
            "If these parameters are meant to stay fixed, freeze them with requires_grad_(False) and leave "
            "them out of the optimizer instead.",
        ),
        wrong="""
opt = torch.optim.Adam([{"params": model.body.parameters()},
                        {"params": model.head.parameters(), "lr": base_lr * head_mult}], lr=base_lr)  # head_mult = 0
""",
        right="""
opt = torch.optim.Adam([{"params": model.body.parameters()},
                        {"params": model.head.parameters(), "lr": base_lr * 10}], lr=base_lr)
""",
    ),
    CodeInfo(
        code="grad-flow.step-never-called",
        severity="error",
        step="implement & debug",
        title="optimizer.step() is never called",
        meaning=(
            "loss.backward() runs repeatedly but no optimizer.step() (and no manual update) ever changes the"
            " weights."
        ),
        why="The model is not trained.",
        detection=(
            "One check follows the chain loss -> gradients -> optimizer update and reports where it breaks. "
            "Gradients are read from `.grad` at the optimizer's pre-step hook (first steps of each optimizer"
            " and sampled steps) and from grad hooks; module order and use come from sampled forward "
            "outputs. An error when backward ran several times, no optimizer step was seen and the weights "
            "never changed."
        ),
        fixes=(
            "Call optimizer.step() after loss.backward() in every training iteration (scheduler.step() does"
            " not update the weights).",
            "Check the condition guarding optimizer.step() (e.g. gradient accumulation) is ever true.",
        ),
        wrong="""
loss.backward()
opt.zero_grad()
""",
        right="""
opt.zero_grad()
loss.backward()
opt.step()
""",
    ),
    CodeInfo(
        code="grad-flow.unregistered-layers",
        severity="error",
        step="implement & debug",
        title="Layers called by the model but not registered in it",
        meaning=(
            "Layers kept in a plain Python list or dict (instead of `nn.ModuleList`/`nn.ModuleDict`), or "
            "built inside `forward`, run inside a model but are not its submodules: their parameters are "
            "missing from `model.parameters()`. The same holds for weight tensors used without a layer module "
            "(`x @ w` over `nn.Parameter`s kept in a plain list instead of `nn.ParameterList`)."
        ),
        why=(
            "The optimizer never holds them, so they keep their random initial values (they are not saved or "
            "moved by `.to()` either); the plateau or weak fit that follows is the symptom, this is the cause."
        ),
        detection=(
            "A module with trainable parameters of its own runs with gradients enabled inside the forward of "
            "a watched model, is not a submodule of any watched model, and none of its parameters is in any "
            "optimizer. Frozen helpers (no trainable parameters, or run under `torch.no_grad()`) and layers "
            "whose parameters were handed to the optimizer by hand stay quiet. For weights without a module: an "
            "`nn.Parameter` the training loss depends on (read from its autograd graph) that belongs to no watched "
            "model and no optimizer, and whose values stay the same over two sampled steps (a parameter "
            "updated by hand moves: quiet)."
        ),
        fixes=(
            "Keep the layers of {parent} in torch.nn.ModuleList (or nn.ModuleDict / nn.Sequential) instead of "
            "a Python list/dict, so that model.parameters() and the optimizer include them.",
            "Create layers in __init__, never inside forward(), so that the same weights are trained each step.",
            "Check with: print(sum(p.numel() for p in model.parameters())) against the size you expect.",
        ),
        wrong="""
self.layers = [nn.Linear(64, 64) for _ in range(4)]     # a Python list
""",
        right="""
self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(4)])
""",
    ),
    CodeInfo(
        code="grad-flow.evaluated-copy-never-updated",
        severity="warning",
        step="implement & debug",
        title="Evaluated copy of the model never updated",
        meaning=(
            "A copy of the trained model (an EMA, averaged or 'best' model) is evaluated, but its weights "
            "are still exactly the trained model's initial weights: the code meant to update it never "
            "changes it."
        ),
        why=(
            "Every evaluation of the copy scores an untrained network, so the reported metrics (and any "
            "model saved from the copy) say nothing about the training that happened."
        ),
        detection=(
            "Every root model is fingerprinted at its first forward (the first 64 values of up to 16 "
            "parameter tensors). A model run without gradient whose parameters are in no optimizer, with "
            "the same parameter shapes as a model an optimizer trains, is compared with that model's first "
            "fingerprint once per step it is evaluated on. Reported at the end of the run when the copy "
            "still equals it value for value after the trained model moved and took at least 20 optimizer "
            "steps, and the copy was evaluated on at most a third of the steps (a frozen reference or "
            "teacher model run at every training step, as in DPO or distillation, stays quiet). Info only when the run was "
            "cut short (--max-steps, an interrupt) and the copy was evaluated on one step (a late start of "
            "the averaging, as in SWA, may not have been reached)."
        ),
        fixes=(
            "Update {copy} in place after each optimizer step: "
            "`with torch.no_grad(): for e, p in zip({copy}.parameters(), {model}.parameters()): "
            "e.mul_(decay).add_(p, alpha=1 - decay)` (assigning `e = decay * e + ...` only rebinds the "
            "loop variable).",
            "Or use torch.optim.swa_utils.AveragedModel and call "
            "`{copy}.update_parameters({model})` after each optimizer step.",
            "Check that the update call is reached (not behind a condition that never holds) and that the "
            "decay is below 1.",
        ),
        wrong="""
ema = copy.deepcopy(model)
...
opt.step()
with torch.no_grad():
    for e, p in zip(ema.parameters(), model.parameters()):
        e = 0.99 * e + 0.01 * p        # rebinds e: ema never changes
""",
        right="""
opt.step()
with torch.no_grad():
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(0.99).add_(p, alpha=0.01)
""",
    ),
)
