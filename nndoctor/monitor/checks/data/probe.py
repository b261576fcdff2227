"""Are the labels related to the inputs? Probes on a sample of observed training batches.

When the training loss sits at chance level (the loss of predicting the class priors),
either the labels carry no information about the inputs (shuffled apart, misaligned,
read from the wrong column) or the model / its optimisation is broken. Two cheap probes
fitted on up to 4096 (input, label) pairs nndoctor kept from sampled training steps, with
2-fold cross-validation, tell them apart:

* a logistic regression on the standardised inputs (bag of ids for token inputs);
* a 5-nearest-neighbour classifier (non-linear structure in a few dimensions);
* a one-hidden-layer MLP on the 64 principal components, early-stopped (non-linear
  structure among irrelevant dimensions, such as XOR of two of sixteen inputs).

All are scored by their held-out cross-entropy against predicting the class priors
(accuracy would hide what they learn on imbalanced classes) and by their accuracy against
the best constant prediction (an over-confident probe can lose on cross-entropy and still
be right). None doing better (not significantly, by less than 5% of the priors' loss and
by less than 5 points of accuracy) gives
``labels.unrelated-to-inputs``; a probe far better while the model is not gives
``fit.model-at-chance`` (info): the labels are learnable, look at the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.sample import ObservedData
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import RunEnd

__all__ = ["LabelsUnrelated", "MLP_HIDDEN", "OutOfFold", "PROBE_ORDER", "ProbeResult", "affordable", "chance_loss", "out_of_fold",
           "pair_probe", "probe", "probe_seconds", "train_chance_loss"]

PAIR_PROBE_KEY = "nndoctor.pair_probe"  # state.extra: (pairs, ProbeResult) of the end-of-run probes
MIN_PAIRS = 200
MIN_STEPS = 40
NEIGHBOURS = 5
MLP_ITERATIONS = 300
MLP_HIDDEN = 64  # units of the MLP probe's hidden layer
MLP_PATIENCE = 6  # validation checks (of 10 steps) without improvement before the MLP probe stops
#: what the three probes cost, about (seconds of one core, measured: 0.05 s for 300 examples of
#: 10 features, 0.24 s for 1200 of 100, 0.7 s for 1200 of 784): a fixed part (the logistic
#: regression's ~50 LBFGS evaluations and the MLP's >= 70 steps cost about as much on a small
#: sample) and a part per example, to fit them to the end-of-run budget
PROBE_S_FIXED = 0.03
PROBE_S_PER_EXAMPLE = 8e-5
PROBE_S_PER_VALUE = 6e-7


@dataclass(frozen=True)
class ProbeResult:
    """Held-out results of the two probes against predicting the class priors."""

    n: int
    prior_loss: float  # mean cross-entropy of the training fold's class priors
    chance: float  # accuracy of the best constant prediction (each test fold's most frequent class)
    linear_loss: float
    knn_loss: float
    linear: float  # accuracies
    knn: float
    mlp_loss: float
    mlp: float
    linear_z: float  # z of the per-example loss reduction against the priors
    knn_z: float
    mlp_z: float

    @property
    def gain(self) -> float:
        """The largest loss reduction of the probes (nats per example)."""
        return self.prior_loss - min(self.linear_loss, self.knn_loss, self.mlp_loss)

    @property
    def best_accuracy(self) -> float:
        return max(self.linear, self.knn, self.mlp)

    @property
    def z(self) -> float:
        """The strongest evidence that a probe beats the priors: by loss, or by accuracy over
        the majority class (an over-confident probe can win on accuracy and lose on loss)."""
        se = math.sqrt(max(self.chance * (1 - self.chance), 1e-6) / max(self.n, 1))
        return max(self.linear_z, self.knn_z, self.mlp_z, (self.best_accuracy - self.chance) / se)


def _logistic(a: np.ndarray, y: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Multinomial logistic regression (L2, LBFGS); returns weights with the bias as the last row.

    The loss and its gradient are written out (no autograd: about half the cost per evaluation)."""
    x = torch.tensor(np.hstack([a, np.ones((len(a), 1))]), dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(torch.tensor(y), k).to(torch.float64)
    n = float(len(a))
    w = torch.zeros(x.shape[1], k, dtype=torch.float64)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        logits = x @ w
        lse = torch.logsumexp(logits, dim=1)
        loss = (lse.sum() - (logits * onehot).sum()) / n + lam * (w[:-1] ** 2).sum()
        grad = x.t() @ ((torch.exp(logits - lse[:, None]) - onehot) / n)
        grad[:-1] += (2.0 * lam) * w[:-1]
        w.grad = grad
        return loss

    with torch.no_grad():
        opt.step(closure)
    return w.numpy()


def _held_out_loss(log_probs: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of the MLP probe on its early-stopping rows (one validation check)."""
    return -float(log_probs[np.arange(len(y)), y].mean())


def _mlp(a: np.ndarray, y: np.ndarray, b: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Log-probabilities on ``b`` of a one-hidden-layer MLP probe (early-stopped on 20% of ``a``).

    Inputs are reduced to their 64 principal components; the weights come from a private
    generator, so the user's random state is untouched. Full-batch Adam (lr 1e-2, L2 1e-4, as
    ``torch.optim.Adam``) for at most ``MLP_ITERATIONS`` steps with the gradients written out by
    hand on one flat parameter vector, validated every 10 steps, stopped after ``MLP_PATIENCE``
    checks without improvement (noise overfits at once), the best validated weights kept. The
    arithmetic is numpy's (float32): on matrices this small a torch call costs 3-8x a numpy one
    (its softmax over 10 classes ~35 us, a 200x64 @ 64x10 product ~20 us), and the probe is what a
    user waits for at the end of a run.
    """
    centre = a.mean(0)
    vals, vecs = np.linalg.eigh((a - centre).T @ (a - centre))
    proj = vecs[:, ::-1][:, :64] / np.sqrt(np.maximum(vals[::-1][:64], 1e-9) / len(a))
    g = torch.Generator().manual_seed(seed)
    xa = ((a - centre) @ proj).astype(np.float32)
    xb = ((b - centre) @ proj).astype(np.float32)
    t = np.asarray(y, dtype=np.int64)
    order = torch.randperm(len(xa), generator=g).numpy()
    fit, stop = order[: int(0.8 * len(xa))], order[int(0.8 * len(xa)):]
    d, hidden = xa.shape[1], MLP_HIDDEN
    x_fit, x_stop, t_stop = xa[fit], xa[stop], t[stop]
    x_fit_t = np.ascontiguousarray(x_fit.T)
    onehot = np.zeros((len(fit), k), dtype=np.float32)
    onehot[np.arange(len(fit)), t[fit]] = 1.0
    n_fit = np.float32(len(fit))
    shapes = ((d, hidden), (hidden,), (hidden, k), (k,))
    ends = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
    flat = np.empty(int(ends[-1]), dtype=np.float32)
    grad = np.empty_like(flat)
    w1, b1, w2, b2 = (flat[ends[i]:ends[i + 1]].reshape(s) for i, s in enumerate(shapes))
    gw1, gb1, gw2, gb2 = (grad[ends[i]:ends[i + 1]].reshape(s) for i, s in enumerate(shapes))
    w1[...] = (torch.randn(d, hidden, generator=g) * math.sqrt(2.0 / d)).numpy()
    b1[...] = 0.0
    w2[...] = (torch.randn(hidden, k, generator=g) * math.sqrt(1.0 / hidden)).numpy()
    b2[...] = 0.0
    m, v = np.zeros_like(flat), np.zeros_like(flat)
    lr, beta1, beta2, eps, decay = 1e-2, 0.9, 0.999, 1e-8, 1e-4

    def log_probs(x: np.ndarray) -> np.ndarray:
        z = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        z -= z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    best, best_flat, waited = math.inf, flat.copy(), 0
    with np.errstate(all="ignore"):  # (NaN or overflow in the sample: silent, as torch's arithmetic was)
        for it in range(MLP_ITERATIONS):
            h = x_fit @ w1
            h += b1
            np.maximum(h, 0.0, out=h)
            dz = h @ w2
            dz += b2
            dz -= dz.max(1, keepdims=True)
            np.exp(dz, out=dz)
            dz /= dz.sum(1, keepdims=True)  # (the softmax)
            dz -= onehot
            dz /= n_fit
            np.matmul(h.T, dz, out=gw2)
            dz.sum(0, out=gb2)
            dh = dz @ w2.T
            dh *= h > 0
            np.matmul(x_fit_t, dh, out=gw1)
            dh.sum(0, out=gb1)
            grad += decay * flat
            step = it + 1
            m += (1 - beta1) * (grad - m)
            v *= beta2
            v += (1 - beta2) * grad * grad
            denom = np.sqrt(v)
            denom /= math.sqrt(1 - beta2 ** step)
            denom += eps
            flat -= (lr / (1 - beta1 ** step)) * m / denom
            if it % 10 == 9:
                val = _held_out_loss(log_probs(x_stop), t_stop)
                if val < best:
                    best, waited = val, 0
                    best_flat[...] = flat
                else:
                    waited += 1
                    if waited >= MLP_PATIENCE:
                        break
        flat[...] = best_flat
        return log_probs(xb).astype(np.float64)


def _z(gains: np.ndarray) -> float:
    sd = float(gains.std())
    return float(gains.mean()) / (sd / math.sqrt(len(gains))) if sd > 0 else (0.0 if gains.mean() <= 0 else 99.0)


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold class probabilities of each probe (and the priors) for the distinct examples
    kept; a probe left out by ``out_of_fold``'s ``keep_going`` is ``None``."""

    x: np.ndarray
    y: np.ndarray
    prior: np.ndarray  # (n, k) the training fold's class priors
    linear: np.ndarray | None
    knn: np.ndarray | None
    mlp: np.ndarray | None
    chance_hits: int


#: the probes in the order they are fitted: cheapest first (5-NN: one distance matrix; the MLP
#: probe: ~70 early-stopped full-batch steps; the logistic regression: ~50 LBFGS evaluations)
PROBE_ORDER = ("knn", "mlp", "linear")


def _knn(a: np.ndarray, ya: np.ndarray, b: np.ndarray, k: int, prior: np.ndarray) -> np.ndarray:
    d2 = (b ** 2).sum(1)[:, None] + (a ** 2).sum(1)[None, :] - 2.0 * b @ a.T
    near = np.argpartition(d2, min(NEIGHBOURS, len(a) - 1), axis=1)[:, :NEIGHBOURS]
    votes = np.zeros((len(b), k))
    np.add.at(votes, (np.repeat(np.arange(len(b)), near.shape[1]), ya[near].reshape(-1)), 1.0)
    return (votes + 2.0 * prior) / (near.shape[1] + 2.0)  # smoothed towards the priors


def _linear(a: np.ndarray, ya: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    w = _logistic(a, ya, k, lam=0.5 / len(a))  # sklearn's default strength (C=1)
    logits = np.hstack([b, np.ones((len(b), 1))]) @ w
    logits -= logits.max(1, keepdims=True)
    return np.exp(logits - np.log(np.exp(logits).sum(1, keepdims=True)))


def out_of_fold(x: np.ndarray, y: np.ndarray, seed: int = 0, min_examples: int = 20,
                keep_going: Callable[[OutOfFold], bool] | None = None) -> OutOfFold | None:
    """2-fold cross-validated class probabilities of the three probes; ``None`` when fewer than
    ``min_examples`` distinct examples (or a single class, or under 10 per class) remain.

    The probes are fitted in :data:`PROBE_ORDER`; after each, ``keep_going`` (when given) sees
    what is fitted so far and may stop there (the probes not fitted are ``None``). Each probe's
    probabilities are the same whether or not the others were fitted."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    _, first = np.unique(x.round(6), axis=0, return_index=True)  # one copy of each example
    x, y = x[np.sort(first)], y[np.sort(first)]
    n = len(y)
    if n < max(min_examples, 4) or len(np.unique(y)) < 2 or n < 10 * (int(y.max()) + 1):
        return None  # too few examples, or too few per class for a probe to mean anything
    order = np.random.default_rng(seed).permutation(n)
    folds = (order[: n // 2], order[n // 2:])
    k = int(y.max()) + 1
    prior_out = np.zeros((n, k))
    chance = 0
    splits = []
    for tr, te in (folds, folds[::-1]):
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        prior = (np.bincount(y[tr], minlength=k) + 0.5) / (len(tr) + 0.5 * k)
        prior_out[te] = prior
        chance += int(np.bincount(y[te]).max())  # no label-blind guess does better
        splits.append((tr, te, (x[tr] - mu) / sd, (x[te] - mu) / sd, prior))
    fitted: dict[str, np.ndarray | None] = dict.fromkeys(PROBE_ORDER)
    oof = OutOfFold(x=x, y=y, prior=prior_out, chance_hits=chance, **fitted)
    for name in PROBE_ORDER:
        out = np.zeros((n, k))
        for tr, te, a, b, prior in splits:
            if name == "knn":
                out[te] = _knn(a, y[tr], b, k, prior)
            elif name == "mlp":
                out[te] = np.exp(_mlp(a, y[tr], b, k, seed))
            else:
                out[te] = _linear(a, y[tr], b, k)
        fitted[name] = out
        oof = OutOfFold(x=x, y=y, prior=prior_out, chance_hits=chance, **fitted)
        if keep_going is not None and name != PROBE_ORDER[-1] and not keep_going(oof):
            break
    return oof


def probe_seconds(n: int, features: int) -> float:
    """About how long :func:`out_of_fold` takes on ``n`` examples of ``features`` values."""
    return PROBE_S_FIXED + n * (PROBE_S_PER_EXAMPLE + PROBE_S_PER_VALUE * features)


def affordable(x: np.ndarray, y: np.ndarray, event: RunEnd, minimum: int,
               who: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The pairs the probes can be fitted on in the end-of-run time left: all of them, an evenly
    spread subset (not under ``minimum``), or ``None`` when not even that fits; what is left
    out is noted in ``event.skipped`` (see nndoctor/monitor/ending.py)."""
    left, n = event.time_left(), len(y)
    features = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    if probe_seconds(n, features) <= left:
        return x, y
    keep = int((left - PROBE_S_FIXED) / (probe_seconds(1, features) - PROBE_S_FIXED))
    if keep < minimum:
        event.skipped.append(f"{who}: probes on {n} observed examples (~{probe_seconds(n, features):.2g} s) "
                             f"did not fit the {max(left, 0.0):.2g} s left")
        return None
    event.skipped.append(f"{who}: probes fitted on {keep} of {n} observed examples (the time left)")
    rows = np.linspace(0, n - 1, keep).round().astype(np.int64)
    return x[rows], y[rows]


def pair_probe(state: Any, data: Any, event: RunEnd, who: str) -> ProbeResult | None:
    """The probes fitted on the observed (input, label) pairs at the end of the run, once for the
    checks that read them (the label check and the linear-model check: the second would not fit the
    end-of-run budget again); None with a single class, too few pairs or no time left."""
    cached = state.extra.get(PAIR_PROBE_KEY)
    if cached is not None and cached[0] == data.pair_rows:
        return cached[1]
    x, y = np.concatenate(data.pairs_x), np.concatenate(data.pairs_y)
    if len(np.unique(y)) < 2:
        return None
    fitted = affordable(x, y, event, MIN_PAIRS, who)
    if fitted is None:
        return None
    result = probe(*fitted, min_examples=MIN_PAIRS)
    state.extra[PAIR_PROBE_KEY] = (data.pair_rows, result)
    return result


def _nll(p: np.ndarray, y: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    return -np.log(np.maximum(p[np.arange(len(y)), y], floor))


def probe(x: np.ndarray, y: np.ndarray, seed: int = 0, min_examples: int = 20) -> ProbeResult | None:
    """2-fold cross-validated cross-entropy and accuracy of the probes; ``None`` when fewer than
    ``min_examples`` distinct examples (or a single class) remain."""
    oof = out_of_fold(x, y, seed=seed, min_examples=min_examples)
    if oof is None or oof.linear is None or oof.knn is None or oof.mlp is None:
        return None
    y, n = oof.y, len(oof.y)
    prior_ll = _nll(oof.prior, y, 0.0)
    lin_ll, mlp_ll = _nll(oof.linear, y), _nll(oof.mlp, y)
    knn_ll = _nll(oof.knn, y, 0.0)
    hits = {"chance": oof.chance_hits, "linear": int((oof.linear.argmax(1) == y).sum()),
            "knn": int((oof.knn.argmax(1) == y).sum()), "mlp": int((oof.mlp.argmax(1) == y).sum())}
    return ProbeResult(n=n, prior_loss=float(prior_ll.mean()), chance=hits["chance"] / n,
                       linear_loss=float(lin_ll.mean()), knn_loss=float(knn_ll.mean()),
                       linear=hits["linear"] / n, knn=hits["knn"] / n,
                       mlp_loss=float(mlp_ll.mean()), mlp=hits["mlp"] / n,
                       linear_z=_z(prior_ll - lin_ll), knn_z=_z(prior_ll - knn_ll), mlp_z=_z(prior_ll - mlp_ll))


def chance_loss(name: str, counts: np.ndarray, class_weight: np.ndarray | None = None,
                pos_weight: float | None = None) -> float | None:
    """Loss of the best constant prediction, for the classification losses the sample keeps.

    With a per-class ``weight=`` (cross-entropy, NLL) the mean loss is normalised by the summed
    weights: the best constant prediction is ``q ~ weight * counts`` and it pays the entropy of
    ``q``. With ``pos_weight=`` (binary cross-entropy with logits) the positives' terms are scaled
    and the mean is over examples: ``q = pw f1 / (pw f1 + f0)`` pays ``-(pw f1 log q + f0 log(1-q))``.
    """
    if name in ("cross_entropy", "nll_loss"):
        if class_weight is not None:
            if len(class_weight) < len(counts) or not np.all(np.isfinite(class_weight)) or (class_weight < 0).any():
                return None
            counts = counts * class_weight[:len(counts)]
        if not counts.sum() > 0:
            return None
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum())
    if name.startswith("binary_cross_entropy") and len(counts) <= 2 and counts.sum() > 0:
        f1 = float(counts[-1] / counts.sum()) if len(counts) == 2 else 0.0
        pw = 1.0 if pos_weight is None else pos_weight
        if not (math.isfinite(pw) and pw > 0):
            return None
        q = float(np.clip(pw * f1 / (pw * f1 + 1 - f1), 1e-6, 1 - 1e-6))
        return -(pw * f1 * math.log(q) + (1 - f1) * math.log(1 - q))
    return None


def train_chance_loss(data: ObservedData, name: str | None = None) -> float | None:
    """:func:`chance_loss` of the training loss as the script weights it (``name``: the loss when
    the sample did not record one); ``None`` when its weighting is unknown (per-example weights,
    a per-class weight that changed between calls) or no class counts were kept."""
    w = data.weights
    if data.train_counts is None or (data.weighted_loss and not w.known):
        return None
    return chance_loss(name or data.pair_loss, data.train_counts, w.class_weight, w.pos_weight)


@register
class LabelsUnrelated(Check):
    """Training at chance level, and probes on the observed data cannot predict the labels either."""

    code = "labels.unrelated-to-inputs"
    needs = ("end",)
    end_cost = 1  # probes fitted at the end: after the cheap checks (nndoctor/monitor/ending.py)
    extra_codes = ("fit.model-at-chance",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        data = ObservedData.of(self.state)
        if data is None or data.pair_rows < MIN_PAIRS or data.train_counts is None or not data.single_input:
            return ()
        if data.unshuffled(len(self.state.optimizers)):
            return ()  # the sampled batches misstate the class priors
        base = train_chance_loss(data)
        steps, values = per_step(*self.state.losses.series())
        values = values[np.isfinite(values)]
        if base is None or base <= 0 or len(values) < MIN_STEPS or len(self.state.optimizers) > 1:
            return ()
        level = float(np.median(values[-max(10, len(values) // 4):]))
        if not 0.85 * base <= level <= 2.0 * base:
            return ()  # the model learned something (or diverged): not "at chance"
        result = pair_probe(self.state, data, event, self.name())
        if result is None:
            return ()  # too few distinct inputs (e.g. a constant input, reported by preprocessing)
        evidence = {"train_loss": round(level, 4), "chance_loss": round(base, 4), "examples": result.n,
                    "probe_prior_loss": round(result.prior_loss, 4),
                    "linear_probe_loss": round(result.linear_loss, 4), "knn_probe_loss": round(result.knn_loss, 4),
                    "mlp_probe_loss": round(result.mlp_loss, 4),
                    "linear_probe_accuracy": round(result.linear, 3), "knn_probe_accuracy": round(result.knn, 3),
                    "mlp_probe_accuracy": round(result.mlp, 3),
                    "majority_class_accuracy": round(result.chance, 3), "z": round(result.z, 2)}
        probes = (f"logistic-regression, {NEIGHBOURS}-nearest-neighbour and small-MLP probes fitted on {result.n} "
                  f"observed training examples score a held-out loss of {result.linear_loss:.3g}, "
                  f"{result.knn_loss:.3g} and {result.mlp_loss:.3g} against {result.prior_loss:.3g} for the class "
                  f"priors (accuracy {result.linear:.0%}, {result.knn:.0%} and {result.mlp:.0%}; majority class "
                  f"{result.chance:.0%})")
        if result.z < 3.0 and result.gain < 0.05 * result.prior_loss and result.best_accuracy - result.chance < 0.05:
            return [self.finding(
                f"the labels look unrelated to the inputs: the training loss stays at chance level ({level:.3g} "
                f"vs {base:.3g} for predicting the class priors) and {probes}", evidence, location="training data")]
        if result.z > 6.0 and (result.gain >= 0.1 * result.prior_loss or result.best_accuracy - result.chance >= 0.1):
            return [self.finding(
                f"the model stays at chance level ({level:.3g} vs {base:.3g} for predicting the class priors) "
                f"although the labels are learnable: {probes}", evidence, location="training",
                code="fit.model-at-chance", severity=Severity.INFO)]
        return ()
