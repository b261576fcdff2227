"""Noisy training labels that the model memorises, judged from the observed sample.

A large share of randomly wrong labels is invisible in the code: the model still
trains, and given enough capacity it memorises the wrong labels (the training loss goes
far below what a model that generalises could reach) while the evaluation loss rises.

At the end of a run whose training loss fell below half the loss that 15% of random
labels allow (memorisation), or whose evaluation loss rose, the (input, label) pairs kept from sampled training steps (:mod:`.sample`)
get 2-fold out-of-fold class probabilities from the three probes of :mod:`.probe`
(logistic regression, 5-NN, small MLP; averaged). Two estimates of the noise share:

* confident learning (:func:`nndoctor.evaluate.labels.find_label_issues`) on those
  probabilities; it also counts the genuine overlap of hard classes as noise, so alone
  it would call every hard task noisy;
* the disagreement between the labels and the probes' consensus where the probes are
  most confident (top quarter, all three agreeing): random label noise leaves a share
  of wrong labels there, clean classes that merely overlap do not. When the probes agree
  on too few confident examples (a task too hard for them) nothing is said.

``labels.noisy`` is a warning when both estimates are >= 15% (the consensus one with a
lower 2-sigma bound >= 10%, and below 3/4 of the share random labels would give) and the
evaluation loss rises; info when the noise estimate holds without that held-out symptom,
e.g. a training loss below half the loss that noise allows (memorisation) with no
evaluation data: a model can learn a function the probes cannot (XOR-like features, token
order), and then its clean labels look noisy to the probes while its training loss falls
just the same, so only held-out data tells the two apart (only on runs that passed the gate above: the probes cost
0.05-0.7 s of one core, so they are not run at the end of every run).

The probes are fitted cheapest first (5-NN, MLP, then the logistic regression's LBFGS fit) and
stop as soon as exact bounds on the consensus rule the noise out (:func:`ruled_out`): on clean
labels that the 5-NN gets right, or on labels so random that the probes fitted so far hardly
agree, the costly fits are left out with the same verdict.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from nndoctor.checks import Check, register
from nndoctor.evaluate.labels import find_label_issues
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.probe import (
    MIN_STEPS,
    OutOfFold,
    affordable,
    out_of_fold,
    train_chance_loss,
)
from nndoctor.monitor.checks.data.sample import ObservedData
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import RunEnd

__all__ = ["NoisyLabels", "NoiseEstimate", "estimate_noise", "noise_floor", "ruled_out"]

MIN_PAIRS = 300
MAX_PAIRS = 1200  # the probes' cost grows with the sample: ~1 s of one core for 1200 examples
NOISE_SHARE = 0.15
NOISE_LOWER = 0.10
CONFIDENT_QUANTILE = 0.75
MIN_CONSENSUS = 0.2  # share of the examples in the confident consensus region


class NoiseEstimate:
    """The two noise estimates of a sample and how much they can be trusted."""

    def __init__(self, cl_rate: float, consensus: float, consensus_n: int, consensus_share: float,
                 n: int, flagged: int, classes: int) -> None:
        self.cl_rate, self.consensus, self.consensus_n = cl_rate, consensus, consensus_n
        self.consensus_share, self.n, self.flagged, self.classes = consensus_share, n, flagged, classes

    @property
    def lower(self) -> float:
        p, m = self.consensus, max(self.consensus_n, 1)
        return p - 2.0 * math.sqrt(max(p * (1 - p), 1e-9) / m)

    @property
    def rate(self) -> float:
        """The conservative noise share: the smaller estimate."""
        return min(self.cl_rate, self.consensus)

    @property
    def noisy(self) -> bool:
        near_random = 0.75 * (self.classes - 1) / self.classes  # the probes see no structure at all
        return (self.consensus_share >= MIN_CONSENSUS and self.cl_rate >= NOISE_SHARE
                and self.consensus >= NOISE_SHARE and self.lower >= NOISE_LOWER and self.consensus < near_random)


def ruled_out(oof: OutOfFold) -> bool:
    """True when the probes fitted so far already rule out :attr:`NoiseEstimate.noisy`, whatever
    the probes still to fit would say (exact bounds, so stopping early never changes the verdict).

    The confident consensus keeps examples on which every probe agrees: at most the ``agree``
    examples on which the fitted probes agree, ``wrong`` of them against the label, ``right``
    with it. ``noisy`` needs ``m >= MIN_CONSENSUS * n`` of them (so ``agree`` must reach it), at
    least ``NOISE_SHARE * m`` wrong (so ``wrong >= NOISE_SHARE * MIN_CONSENSUS * n``), and fewer
    than ``near_random * m`` wrong, so more than ``(1 - near_random) * m`` right."""
    preds = [p.argmax(1) for p in (oof.knn, oof.mlp, oof.linear) if p is not None]
    if not preds:
        return False
    n, k = len(oof.y), oof.prior.shape[1]
    agree = np.ones(n, dtype=bool)
    for p in preds[1:]:
        agree &= p == preds[0]
    wrong = int((agree & (preds[0] != oof.y)).sum())
    right = int(agree.sum()) - wrong
    floor = MIN_CONSENSUS * n * (1 - 1e-9)  # (the margin: rounding never rules out a noisy sample)
    near_random = 0.75 * (k - 1) / k
    return (int(agree.sum()) / n < MIN_CONSENSUS or wrong < NOISE_SHARE * floor
            or right <= (1 - near_random) * floor)


def estimate_noise(x: np.ndarray, y: np.ndarray, seed: int = 0, early: bool = False) -> NoiseEstimate | None:
    """Out-of-fold probe probabilities -> confident learning and the confident-consensus disagreement.

    ``early``: ``None`` as soon as the probes fitted so far rule the noise out (:func:`ruled_out`),
    the costlier probes left unfitted; ``estimate.noisy`` is the same either way."""
    oof = out_of_fold(x, y, seed=seed, min_examples=MIN_PAIRS,
                      keep_going=(lambda part: not ruled_out(part)) if early else None)
    if oof is None or oof.linear is None or oof.knn is None or oof.mlp is None:
        return None
    probs = (oof.linear + oof.knn + oof.mlp) / 3.0
    labels = oof.y
    cl = find_label_issues(probs, labels)
    agree = (oof.linear.argmax(1) == oof.knn.argmax(1)) & (oof.knn.argmax(1) == oof.mlp.argmax(1))
    conf = probs.max(1)
    sel = agree & (conf >= np.quantile(conf, CONFIDENT_QUANTILE))
    m = int(sel.sum())
    dis = float((probs[sel].argmax(1) != labels[sel]).mean()) if m else 0.0
    return NoiseEstimate(cl_rate=cl.noise_rate, consensus=dis, consensus_n=m, consensus_share=m / len(labels),
                         n=len(labels), flagged=len(cl.issues), classes=probs.shape[1])


def noise_floor(rate: float, classes: int) -> float:
    """Cross-entropy of the best predictor of labels flipped uniformly to other classes with
    probability ``rate`` (a clean task the model would otherwise solve perfectly)."""
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    return -(1 - rate) * math.log(1 - rate) - rate * math.log(rate / max(classes - 1, 1))


def _eval_rise(state: object) -> str:
    """'min a at step s -> b at step t' when the evaluation loss rose by 20% from its minimum."""
    raw_steps, raw_values = state.eval_losses.series()  # type: ignore[attr-defined]
    train_steps = state.losses.series()[0]  # type: ignore[attr-defined]
    if len(raw_steps) >= 2 and raw_steps[0] == raw_steps[-1] and train_steps and train_steps[0] != train_steps[-1]:
        return ""  # (the batches of one evaluation pass, not a curve)
    steps, values = per_step(raw_steps, raw_values)
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(values) < 3:
        return ""
    i = int(np.argmin(values))
    if i >= len(values) - 1 or values[-1] < 1.2 * values[i]:
        return ""
    return f"{values[i]:.3g} at step {steps[i]} -> {values[-1]:.3g} at step {steps[-1]}"


@register
class NoisyLabels(Check):
    """A large share of the training labels look randomly wrong, and the model memorises them."""

    code = "labels.noisy"
    needs = ("end",)
    end_cost = 2  # probes fitted at the end, after labels.unrelated-to-inputs' (nndoctor/monitor/ending.py)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        data = ObservedData.of(self.state)
        if data is None or data.pair_rows < MIN_PAIRS or data.train_counts is None or not data.single_input:
            return ()
        if len(self.state.optimizers) != 1 or data.unshuffled(1) or data.element_targets:
            return ()
        base = train_chance_loss(data)
        _, values = per_step(*self.state.losses.series())
        values = values[np.isfinite(values)]
        if base is None or base <= 0 or len(values) < MIN_STEPS:
            return ()
        level = float(np.median(values[-max(10, len(values) // 4):]))
        rise = _eval_rise(self.state)
        classes = max(len(data.train_counts), 2)
        if level >= 0.5 * noise_floor(NOISE_SHARE, classes) and not rise:
            return ()  # no memorisation of even 15% noise and no overfitting sign: the probes are not run
        x = np.concatenate(data.pairs_x)[:MAX_PAIRS]
        y = np.concatenate(data.pairs_y)[:MAX_PAIRS]
        fitted = affordable(x, y, event, MIN_PAIRS, self.name())
        if fitted is None:
            return ()
        est = estimate_noise(*fitted, early=True)
        if est is None or not est.noisy:
            return ()
        floor = noise_floor(est.rate, est.classes)
        memorised = level < 0.5 * floor
        severity = Severity.WARNING if rise else Severity.INFO
        symptom = []
        if memorised:
            symptom.append(f"the training loss fell to {level:.3g}, below half the {floor:.3g} a model that "
                           f"learns the true classes would get on labels this noisy: it memorises the wrong labels")
        if rise:
            symptom.append(f"the evaluation loss rises ({rise})")
        evidence = {"noise_rate": round(est.cl_rate, 4), "confident_disagreement": round(est.consensus, 4),
                    "confident_disagreement_lower": round(est.lower, 4), "confident_examples": est.consensus_n,
                    "examples": est.n, "n_flagged": est.flagged, "classes": est.classes,
                    "train_loss": round(level, 4), "noise_floor_loss": round(floor, 4),
                    "chance_loss": round(base, 4), "eval_loss_rise": rise,
                    "which": "in the training data; nndoctor saw only a sample, so run `nndoctor evaluate` "
                             "on the data set (or cleanlab) to list them"}
        return [self.finding(
            f"about {est.rate:.0%} of the training labels look randomly wrong: probes fitted on {est.n} observed "
            f"training examples disagree with {est.consensus:.0%} of the labels where they are most confident "
            f"and agree ({est.consensus_n} examples, lower bound {est.lower:.0%}); confident learning estimates "
            f"{est.cl_rate:.0%}" + ("; " + "; ".join(symptom) if symptom else ""),
            evidence, location="training labels", severity=severity)]
