"""Root cause first: which findings are symptoms of which, decided from evidence.

A too-high learning rate kills ReLUs, blows up the gradients and makes the loss NaN; raw
0-255 pixels do the same. Every check reports what it sees, so one bug shows as several
findings, and the first one seen is rarely the bug. This module declares the causal graph
over the finding categories (:data:`EDGES`) and links a report's findings along it:

* an edge ``cause -> symptom`` holds between two findings only when the evidence allows it:
  the cause is at warning or error (a guess cannot explain a finding), both concern the same
  model (a finding about another model, or about another optimizer's models, is unrelated),
  the cause was seen at or before the symptom unless it is a property of the setup
  (:data:`STATIC`: the inputs, the init, the optimizer settings, the lr value, the loss input,
  ...; a crash is never static), and the edge's own condition holds (e.g. a too-low lr explains
  a plateau, not an explosion; ``numerics`` from ``log``/``div``/``sqrt`` at an exact zero is a
  bug of its own, not a symptom of the inputs' scale);
* underfitting read as "the model is linear" (evidence ``model_is_linear``: its loss sits at
  a linear model's optimum) is the model's own cause: nothing upstream explains it, and the
  plateau of its loss curve is its symptom (the one link up the order; it cannot close a cycle,
  as nothing links into that finding);
* a loss that is a log-likelihood minimised instead of its negative (evidence
  ``objective_sign_flipped``: the sign of the loss lost) is the cause of the lr, activation,
  gradient, numerics, curve and fit findings it produces (a loss falling without bound reads as a
  too-high lr or an exploding loss); only a wrong loss input (upstream) explains it, so this is
  the other link up the order (nothing below it links into that finding: no cycle);
* a finding whose evidence names ``likely_causes`` (the overfit-one-batch summary) is linked
  to those causes when they are in the report;
* a bug of its own that no training trouble produces (:data:`INDEPENDENT`: a worse state restored
  as the best one) is never a symptom.

Edges only go down :data:`ORDER`, so the links never form a cycle. :func:`link` sets each
symptom's ``caused_by``; :func:`ordered` puts root causes first (most severe group first, then
the step where the group's trouble began), each followed by its symptoms. This module reads
findings only: it never imports a renderer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from nndoctor.findings import CATEGORIES, Finding, category_of

__all__ = ["EDGES", "INDEPENDENT", "LR_HIGH", "LR_LOW", "ORDER", "STALLED", "STATIC", "UNDERFIT", "Edge", "groups", "headline",
           "link", "links", "ordered", "own_numerics_bug", "scope"]

#: Categories in causal order: an edge always goes from an earlier one to a later one.
ORDER: tuple[str, ...] = (
    "labels", "data", "preprocessing", "shape", "dtype", "loss-input", "train-mode", "zero-grad",
    "grad-flow", "init", "regularization", "optimizer", "distributed", "lr", "activation", "grad", "numerics",
    "loss-curve", "fit",
)
_RANK = {c: i for i, c in enumerate(ORDER)}

#: Properties of the setup: true from the first step, however late a check notices them.
STATIC = frozenset({"data", "labels", "preprocessing", "shape", "dtype", "loss-input", "train-mode",
                    "zero-grad", "grad-flow", "init", "regularization", "optimizer", "distributed", "lr"})

#: Bugs of their own, in the script's bookkeeping rather than its training: nothing upstream explains them.
INDEPENDENT = frozenset({"fit.restored-checkpoint-not-best"})

LR_HIGH = frozenset({"lr.too-high", "lr.above-divergence", "lr.overfit-batch-lr-too-high"})
LR_LOW = frozenset({"lr.too-low", "lr.overfit-batch-lr-too-low"})
#: Underfitting in its several forms (the ones a training bug or setting can explain).
UNDERFIT = frozenset({"fit.underfitting", "fit.avoidable-bias", "fit.model-at-chance",
                      "fit.no-better-than-constant", "fit.worse-than-linear-baseline"})
#: Loss curves that a too-low lr, a cut graph or a wrong loss input produce: nothing moves.
STALLED = frozenset({"loss-curve.plateaus", "loss-curve.cannot-overfit-one-batch",
                     "loss-curve.overfit-batch-plateaus"})
#: ops whose NaN/Inf comes from a singular value (x/0, sqrt of a negative, std of one value, a
#: fully masked row) that large inputs or weights do not produce: a bug of its own. (exp, pow,
#: the losses and log can also fail from values grown too large or saturated, so they are not here.)
_SINGULAR_OPS = frozenset({"div", "rdiv", "reciprocal", "rsqrt", "sqrt", "acos", "asin", "atanh",
                           "masked_fill", "std", "var"})
#: optimizers whose update does not grow with the gradient's scale (as nndoctor.monitor.checks.lr.ADAPTIVE;
#: kept here so that this module needs no torch)
_SCALE_FREE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta",
                         "SparseAdam", "Adafactor", "LAMB", "Lion"})
_NAN_INPUT = frozenset({"preprocessing.nan-in-inputs", "preprocessing.start-nonfinite-inputs"})
_CONSTANT_INPUT = frozenset({"preprocessing.constant-features", "preprocessing.constant-input",
                             "preprocessing.start-constant-features"})
#: evidence keys that name a model, a layer or a parameter (they start with the model's name)
_SCOPE_KEYS = ("model", "layer", "module", "param", "params", "first_layer", "last_layer", "layers")

Condition = Callable[[Finding, Finding], bool]


@dataclass(frozen=True)
class Edge:
    """``cause -> symptom``: each side a category or a full code; ``when`` an extra condition on
    the two findings' evidence (the general ones, scope and timing, apply to every edge)."""

    cause: frozenset[str]
    symptom: frozenset[str]
    why: str
    when: Condition | None = None

    def matches(self, cause: Finding, symptom: Finding) -> bool:
        return (_hit(cause, self.cause) and _hit(symptom, self.symptom)
                and (self.when is None or self.when(cause, symptom)))


def _hit(f: Finding, patterns: frozenset[str]) -> bool:
    return f.code in patterns or f.category in patterns


def _op(f: Finding) -> str:
    op = str(f.evidence.get("op") or "")
    return op.removeprefix("torch.").lower()


def own_numerics_bug(f: Finding) -> bool:
    """A NaN/Inf made by an op at its singular value (x/0, sqrt'(0), std of one value), or the log
    of a softmax/sigmoid/exp that underflowed to 0 (its log-space form never does), not by values
    grown too large: the scale of the inputs, the lr or the init does not explain it."""
    if f.code == "numerics.nonfinite-gradient":
        return True
    if f.code == "numerics.nonfinite-forward" and f.evidence.get("underflow_of"):
        return True                               # log(softmax(z)) / log(sigmoid(z)) / log(exp(z)): log-space op needed
    return f.code == "numerics.nonfinite-forward" and _op(f) in _SINGULAR_OPS


def _scale_numerics(cause: Finding, symptom: Finding) -> bool:
    return symptom.category != "numerics" or not own_numerics_bug(symptom)


def _preprocessing(cause: Finding, symptom: Finding) -> bool:
    if cause.code in _NAN_INPUT:                  # NaN in the batch explains any NaN downstream
        return True
    if symptom.code == "numerics.nonfinite-input":
        return False                              # the batch itself holds NaN: only NaN inputs explain it
    if cause.code in _CONSTANT_INPUT and symptom.category == "numerics":
        return _op(symptom) in ("div", "rdiv", "reciprocal", "rsqrt", "std", "var") or not own_numerics_bug(symptom)
    return _scale_numerics(cause, symptom)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True                               # not a number: nothing to say


#: growth of the loss (last finite value over the start) that makes a NaN gradient the lr's doing
GROWN = 100.0


def _lr(cause: Finding, symptom: Finding) -> bool:
    if not _finite(cause.evidence.get("update_ratio_median", 0.0)):
        return False                              # read from NaN/Inf updates: the NaN, not the lr, made them
    if cause.code in LR_LOW or cause.code in ("lr.schedule-collapses", "lr.warmup-never-ends"):  # too slow
        return symptom.code in STALLED or symptom.code in UNDERFIT
    if symptom.code == "grad.exploding-through-time":
        return False                              # the recurrence's doing: clipping fixes it at the same lr
    # (a schedule still rising far past its base ends in a too-high lr)
    return (cause.code in LR_HIGH or cause.code == "lr.schedule-keeps-rising") and (
        _scale_numerics(cause, symptom) or _grown_first(cause, symptom))


def _grown_first(cause: Finding, symptom: Finding) -> bool:
    """A NaN/Inf gradient while the loss was still finite but had grown >= 100x from where the too-high
    lr's finding saw it start: values blown up by the updates overflow in the backward pass (a
    transformer's attention, a softmax at 1e8), not an op at its singular point."""
    if symptom.code != "numerics.nonfinite-gradient":
        return False
    try:
        start = abs(float(cause.evidence.get("start_loss", "nan")))
        last = abs(float(symptom.evidence.get("last_finite_loss", "nan")))
    except (TypeError, ValueError):
        return False
    return math.isfinite(last) and start > 0 and last >= GROWN * start


#: every gradient zero only from after this step on: the run trained with gradients at first
ZEROED_LATE = 8
#: ... after updates this large against the weights (the lr finding's peak update ratio)
ZEROING_UPDATE = 0.3


def _zeroed_by_updates(cause: Finding, symptom: Finding) -> bool:
    """Every gradient exactly zero, from well after the start, in a run whose too-high rate made
    updates as large as the weights: the updates saturated the model (a softmax pushed to one-hot,
    every unit dead), which is the rate's doing, not a structural cut (argmax, rounding: zero from the
    first step). The one link up the causal order besides a lost sign's."""
    if cause.code not in LR_HIGH or symptom.code != "grad-flow.all-gradients-zero":
        return False
    peak = cause.evidence.get("update_ratio_peak")
    return (isinstance(peak, (int, float)) and math.isfinite(peak) and peak >= ZEROING_UPDATE
            and symptom.first_step is not None and symptom.first_step > ZEROED_LATE)


def _stall_of_vanishing(cause: Finding, symptom: Finding) -> bool:
    """Gradients measured to vanish through the depth of the model explain a plain-SGD stall that only
    an adaptive optimizer gets out of: SGD's step is the vanished gradient itself, Adam's is normalised
    per weight. The vanishing (activation, init, depth) is the root; changing the optimizer is one of its
    fixes. The one link up the causal order from grad (the optimizer's edges go down to grad otherwise)."""
    return cause.code == "grad.vanishing-gradients" and symptom.code == "optimizer.plain-sgd-stalls"


def _lr_symptom(cause: Finding, symptom: Finding) -> bool:
    """Another setting makes training look like a wrong lr (only lr findings read from training)."""
    return symptom.category != "lr" or symptom.code in LR_HIGH | LR_LOW


def _lr_high_symptom(cause: Finding, symptom: Finding) -> bool:
    return symptom.category != "lr" or symptom.code in LR_HIGH


def _lr_low_symptom(cause: Finding, symptom: Finding) -> bool:
    return symptom.category != "lr" or symptom.code in LR_LOW


def _memorised(cause: Finding, symptom: Finding) -> bool:
    """Noisy labels explain an overfitted model when it memorised them: the training loss fell below
    what the noise allows a model that learns the true classes, or the evaluation loss rose."""
    ev = cause.evidence
    try:
        below_floor = float(ev["train_loss"]) < float(ev["noise_floor_loss"])
    except (KeyError, TypeError, ValueError):
        below_floor = False
    return below_floor or bool(ev.get("eval_loss_rise"))


def _collapsed(cause: Finding, symptom: Finding) -> bool:
    """Labels collapsed to one class make every other class look unseen in training."""
    trained = symptom.evidence.get("training_classes")
    label = cause.evidence.get("label")
    return isinstance(trained, (list, tuple)) and label is not None and [str(c) for c in trained] == [str(label)]


def _eval_bn(cause: Finding, symptom: Finding) -> bool:
    """Only batch-norm layers left in eval mode change the scale of training (dropout off does not)."""
    return bool(cause.evidence.get("batch_norm"))


def _summed_grads(cause: Finding, symptom: Finding) -> bool:
    """Gradients summed over W ranks make every step of a plain-gradient optimizer (SGD) W times
    longer, a W times too high lr; Adam & co. normalise the scale away, and it never stalls the loss."""
    cls = str(cause.evidence.get("optimizer_class") or "")
    return (cause.evidence.get("reduction") == "sum" and bool(cls) and cls not in _SCALE_FREE
            and symptom.code not in STALLED)


def _own_shard(cause: Finding, symptom: Finding) -> bool:
    """Replicas whose gradients are never all-reduced each learn from their own shard of the data."""
    return cause.evidence.get("reduction") == "none" or cause.evidence.get("gradients_all_reduced") is False


def _both(*conds: Condition) -> Condition:
    return lambda c, s: all(cond(c, s) for cond in conds)


def _e(cause: str, symptoms: str, why: str, when: Condition | None = None) -> Edge:
    return Edge(frozenset(cause.split()), frozenset(symptoms.split()), why, when)


_U = " ".join(sorted(UNDERFIT))
#: what a loss minimised with its sign lost produces (see :func:`links`)
_SIGN_SYMPTOMS = frozenset({"lr", "activation", "grad", "numerics", "loss-curve", "fit",
                            "init.reinitialised-during-training"})

#: The causal graph, after the field guide's "overfit a single batch" table and category list.
EDGES: tuple[Edge, ...] = (
    _e("labels.noisy", "fit.overfitting fit.variance", "a model that memorises randomly wrong labels fits noise "
       "that the validation labels do not share: the gap between train and validation is the noise", _memorised),
    _e("labels.single-class", "data.unseen-classes", "labels collapsed to one class (e.g. divided by 255 or "
       "floor-divided) leave every other class out of training, so the evaluation classes look unseen", _collapsed),
    _e("data", "fit", "class imbalance, leakage, too little data or a shift decide the fit"),
    _e("data.padding-mask-inverted", f"grad.vanishing-gradients lr loss-curve {_U}", "attention that reads "
       "only padding cannot use the context: the loss plateaus and almost no gradient reaches the attention "
       "weights (the padded keys carry no signal)", _lr_low_symptom),
    _e("data.unshuffled-batches", "lr loss-curve", "batches sorted by class make the loss oscillate and "
       "every step swing the model to the batch's class, which reads as a too-high lr", _lr_high_symptom),
    _e("labels.real-class-ignored", "numerics.nonfinite-forward", "a batch whose targets are all of the "
       "ignored class leaves the loss a mean over no target: NaN"),
    _e("labels", f"lr loss-curve {_U}", "corrupted or shuffled labels make the loss oscillate or plateau and "
       "the model unable to fit", _lr_low_symptom),
    _e("preprocessing", "lr activation grad numerics loss-curve fit",
       "unnormalised, constant or NaN inputs saturate units, blow up activations and gradients, make the "
       "loss NaN and the lr look wrong", _both(_preprocessing, _lr_symptom)),
    _e("shape", f"lr loss-curve {_U}", "a silent broadcast trains the wrong objective", _lr_symptom),
    _e("dtype", "numerics loss-curve", "half precision overflows and underflows; wrong dtypes change the loss"),
    _e("dtype.continuous-values-truncated", "loss-input.class-ids-regressed", "continuous targets truncated to "
       "whole numbers look like class ids regressed: the truncation is the bug, not the loss"),
    _e("loss-input", f"lr grad numerics loss-curve {_U}", "a loss fed probabilities or ReLU outputs "
       "plateaus, vanishes or saturates into log(0)", _both(_scale_numerics, _lr_symptom)),
    _e("train-mode", "loss-curve fit", "dropout/batch-norm in the wrong mode distorts the loss and the "
       "validation error"),
    _e("train-mode.training-in-eval-mode", "lr activation grad numerics", "batch-norm layers trained in eval "
       "mode normalise with their initial running statistics, i.e. not at all: activations, gradients and "
       "the loss blow up as if the lr were too high", _both(_eval_bn, _scale_numerics, _lr_symptom)),
    _e("zero-grad", f"lr activation grad numerics loss-curve {_U}", "accumulated gradients make every "
       "step too large", _both(_scale_numerics, _lr_symptom)),
    _e("grad-flow", f"lr loss-curve {_U}", "parameters without gradient or update leave the loss flat",
       _lr_low_symptom),
    _e("init", f"lr activation grad numerics loss-curve {_U}", "a poor initial scale kills or saturates "
       "units and makes gradients vanish or explode", _both(_scale_numerics, _lr_low_symptom)),
    _e("init.reinitialised-during-training", f"lr loss-curve {_U}", "weights re-initialised every epoch "
       "throw the learning away: the loss jumps back up (read as going up, oscillating or a too-high lr) and "
       "the model never gets past one epoch's training", _lr_symptom),
    _e("regularization", f"lr loss-curve {_U}", "too much weight decay or dropout holds the fit back",
       _lr_low_symptom),
    _e("optimizer", f"lr activation grad numerics loss-curve {_U}", "optimizer settings make steps too large "
       "or too small", _both(_scale_numerics, _lr_symptom)),
    _e("distributed.gradients-not-averaged", "lr activation grad numerics loss-curve", "gradients summed "
       "over the ranks instead of averaged multiply every SGD step by the world size: the lr is that much "
       "too high", _both(_summed_grads, _scale_numerics, _lr_high_symptom)),
    _e("distributed.replicas-diverged distributed.gradients-not-averaged", "fit.overfitting fit.variance",
       "replicas that never all-reduce their gradients each fit only their own shard of the training data: "
       "1/world-size of it, so the model each rank evaluates overfits", _own_shard),
    _e("distributed.batchnorm-not-synced", "fit.overfitting fit.variance", "batch norm over a tiny per-rank "
       "batch trains on noisy batch statistics that the running statistics used in evaluation do not "
       "match: the validation error grows away from the training error"),
    _e("lr", f"activation grad numerics loss-curve {_U}", "a too-high lr kills ReLUs, explodes gradients and "
       "the loss; a too-low one leaves it flat", _lr),
    _e("activation", f"grad loss-curve {_U}", "dead or saturated units pass no gradient and stall the loss"),
    _e("grad", f"numerics loss-curve {_U}", "exploding gradients overflow, vanishing ones stall",
       _scale_numerics),
    _e("numerics", f"loss-curve {_U}", "a NaN/Inf loss or weight is what the curve and the fit show"),
    _e("loss-curve", _U, "a loss that does not go down leaves the model underfitted"),
)


def _check_graph(edges: Iterable[Edge]) -> None:
    for edge in edges:
        for side in (edge.cause, edge.symptom):
            for p in side:
                if p not in CATEGORIES:
                    category_of(p)                # a full code: validates its category
        for c in edge.cause:
            for s in edge.symptom:
                cc, sc = c.partition(".")[0], s.partition(".")[0]
                if _RANK[cc] >= _RANK[sc]:
                    raise ValueError(f"edge {c} -> {s} goes against the causal order")


_check_graph(EDGES)


# ---------------------------------------------------------------------- evidence conditions
def _models(facts: Mapping[str, Any]) -> tuple[list[str], dict[str, set[str]]]:
    models = [str(m.get("name")) for m in facts.get("models") or () if isinstance(m, Mapping) and m.get("name")]
    by_opt: dict[str, set[str]] = {}
    for o in facts.get("optimizers") or ():
        if isinstance(o, Mapping) and o.get("name") and o.get("models"):
            by_opt[str(o["name"])] = {str(m) for m in o["models"]}
    return models, by_opt


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def scope(f: Finding, models: Sequence[str], by_opt: Mapping[str, set[str]]) -> frozenset[str]:
    """The models a finding is about (empty: the whole run, e.g. the loss or the data)."""
    names = [f.location] + [n for k in _SCOPE_KEYS for n in _names(f.evidence.get(k))]
    out: set[str] = set()
    for n in names:
        out.update(m for m in models if n == m or n.startswith((m + ".", m + "[")))
    for n in [f.location] + _names(f.evidence.get("optimizer")):
        out.update(by_opt.get(n, ()))
    return frozenset(out)


def _static(f: Finding) -> bool:
    return f.category in STATIC and not f.code.partition(".")[2].startswith("crash")


def _in_time(cause: Finding, symptom: Finding) -> bool:
    if _static(cause) or cause.first_step is None or symptom.first_step is None:
        return True
    return cause.first_step <= symptom.first_step


def _named_cause(cause: Finding, symptom: Finding) -> bool:
    named = symptom.evidence.get("likely_causes")
    return (isinstance(named, (list, tuple)) and cause.code in named
            and _RANK[cause.category] < _RANK[symptom.category])


def links(findings: Sequence[Finding], facts: Mapping[str, Any] | None = None,
          edges: Sequence[Edge] = EDGES) -> dict[int, list[int]]:
    """``{symptom index: [cause indices]}`` for the findings the evidence links."""
    models, by_opt = _models(facts or {})
    scopes = [scope(f, models, by_opt) for f in findings]
    out: dict[int, list[int]] = {}
    for j, s in enumerate(findings):
        if s.code in INDEPENDENT:
            continue                              # a bug of its own: no cause upstream
        for i, c in enumerate(findings):
            if i == j or c.severity.rank < 1 or c.key == s.key:
                continue
            if scopes[i] and scopes[j] and not scopes[i] & scopes[j]:
                continue                          # about different models
            if s.evidence.get("model_is_linear") is True and not _named_cause(c, s):
                continue                          # a linear model at a linear model's loss: its own cause
            if s.evidence.get("objective_sign_flipped") is True and c.category != "loss-input":
                continue                          # the loss's own sign: only its input is upstream of it
            if c.evidence.get("objective_sign_flipped") is True and _hit(s, _SIGN_SYMPTOMS):
                out.setdefault(j, []).append(i)   # its symptoms, up the order (no cycle: nothing below links in)
                continue
            if c.evidence.get("model_is_linear") is True and s.code in STALLED:
                out.setdefault(j, []).append(i)   # its plateau is the linear optimum (no cycle: no cause above)
                continue
            if _zeroed_by_updates(c, s) or _stall_of_vanishing(c, s):
                out.setdefault(j, []).append(i)   # up the order (no cycle: the reverse edge is skipped below)
                continue
            if _stall_of_vanishing(s, c):
                continue                          # (the stall is the vanishing's symptom, not its cause)
            if _named_cause(c, s) or (_in_time(c, s) and any(e.matches(c, s) for e in edges)):
                out.setdefault(j, []).append(i)
    return out


def link(findings: Sequence[Finding], facts: Mapping[str, Any] | None = None) -> list[Finding]:
    """The findings with ``caused_by`` set from :func:`links` (a finding left unchanged is the same object)."""
    found = links(findings, facts)
    out = []
    for j, f in enumerate(findings):
        causes = tuple(findings[i].key for i in found.get(j, ()))
        out.append(f if f.caused_by == causes else dataclasses.replace(f, caused_by=causes))
    return out


def _step(f: Finding) -> float:
    return math.inf if f.first_step is None else f.first_step


def groups(findings: Sequence[Finding]) -> list[tuple[Finding, list[Finding]]]:
    """``[(root cause, [its symptoms])]`` from linked findings (their ``caused_by``, see :func:`link`),
    root causes first: the most severe group (a root and its symptoms), then the group whose trouble
    began first, then the order seen. A symptom of two root causes is listed under the first;
    symptoms in causal order (:data:`ORDER`: lr before activation before the loss curve before the fit)."""
    index = {f.key: i for i, f in enumerate(findings)}
    children: dict[int, list[int]] = {}
    has_cause = set()
    for j, f in enumerate(findings):
        for key in f.caused_by:
            i = index.get(key)
            if i is not None and i != j:
                children.setdefault(i, []).append(j)
                has_cause.add(j)
    roots = [i for i in range(len(findings)) if i not in has_cause]

    def below(root: int) -> dict[int, int]:       # descendant -> depth
        depth, frontier = {root: 0}, [root]
        while frontier:
            nxt = []
            for i in frontier:
                for j in children.get(i, ()):
                    if j not in depth:
                        depth[j] = depth[i] + 1
                        nxt.append(j)
            frontier = nxt
        return depth

    trees = {r: below(r) for r in roots}

    def key(r: int) -> tuple[float, ...]:
        members = [findings[i] for i in trees[r]]
        return (-max(f.severity.rank for f in members), -findings[r].severity.rank,
                min(_step(f) for f in members), r)

    out: list[tuple[Finding, list[Finding]]] = []
    placed: set[int] = set()
    for r in sorted(roots, key=key):
        depth = trees[r]
        syms = sorted((j for j in depth if j != r and j not in placed),
                      key=lambda j: (_RANK[findings[j].category], _step(findings[j]), j))
        placed.update(syms)
        placed.add(r)
        out.append((findings[r], [findings[j] for j in syms]))
    out += [(f, []) for i, f in enumerate(findings) if i not in placed]   # only on a cycle of given links
    return out


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Linked findings, each root cause followed by its symptoms, in :func:`groups` order."""
    return [f for root, syms in groups(findings) for f in (root, *syms)]


def headline(findings: Sequence[Finding]) -> Finding | None:
    """The root cause to show first (linked findings): the first root at warning or error, or None."""
    for root, _ in groups(findings):
        if root.severity.rank >= 1:
            return root
    return None
