"""data: training on a small slice of a much larger data set (a debug subset left in).

``X_train = X_train[:100]`` to make a quick test run, ``Subset(train_set, range(256))``, or a
loader over the first batches only, left in the real run: the model trains on a few hundred
examples, over and over, while the data set it came from (and usually the test set) is many
times larger. Nothing fails; the model overfits its slice and generalises poorly.

Evidence (all of it observed, judged at the curve reads and at the end of the run):

* the size of the training set: the training DataLoader's dataset length, or, for batches the
  script slices itself, the number of distinct training rows once the sampled batches keep
  meeting the same rows again (the sample spans the whole training set), unless rows repeat inside
  the batches (low-cardinality inputs: a replay buffer of a few states, categories);
* a source many times larger (>= 5x): the tensor the training batches are views of (a slice of
  whole rows of a bigger tensor; a batch that owns its storage, or one time step of a sequence
  tensor, is no evidence), the data set under a ``Subset``, or the distinct rows of an evaluation
  pass that are not training rows.

Training sets of more than 2,000 examples are not judged: a slice that large is a real
training set (a learning-curve experiment or a deliberate sub-sample).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.leakage import REPEATS
from nndoctor.monitor.checks.data.sample import ObservedData, first_tensor
from nndoctor.monitor.events import CurveDue, ModelInput, RunEnd

__all__ = ["TinyTrainingSlice"]

MAX_SMALL = 2000  # a training set larger than this is not a debug slice
FACTOR = 5.0  # the source holds at least this many times the training rows
MIN_REVISIT = 0.5  # share of the sampled distinct rows met twice or more: the sample spans the set


def _rows_outermost(t: torch.Tensor) -> bool:
    """Whether ``t``'s first dimension is its outermost one in memory (its rows lie one after another)."""
    strides = [st for size, st in zip(t.shape, t.stride()) if size > 1]
    return t.shape[0] <= 1 or not strides or t.stride(0) >= max(strides)


def _storage_rows(x: torch.Tensor) -> int:
    """Rows (examples) of the tensor whose storage ``x`` views (``x`` itself when it owns its storage).

    Rows are counted along ``x``'s first dimension only: a view whose row stride is its base's
    (``X[:100]``, ``X.view(-1, 1, 8, 8)[:100]``, ``out[:, -1]`` of a ``batch_first`` GRU) holds the
    base's rows; a view inside one row of its base (``H[-1]`` of a ``(T, N, D)`` stack, a
    batch-first view of time-major data) holds as many rows as fit in that row. A storage whose
    rows do not lie one after another (a ``batch_first`` RNN output is laid out time-major) shares
    memory with other time steps, not with more examples: no evidence.
    """
    if x.dim() < 1 or x.shape[0] < 1 or x.stride(0) <= 0 or x.is_sparse:
        return 0
    base = x._base
    if base is not None and base.dim() >= 1 and base.stride(0) > 0:
        if x.stride(0) == base.stride(0):
            return int(base.shape[0])
        if x.stride(0) < base.stride(0):  # inside one row of the base
            return base.stride(0) // x.stride(0) if base.stride(0) % x.stride(0) == 0 else 0
        if not _rows_outermost(base):
            return 0
    if not _rows_outermost(x):
        return 0
    try:
        nbytes = x.untyped_storage().nbytes()
    except (RuntimeError, NotImplementedError):
        return 0
    return int(nbytes // (x.stride(0) * x.element_size()))


@register
class TinyTrainingSlice(Check):
    """The training set is a small slice (<= 2,000 rows) of a data set >= 5x larger."""

    code = "data.training-on-small-slice"
    needs = ("model_input", "curve", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._storage = 0
        self._subset_source = 0
        self._loaders_seen: set[int] = set()
        self._done = False

    def check(self, event: ModelInput | CurveDue | RunEnd) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, ModelInput):
            if event.sampled and event.grad_enabled and event.training:
                x = first_tensor(event.args, event.kwargs)
                if isinstance(x, torch.Tensor) and x.dim() >= 1 and _storage_rows(x) > x.shape[0]:
                    self._storage = max(self._storage, _storage_rows(x))  # a view of a bigger tensor
                self._note_subset()
            return ()
        return self._judge(final=isinstance(event, RunEnd))

    def _note_subset(self) -> None:
        """The size of what the current training DataLoader's dataset was cut from: the dataset under
        a Subset, or the tensor a TensorDataset's inputs are a view of."""
        tracker = getattr(self.state, "loaders", None)
        info = getattr(tracker, "current", None)
        if info is None or info.loader_id in self._loaders_seen:
            return
        self._loaders_seen.add(info.loader_id)
        for ref, known in list(getattr(tracker, "_iterators", {}).values()):
            it = ref()
            if known is not info or it is None:
                continue
            ds = getattr(it, "_dataset", None)
            base = getattr(ds, "dataset", None)  # torch.utils.data.Subset
            try:
                if base is not None and hasattr(ds, "indices"):
                    self._subset_source = max(self._subset_source, len(base))
                    ds = base
            except TypeError:
                pass
            tensors = getattr(ds, "tensors", None)  # TensorDataset
            if isinstance(tensors, tuple) and tensors and isinstance(tensors[0], torch.Tensor):
                self._subset_source = max(self._subset_source, _storage_rows(tensors[0]))

    def _train_rows(self, data: ObservedData) -> tuple[int, str] | None:
        if data.train_dataset_lens:
            return min(data.train_dataset_lens), "the training DataLoader's dataset"
        hashes = data.train_hashes
        if len(hashes) < 8 or data.train_batch_duplicates > REPEATS * max(data.train_rows_hashed, 1):
            return None  # (inputs that repeat inside batches, e.g. one-hot states: few distinct values, not few rows)
        met_again = sum(1 for c in hashes.values() if c >= 2)
        if met_again < MIN_REVISIT * len(hashes):
            return None  # the sampled batches have not covered the training set yet
        return len(hashes), "distinct training rows (every sampled batch meets the same ones again)"

    def _judge(self, final: bool) -> list[Finding]:
        data = ObservedData.of(self.state)
        if data is None:
            return []
        found = self._train_rows(data)
        if found is None:
            return []
        n, how = found
        if not 1 <= n <= MAX_SMALL:
            return []
        train = set(data.train_hashes)
        eval_rows = max((len(set(p.hashes) - train) for p in data.passes), default=0)
        sources = [(self._storage, "the tensor the training batches are sliced from"),
                   (self._subset_source, "the data set the training DataLoader's dataset was cut from"),
                   (eval_rows, "an evaluation pass (distinct rows not trained on)")]
        rows, where = max(sources, key=lambda s: s[0])
        if rows < FACTOR * n:
            return []
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        ev = {"train_rows": n, "train_rows_from": how, "source_rows": rows, "source": where,
              "factor": round(rows / n, 1)}
        return [self.finding(
            f"the model trains on {n} examples ({how}) while {where} holds {rows} "
            f"({rows / n:.0f}x more): a debug slice of the data looks left in, so the model fits a "
            f"small sample and generalises poorly", ev, location="training data")]
