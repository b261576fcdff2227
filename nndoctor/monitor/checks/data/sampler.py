"""data: the training loader draws from only a tiny part of its dataset.

A ``WeightedRandomSampler`` given one weight per CLASS instead of one per sample draws only the
indices 0..k-1; a ``SubsetRandomSampler``/``Subset`` built from the wrong indices; a sampler whose
weights are zero almost everywhere. Training batches then repeat a handful of samples although
the DataLoader's dataset is far larger: the model memorises those few and learns nothing else.

Evidence (observed): the distinct training-input fingerprints of the sampled batches (D) against
the rows drawn (R) and the training DataLoader's dataset length (L). Uniform draws would show about
``E = L * (1 - exp(-R / L))`` distinct samples. Reported when L >= 100, at least
``MIN_BATCHES`` sampled training batches came from that one loader, every distinct sample was met
``MIN_REPEATS`` times on average (R >= 4 D), and D <= 10% of E and <= 10% of L. A warning when
something independent confirms that the dataset is larger than what is drawn: the sampler's own
reach (the non-zero weights a ``WeightedRandomSampler`` has, fewer weights than samples, the
distinct indices of a ``SubsetRandomSampler``) or, for tensor datasets, the distinct rows of the
dataset (a bounded, strided read once the batches look suspicious: >= 10x D), or a new iterator
for every sampled batch over an unshuffled loader (``xb, yb = next(iter(loader))`` inside the
training loop: the same first batch each time, whatever the dataset; the sampler and dataset are
then read from the DataLoader, the iterator being gone). Without that it is info (a dataset that
returns the same few items whatever the index is not a sampler fault).

Overfitting one batch on purpose (a tensor reused, no DataLoader; or one batch fetched and reused:
fewer than ``MIN_BATCHES`` fetches), per-sample weights with a rare class (many distinct samples),
tiny datasets and short runs (D close to R) stay quiet.
"""

from __future__ import annotations

import itertools
import math
import weakref
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks.data.sample import ObservedData, row_hashes
from nndoctor.monitor.events import ModelInput, RunEnd

__all__ = ["SamplerCoverage", "expected_distinct"]

MIN_DATASET = 100
MIN_BATCHES = 4
MIN_REPEATS = 4.0
SHARE = 0.1  # distinct samples seen / expected under uniform draws (and / dataset length)
CONFIRM = 10.0  # distinct dataset rows >= this many times the distinct samples drawn
MAX_DATASET_ROWS = 20_000  # rows of a tensor dataset read (strided), once, when the batches look suspicious
MAX_DATASET_VALUES = 4_000_000


def expected_distinct(draws: int, size: int) -> float:
    """Expected distinct items among ``draws`` uniform draws with replacement from ``size``."""
    return size * (1.0 - math.exp(-draws / size)) if size > 0 else 0.0


def _indices(indices: Any, limit: int = 1_000_000) -> torch.Tensor:
    """At most ``limit`` indices of a Subset / SubsetRandomSampler as a 1-D tensor (no per-element
    Python loop over a tensor)."""
    if isinstance(indices, torch.Tensor):
        return indices.reshape(-1)[:limit]
    if isinstance(indices, np.ndarray):
        return torch.from_numpy(indices.reshape(-1)[:limit].astype(np.int64))
    return torch.as_tensor(list(itertools.islice(indices, limit)), dtype=torch.long)


def _reach(sampler: Any, size: int) -> tuple[str, int | None, str]:
    """(sampler class, indices it can ever draw or None if unknown, a note on why)."""
    name = type(sampler).__name__
    try:
        if isinstance(sampler, WeightedRandomSampler):
            w = torch.as_tensor(sampler.weights).reshape(-1)
            nonzero = int(torch.count_nonzero(w[:size]))
            note = (f"was given {w.numel()} weights for a dataset of {size} samples (one weight per class "
                    f"instead of one per sample?)" if w.numel() < size else
                    f"has only {nonzero} non-zero weights of {w.numel()}")
            return name, nonzero, note
        if isinstance(sampler, SubsetRandomSampler):
            distinct = int(_indices(sampler.indices).unique().numel())
            return name, distinct, f"holds only {distinct} distinct indices"
    except (TypeError, ValueError, RuntimeError):
        pass
    return name, None, ""


@register
class SamplerCoverage(Check):
    """Training batches repeat a handful of samples of a much larger DataLoader dataset."""

    code = "data.sampler-covers-few-samples"
    needs = ("model_input", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._loaders: dict[int, dict[str, Any]] = {}  # loader id -> what we know
        self._fetch_seen = -1

    def check(self, event: ModelInput | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge()
        if event.grad_enabled and event.training:
            self._note(event)
        return ()

    def _note(self, event: ModelInput) -> None:
        tracker = getattr(self.state, "loaders", None)
        info = getattr(tracker, "current", None)
        if info is None or tracker is None or tracker.fetches == self._fetch_seen:
            return  # not from a DataLoader, or the same fetched batch reused
        self._fetch_seen = tracker.fetches
        entry = self._loaders.get(info.loader_id)
        if entry is None:
            if len(self._loaders) >= 8:
                return
            entry = self._loaders[info.loader_id] = {"batches": 0, "len": info.dataset_len, "name": info.name,
                                                     "sampler": None, "dataset": None, "iterations": set()}
            source = next((it for ref, known in list(getattr(tracker, "_iterators", {}).values())
                           if known is info and (it := ref()) is not None), None)
            if source is None and callable(getattr(tracker, "loader", None)):
                source = tracker.loader(info)  # (its iterator is gone: ``next(iter(loader))`` each step)
            if source is not None:
                sampler = getattr(source, "_index_sampler", None)
                sampler = getattr(sampler, "sampler", sampler)
                entry["sampler"] = _reach(sampler, info.dataset_len or 0)
                ds = source._dataset if hasattr(source, "_dataset") else getattr(source, "dataset", None)
                try:  # (a plain list as the dataset cannot be weakly referenced)
                    entry["dataset"] = weakref.ref(ds) if ds is not None else None
                except TypeError:
                    entry["dataset"] = None
                if isinstance(ds, Subset) and entry["sampler"][1] is None:  # a Subset of repeated indices
                    distinct = int(_indices(ds.indices).unique().numel())
                    entry["sampler"] = (f"Subset ({entry['sampler'][0]})", distinct,
                                        f"holds only {distinct} distinct indices")
        entry["batches"] += 1
        if len(entry["iterations"]) < 4096:
            entry["iterations"].add(info.iteration)
        if entry["batches"] >= MIN_BATCHES and "rows" not in entry and self._suspicious(entry):
            # read while the dataset is alive (a main()'s locals are gone at the end of the run)
            entry["rows"] = self._dataset_rows(entry)

    def _suspicious(self, entry: dict[str, Any]) -> bool:
        data = ObservedData.of(self.state)
        size = entry["len"]
        if data is None or size is None or size < MIN_DATASET or not data.train_hashes:
            return False
        distinct = len(data.train_hashes)
        drawn = data.train_rows_hashed + data.train_batch_duplicates
        return drawn >= MIN_REPEATS * distinct and distinct <= SHARE * min(size, expected_distinct(drawn, size))

    def _dataset_rows(self, entry: dict[str, Any]) -> int | None:
        """Distinct input rows of a tensor dataset (a strided read of at most MAX_DATASET_ROWS)."""
        ref = entry.get("dataset")
        ds = ref() if ref is not None else None
        idx = None
        while isinstance(ds, Subset):
            idx = _indices(ds.indices, MAX_DATASET_ROWS) if idx is None else idx
            ds = ds.dataset
        if not isinstance(ds, TensorDataset) or not ds.tensors:
            return None
        x = ds.tensors[0]
        if idx is not None:
            x = x[idx]
        if x.dim() == 0 or not x.shape[0]:
            return None
        per_row = max(1, x[0].numel())
        step = max(1, math.ceil(x.shape[0] / max(1, min(MAX_DATASET_ROWS, MAX_DATASET_VALUES // per_row))))
        hashes, constant = row_hashes(x[::step])
        return len({h for h, c in zip(hashes, constant) if not c})

    def _judge(self) -> list[Finding]:
        data = ObservedData.of(self.state)
        if data is None or len(self._loaders) != 1 or len(data.train_dataset_lens) != 1:
            return []
        entry = next(iter(self._loaders.values()))
        size = entry["len"]
        distinct = len(data.train_hashes)
        drawn = data.train_rows_hashed + data.train_batch_duplicates
        if size is None or size < MIN_DATASET or entry["batches"] < MIN_BATCHES or not distinct:
            return []
        expected = expected_distinct(drawn, size)
        if drawn < MIN_REPEATS * distinct or distinct > SHARE * expected or distinct > SHARE * size:
            return []
        kind, reach, note = entry["sampler"] or ("?", None, "")
        rows = entry.get("rows")
        # a new iterator for every batch (``next(iter(loader))`` in the loop) over an unshuffled loader:
        # the same first batch each time, whatever the dataset
        fresh = len(entry["iterations"]) >= entry["batches"] - 1
        confirmed = (reach is not None and reach <= max(2 * distinct, SHARE * size)) or (
            rows is not None and rows >= CONFIRM * distinct) or (fresh and kind == "SequentialSampler")
        loader = entry["name"] or "the training DataLoader"
        ev = {"loader": loader, "dataset_len": size, "distinct_samples": distinct, "rows_drawn": drawn,
              "expected_distinct": round(expected), "sampler": kind, "sampler_reach": reach,
              "dataset_distinct_rows": rows, "sampled_batches": entry["batches"], "new_iterator_per_batch": fresh}
        why = f": its {kind} {note}" if note and confirmed and reach is not None else (
            f" ({rows} distinct rows in the dataset)" if confirmed else "")
        if fresh:
            why += (f"; every batch comes from a new iterator (next(iter({loader})) inside the loop), which"
                    + (" without shuffling always yields the first batch" if kind == "SequentialSampler" else
                       " starts the data over each time"))
        msg = (f"{loader} draws only {distinct} distinct samples in {drawn} sampled training rows although its "
               f"dataset holds {size} (uniform draws would show ~{expected:.0f}){why}: every batch repeats the "
               f"same few samples, so the model memorises them and never sees the rest of the data")
        return [self.finding(msg, ev, location=loader, severity=None if confirmed else Severity.INFO)]
