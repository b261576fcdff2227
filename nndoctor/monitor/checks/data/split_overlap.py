"""data: an evaluation split whose indices overlap the training split's (``Subset`` / sampler indices).

``random_split`` called twice (two different random splits: one taken for training, the other for
validation), ``Subset(ds, idx[:900])`` next to ``Subset(ds, idx[800:])``, or ``SubsetRandomSampler``
index lists that share entries: the validation examples are drawn from the same dataset by index,
and some (or all) of those indices are training indices. The fingerprint check of
:mod:`.leakage` cannot tell a validation split that lies entirely inside the training split from
a script measuring its training accuracy; the indices can.

Evidence: the DataLoader of the latest training batch and the DataLoader of an evaluation batch
read the same underlying dataset through index lists (``Subset`` chains, composed, and/or a
``SubsetRandomSampler`` / ``SubsetSequentialSampler``-like sampler holding ``indices``); the
evaluation dataset is not the training dataset itself nor derived from it (a ``Subset`` of the
training ``Subset`` measures training accuracy on purpose); and >= ``MIN_SHARED`` of its indices
are training indices. The training split is read on sampled training steps and compared only
while the latest training batch still comes from that loader (a k-fold loop that moved on to a
new fold, unsampled, is not compared with the old fold's split).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from torch.utils.data import Subset

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput

__all__ = ["SplitIndexOverlap", "split_indices"]

MIN_SHARED = 3
#: datasets longer than this are not resolved to index arrays
MAX_LEN = 5_000_000


def _sampler_indices(sampler: Any) -> Any:
    """The index list of a SubsetRandomSampler-like sampler (also under a BatchSampler), or None."""
    for _ in range(3):
        if sampler is None:
            return None
        indices = getattr(sampler, "indices", None)
        if indices is not None:
            return indices
        sampler = getattr(sampler, "sampler", None)
    return None


def split_indices(dataset: Any, sampler: Any = None) -> tuple[int, np.ndarray, list[int]] | None:
    """``(id of the root dataset, indices into it, ids of every dataset on the chain)`` of the examples a
    loader over ``dataset`` with ``sampler`` reads, or None when it reads its dataset whole (no Subset, no
    index sampler)."""
    chain: list[Any] = []
    while isinstance(dataset, Subset) and len(chain) < 16:
        chain.append(dataset)
        dataset = dataset.dataset
    try:
        size = len(dataset)  # type: ignore[arg-type]
    except Exception:
        return None
    if size > MAX_LEN:
        return None
    idx = np.arange(size)
    try:
        for sub in reversed(chain):
            idx = idx[np.asarray(list(sub.indices), dtype=np.int64)]
        sampler_idx = _sampler_indices(sampler)
        if sampler_idx is not None:
            idx = idx[np.asarray(list(sampler_idx), dtype=np.int64)]
        elif not chain:
            return None
    except (IndexError, TypeError, ValueError):
        return None
    return id(dataset), idx, [id(d) for d in chain] + [id(dataset)]


@register
class SplitIndexOverlap(Check):
    """Evaluation examples selected by indices that the training split also selects."""

    code = "data.train-test-leakage"
    #: "targets" only to have the DataLoader tracker installed (it tells which loader a batch came from)
    needs = ("model_input", "eval_input", "targets")
    sampled_only = frozenset({"model_input", "targets"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._train: tuple[int, int, np.ndarray, list[int]] | None = None  # (loader id, root id, indices, chain)
        self._judged: set[tuple[int, int]] = set()  # (training loader, evaluation loader) pairs
        self._iteration = -1  # the training loader's iteration (epoch) whose indices are held

    def _current_batch_source(self) -> tuple[Any, Any] | None:
        tracker = getattr(self.state, "loaders", None)
        info = getattr(tracker, "current", None) if tracker is not None else None
        if info is None:
            return None
        ref = getattr(tracker, "current_iterator", None)
        it = ref() if ref is not None else None
        if it is None:
            return None
        return info, it

    def check(self, event: ModelInput) -> Iterable[Finding]:
        if event.kind == "targets":
            return ()
        current = self._current_batch_source()
        if current is None:
            return ()
        info, it = current  # the iterator of the latest batch: its loader's dataset and sampler
        if event.kind == "model_input":
            if event.grad_enabled and info.iteration != self._iteration:
                self._iteration = info.iteration
                resolved = split_indices(getattr(it, "_dataset", None), getattr(it, "_index_sampler", None))
                self._train = None if resolved is None else (info.loader_id, *resolved)
            return ()
        train = self._train
        latest = getattr(getattr(self.state, "loaders", None), "train_current", None)
        if latest is None or train is None or latest.loader_id != train[0]:
            return ()  # training went on with another loader since the split was read (a new fold): unknown split
        if info.loader_id == train[0] or (train[0], info.loader_id) in self._judged:
            return ()
        self._judged.add((train[0], info.loader_id))
        resolved = split_indices(getattr(it, "_dataset", None), getattr(it, "_index_sampler", None))
        if resolved is None:
            return ()
        root, idx, chain = resolved
        if root != train[1] or id(getattr(it, "_dataset", None)) in train[3][:-1] or train[3][0] in chain[:-1]:
            return ()  # another dataset, the training split itself, or a Subset drawn from the training split
        shared = np.intersect1d(idx, train[2])
        if shared.size < MIN_SHARED:
            return ()
        name = info.name or "the evaluation loader"
        distinct = np.unique(idx).size
        share = shared.size / max(distinct, 1)
        ev = {"split": name, "n_shared": int(shared.size), "n_other": int(distinct), "share": round(share, 4),
              "training_examples": int(np.unique(train[2]).size), "shared_indices": shared[:10].tolist(),
              "how_detected": "Subset / sampler indices into the same dataset"}
        return [self.finding(
            f"{shared.size} of the {distinct} examples {name} evaluates on ({share:.0%}) are selected by indices "
            f"that the training split also selects (same dataset, Subset/sampler indices, e.g. {shared[:5].tolist()}): "
            f"{'the whole evaluation split lies inside the training split' if share >= 0.999 else 'the two splits overlap'}"
            f", so its error is optimistic (random_split or the index lists were drawn twice, or overlap)",
            ev, location=name)]
