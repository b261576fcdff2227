"""Evaluation examples that are byte-identical to training examples (``nndoctor run``).

nndoctor fingerprints the inputs of sampled training batches (a share ``c`` of the
training set: ``c`` = distinct examples seen / training-set size, the size from the
training DataLoader's dataset or, without one, a Chao1 estimate from how often examples
recur) and of every evaluation pass; a pass whose shared examples the model was trained on only after it
is not judged on them (:func:`_overlap`). If an evaluation pass were (a part of) the training
data, about ``c`` of its examples would match; a pass where clearly fewer, but some,
match is a different set that shares examples with the training set: leakage. A pass
that reads the training DataLoader or its dataset (a script measuring its training
accuracy) is never judged; inputs that repeat a lot inside batches (low-cardinality data,
short token sequences) are not judged either. A pass of batches the script slices itself is
cut where its batches' match rate changes abruptly (:func:`segments`: a loop that evaluates
the training split, then the validation split; one batch of every example, the whole training set
and then the rest, is cut the same way), and a pass whose inputs repeat inside it at
least as often as they match training examples (short token windows drawn at random) is
reported as ``info`` only: there, identical inputs are chance, not copies.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import nndoctor.evaluate.duplicates  # noqa: F401  (registers the fixes of data.train-test-leakage)
from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.sample import EvalPass, ObservedData
from nndoctor.monitor.checks.data.unlabelled import only_unlabelled
from nndoctor.monitor.events import RunEnd

__all__ = ["TrainEvalLeakage", "coverage", "judgeable", "segments", "training_like"]

MIN_SHARED = 3
#: share of repeated inputs inside a batch or pass above which inputs are taken as low-cardinality
#: (tokens, categories), where identical inputs in training and evaluation are expected
REPEATS = 0.2
#: log-likelihood gain (matches per batch at two rates vs one) that cuts a pass in two:
#: a chance cut of a pass with one rate gains ~ log(batches), far less
SPLIT_GAIN = 12.0
#: share of the training fingerprints one side of a single evaluation batch must hold to be cut off as
#: a pass over the whole training set (:func:`_split_rows`)
FULL_TRAINING_SET = 0.9
#: a pass whose shared examples were trained on before it in under this share (the rest only after it)
#: was evaluated before training on them (:func:`_overlap`)
LATER_ONLY = 0.1
#: share of the shared examples that must have been trained on only without labels for a transductive ``info``
TRANSDUCTIVE = 0.9


def coverage(data: ObservedData) -> float | None:
    """Estimated share of the distinct training examples whose fingerprint nndoctor holds."""
    distinct = len(data.train_hashes)
    if distinct == 0:
        return None
    if len(data.train_dataset_lens) == 1:
        size = next(iter(data.train_dataset_lens))
        if size > 0:
            return min(1.0, distinct / size)
    f1 = sum(1 for n in data.train_hashes.values() if n == 1)
    f2 = sum(1 for n in data.train_hashes.values() if n == 2)
    estimate = distinct + (f1 * f1 / (2.0 * f2) if f2 else f1 * (f1 - 1) / 2.0)  # Chao1
    return min(1.0, distinct / max(estimate, 1.0))


def _unlabelled(data: ObservedData, p: EvalPass) -> int:
    """Distinct examples of the pass that training used only without their labels (:mod:`.unlabelled`)."""
    return sum(1 for h in set(p.hashes) if only_unlabelled(data, h))


def _overlap(data: ObservedData, p: EvalPass) -> tuple[int, int]:
    """Distinct examples of the pass that training used, and the pass's distinct examples.

    When (nearly) all the shared examples were first seen in training AFTER the pass (under
    ``LATER_ONLY`` of them on a sampled training step before the pass's step), the model was trained on
    them only after it was evaluated on them (a closed-form fit of a new head on features before
    fine-tuning on the same rows, an accuracy before training, an earlier fold): nothing flattered that
    evaluation, and only the earlier ones count. Otherwise all count: fingerprints are taken on sampled
    steps, so an example first fingerprinted later may well have been trained on before."""
    unique = set(p.hashes)
    train, first = data.train_hashes, data.train_first_step
    shared = [h for h in unique if h in train]
    before = sum(1 for h in shared if first.get(h, -1) < p.step)
    return (before if before < LATER_ONLY * len(shared) else len(shared)), len(unique)


def _loglik(k: float, n: float) -> float:
    """Binomial log-likelihood of k matches in n rows at their own rate."""
    if n <= 0 or k <= 0 or k >= n:
        return 0.0
    r = k / n
    return k * math.log(r) + (n - k) * math.log(1.0 - r)


def segments(data: ObservedData, p: EvalPass, depth: int = 2) -> list[EvalPass]:
    """``p`` cut where the share of its batches that match training examples changes abruptly.

    A script that evaluates with batches it slices itself may run the training split and then
    the validation split back to back in one loop (``for split in ('train', 'val')``); nndoctor
    sees one pass. Its batches of training data match the training fingerprints at one rate,
    the others at another: each run of batches at its own rate is judged as a pass of its own.
    A set that shares examples with the training set throughout matches at one rate: not cut.
    """
    ends = p.batch_ends
    if p.loader is not None or depth <= 0:
        return [p]
    if len(ends) < 2:
        return _split_rows(data, p)
    hits, rows, start = [], [], 0
    train = data.train_hashes
    for end in ends:
        chunk = p.hashes[start:end]
        hits.append(sum(1 for h in chunk if h in train))
        rows.append(len(chunk))
        start = end
    k_all, n_all = float(sum(hits)), float(sum(rows))
    whole = _loglik(k_all, n_all)
    best, cut, k_left, n_left = 0.0, 0, 0.0, 0.0
    for i in range(len(ends) - 1):
        k_left += hits[i]
        n_left += rows[i]
        gain = _loglik(k_left, n_left) + _loglik(k_all - k_left, n_all - n_left) - whole
        if gain > best:
            best, cut = gain, i + 1
    if best < SPLIT_GAIN:
        return [p]
    at = ends[cut - 1]
    left = EvalPass(step=p.step, hashes=p.hashes[:at], batch_ends=ends[:cut], batches=cut)
    right = EvalPass(step=p.step, hashes=p.hashes[at:], batch_ends=[e - at for e in ends[cut:]],
                     batches=p.batches - cut)
    return segments(data, left, depth - 1) + segments(data, right, depth - 1)


def _split_rows(data: ObservedData, p: EvalPass) -> list[EvalPass]:
    """One batch holding the whole training set followed (or preceded) by other rows: a forward over
    every example at once (embeddings for a nearest-centroid or k-NN evaluation, a plot of all
    points), whose outputs the script slices itself. It is cut where the rows stop matching training
    examples only when the matching side holds (nearly) all the training fingerprints: a block of a
    few copied training rows in a test batch (overlapping slices) stays one pass, judged as leakage."""
    train = data.train_hashes
    hits = [1 if h in train else 0 for h in p.hashes]
    n_all, k_all = len(hits), sum(hits)
    if n_all < 2 or k_all < FULL_TRAINING_SET * len(train):
        return [p]
    whole = _loglik(k_all, n_all)
    best, cut, k_left = 0.0, 0, 0
    for i in range(n_all - 1):
        k_left += hits[i]
        gain = _loglik(k_left, i + 1) + _loglik(k_all - k_left, n_all - i - 1) - whole
        if gain > best:
            best, cut = gain, i + 1
    if best < SPLIT_GAIN:
        return [p]
    left, right = p.hashes[:cut], p.hashes[cut:]
    matched = left if sum(hits[:cut]) / cut >= sum(hits[cut:]) / (n_all - cut) else right
    if len({h for h in matched if h in train}) < FULL_TRAINING_SET * len(train):
        return [p]
    return [EvalPass(step=p.step, hashes=left, batch_ends=[len(left)], batches=1),
            EvalPass(step=p.step, hashes=right, batch_ends=[len(right)], batches=1)]


def training_like(data: ObservedData, p: EvalPass, c: float | None = None,
                  overlap: tuple[int, int] | None = None) -> bool:
    """The pass reads the training data (its loader or dataset, or as many matches as the training set).

    ``c`` (:func:`coverage`) and ``overlap`` (shared, distinct examples of the pass) may be given
    when the caller has them: both scan every fingerprint.
    """
    if p.loader is not None and (p.loader.loader_id in data.train_loaders
                                 or p.loader.own_dataset_id in data.train_datasets
                                 or p.loader.dataset_id in data.train_datasets):
        return True  # the training loader, its dataset, or a Subset of that dataset
    # (random_split siblings share a root dataset but not their examples: judged by fingerprints)
    shared, m = overlap if overlap is not None else _overlap(data, p)
    c = c if c is not None else coverage(data)
    if shared == 0 or c is None or m == 0:
        return False
    expected = m * c
    return shared >= expected - 4.0 * math.sqrt(expected * max(1.0 - c, 1e-9)) - 1.0


def judgeable(state: Any) -> tuple[ObservedData, float] | None:
    """The observed data and the training coverage (:func:`coverage`) when evaluation passes can be
    compared with training examples: fingerprints of both, and training inputs that do not repeat a
    lot inside batches (there identical inputs are normal: tokens, low-cardinality data)."""
    data = ObservedData.of(state)
    if data is None or not data.train_hashes or not data.passes:
        return None
    if data.train_batch_duplicates > REPEATS * max(data.train_rows_hashed, 1):
        return None
    c = coverage(data)
    return None if c is None else (data, c)


@register
class TrainEvalLeakage(Check):
    """Examples evaluated on are copies of examples trained on."""

    code = "data.train-test-leakage"
    extra_codes = ("data.transductive-evaluation",)
    needs = ("end",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        judged = judgeable(self.state)
        if judged is None:
            return ()
        data, c = judged
        worst: dict[object, tuple[float, EvalPass, int, int]] = {}
        for p in (seg for whole in data.passes for seg in segments(data, whole)):
            shared, m = _overlap(data, p)
            if training_like(data, p, c, (shared, m)):
                continue
            if shared < MIN_SHARED or len(p.hashes) - m > REPEATS * max(len(p.hashes), 1):
                continue  # too few matches, or the pass repeats its own inputs a lot (low-cardinality data)
            key = p.loader.own_dataset_id if p.loader is not None else ("rows", m)
            share = shared / m
            if key not in worst or share > worst[key][0]:
                worst[key] = (share, p, shared, m)
        out = []
        for share, p, shared, m in worst.values():
            estimate = min(1.0, share / c)
            evidence = {"split": p.name, "n_shared": shared, "n_other": m, "share": round(share, 4),
                        "estimated_share": round(estimate, 3), "training_coverage": round(c, 3),
                        "step": p.step}
            # identical inputs recur inside the pass itself at least as often as they match training
            # examples (short token windows, random batches drawn with replacement): a match is what
            # these data do by chance, not evidence of a copied example
            repeats = (len(p.hashes) - m) / max(len(p.hashes), 1)
            evidence["repeats_inside_pass"] = round(repeats, 4)
            weak = repeats >= share
            severity = Severity.WARNING if (shared >= 10 or share >= 0.01) and not weak else Severity.INFO
            unlabelled = _unlabelled(data, p) if data.unlabelled_hashes else 0
            if unlabelled >= TRANSDUCTIVE * shared:
                evidence["shared_without_labels"] = unlabelled
                out.append(self.finding(
                    f"{unlabelled} of the {shared} examples of {p.name} that the model trained on were trained on "
                    f"WITHOUT their labels (in steps where other inputs had theirs: domain adaptation or "
                    f"semi-supervised learning on these inputs): a transductive evaluation, fine when the "
                    f"evaluation inputs are at hand at training time, but no estimate of the error on new inputs",
                    evidence, location=p.name, step=p.step, code="data.transductive-evaluation"))
                continue
            out.append(self.finding(
                f"{shared} of {m} examples in {p.name} ({share:.1%}) are byte-identical to training examples; "
                f"nndoctor fingerprinted about {c:.0%} of the training set, so roughly {estimate:.0%} of "
                f"{p.name} is training data: its error is optimistic"
                + (f" (but {repeats:.1%} of its inputs repeat inside it too: identical inputs are common in "
                   f"these data, so the matches may be chance)" if weak else ""),
                evidence, location=p.name, step=p.step,
                severity=severity))
        return out
