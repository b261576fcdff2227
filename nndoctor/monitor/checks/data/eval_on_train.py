"""data: every evaluation of the run scores examples the model trains on (``nndoctor run``).

The validation set is the training set (``X_val, y_val = X_train, y_train``, a validation loader
over the training dataset), or the test rows were appended to the training set
(``X_train = cat(X_train, X_test)``): each evaluation pass is (a part of) the training data. Its
figures then say nothing about new inputs, and overfitting cannot show: the evaluation loss falls
with the training loss however much the model memorises.

The fingerprint leakage check (:mod:`.leakage`) does not judge such a pass on its own: one pass over
training examples is what a script measuring its training accuracy does. What is judged here is
the whole run: the script evaluates repeatedly while it trains (validation monitoring), scores each
pass against targets (a classification loss or an accuracy), and not one evaluation pass holds an
example it has not trained on.

Evidence: >= ``MIN_PASSES`` scored evaluation passes at different steps, each of >= ``MIN_ROWS``
distinct examples; every evaluation pass (scored or not) reads the training loader or its dataset,
or matches training fingerprints as often as training data would (:func:`.leakage.training_like`).
Passes whose inputs repeat a lot (tokens, low-cardinality data) and runs whose training batches do
are not judged, nor transductive runs: a full-batch graph model reads every node in training and
evaluation alike and scores only the held-out nodes (a scored pass whose targets cover < 90% of the
rows it forwarded), nor k-fold cross-validation: with one model per fold, a pass is judged against
the training examples of the model that made it. A single pass (a final training-accuracy print), a
reconstruction preview of the step's own batch, or any pass of unseen examples beside the others
stays quiet.
"""

from __future__ import annotations

from typing import Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.leakage import REPEATS, judgeable, training_like
from nndoctor.monitor.checks.data.sample import EvalPass, ObservedData
from nndoctor.monitor.events import RunEnd

__all__ = ["EvaluatedOnTrainingData"]

#: scored evaluation passes at different steps: evaluation repeated while training (validation)
MIN_PASSES = 2
#: distinct examples a scored pass must hold (a fixed preview batch is not a validation set)
MIN_ROWS = 32
#: share of a pass's forwarded rows its targets must cover (fewer: the score reads a held-out subset)
SCORED_SHARE = 0.9
#: a script-made pass of at most this share of the training set's distinct examples is a split of its own
SUBSET_SHARE = 0.7


def _scored(p: EvalPass) -> bool:
    return p.counts is not None and len(set(p.hashes)) >= MIN_ROWS


def _on_training_loader(data: ObservedData, p: EvalPass) -> bool:
    return p.loader is not None and p.loader.loader_id in data.train_loaders


def _meant_held_out(data: ObservedData, p: EvalPass, trained: int) -> bool:
    """The pass was built as a separate split: a DataLoader of its own (a validation loader over the
    training dataset), or a part of a larger training Dataset (test rows appended to training: at most
    :data:`SUBSET_SHARE` of its examples)."""
    if p.loader is not None:
        return not _on_training_loader(data, p)
    return trained > 0 and len(set(p.hashes)) <= SUBSET_SHARE * trained


def _subset_scored(p: EvalPass) -> bool:
    """The pass scored targets for fewer than :data:`SCORED_SHARE` of the rows it forwarded: a full-batch
    graph model (GCN, GAT) evaluated on its held-out nodes, ``out[idx_val]``, while reading all of them."""
    return p.counts is not None and p.rows > 0 and not p.capped and float(p.counts.sum()) < SCORED_SHARE * p.rows


def _held_out_for_its_model(data: ObservedData, scored: list[EvalPass]) -> bool:
    """Several models trained (k-fold cross-validation: one model per fold) and a scored pass reads
    rows that the models which made it did not train on (fewer than half of the training rows it
    matches are theirs): held out for them, whatever the other folds' models trained on."""
    by_model = data.train_hashes_by_model
    if len(by_model) < 2:
        return False
    for p in scored:
        unique = set(p.hashes)
        if not p.models or not unique:
            continue
        own: set[int] = set().union(*(by_model.get(m, set()) for m in p.models))
        trained = sum(1 for h in unique if h in data.train_hashes)
        if trained and sum(1 for h in unique if h in own) < 0.5 * trained:
            return True
    return False


@register
class EvaluatedOnTrainingData(Check):
    """Every evaluation pass of the run is made of training examples."""

    code = "data.evaluated-on-training-data"
    needs = ("end",)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        judged = judgeable(self.state)
        if judged is None:
            return ()
        data, c = judged
        scored = [p for p in data.passes if _scored(p)]
        if len({p.step for p in scored}) < MIN_PASSES:
            return ()
        if any(_subset_scored(p) for p in scored):
            return ()  # transductive: the model reads every node / example, the score takes held-out rows
        if _held_out_for_its_model(data, scored):
            return ()  # k-fold cross-validation: each fold's model is scored on rows only the others train on
        for p in data.passes:
            unique = set(p.hashes)
            if len(p.hashes) - len(unique) > REPEATS * max(len(p.hashes), 1):
                return ()  # a pass that repeats its own inputs: matches may be chance
            if not unique or not training_like(data, p, c):
                return ()  # a pass over examples the model has not trained on: a real evaluation
        shared = max(scored, key=lambda p: len(p.hashes))
        unique = set(shared.hashes)
        n, k = len(unique), sum(1 for h in unique if h in data.train_hashes)
        on_loader = _on_training_loader(data, shared)
        what = ("the training DataLoader itself" if on_loader else
                f"examples the model trains on ({k} of the {n} distinct examples of {shared.name} match "
                f"training examples: all of them would, at the {c:.0%} of the training set nndoctor "
                f"fingerprinted)")
        steps = sorted({p.step for p in scored})
        evidence = {"split": shared.name, "evaluations": len(scored), "first_step": steps[0],
                    "last_step": steps[-1], "n_examples": n, "n_shared": k, "training_coverage": round(c, 3)}
        msg = (f"every evaluation in this run ({len(scored)} scored passes, steps {steps[0]}-{steps[-1]}) reads "
               f"{what}: its loss and accuracy measure memorisation, not performance on new data, and "
               f"overfitting cannot show in them")
        # the training set's size, when a training Dataset tells it (batches a script slices from its
        # own tensors give none: a pass over all of them is a training-accuracy print as often as not)
        trained = next(iter(data.train_dataset_lens)) if len(data.train_dataset_lens) == 1 else 0
        if not any(_meant_held_out(data, p, trained) for p in scored):
            # the training DataLoader itself, or the whole training set: a training-accuracy print (a
            # tutorial with no split) reads the same as a validation set aliased to the training set
            evidence["whole_training_set"] = True
            return [self.finding(f"{msg}; it is the whole training set (or its DataLoader), which is also how a "
                                 f"deliberate training-accuracy print reads: the run has no held-out measure",
                                 evidence, location=shared.name, step=steps[-1], severity=Severity.INFO)]
        return [self.finding(msg, evidence, location=shared.name, step=steps[-1])]
