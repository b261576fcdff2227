"""A ``Dataset.__getitem__`` that ignores its index: the loader asks for example i and gets another.

``return self.x[0], self.y[0]`` (a leftover debug line), ``j = random.randint(0, n - 1); return
self.x[j], ...`` or a batch cached once and returned for every index: each epoch trains on a
constant or random subset of the data, the sampler's shuffling and epoch coverage mean nothing, and
the loss curve shows only a vague plateau or noise.

Seen at run time on the training batches of single-process map-style DataLoaders: the loader
tracker (:mod:`nndoctor.monitor.loaders`) records the dataset indices each batch was asked for, and
the rows of the model's training input (a module's input, or a module-less network's:
:mod:`nndoctor.monitor.loose_input`) are fingerprinted against them. Two findings of one code:

* random examples: indices asked for again in a later epoch came back as other values in at least
  half of ``MIN_REVISITS`` revisits, and at least ``COLLIDED`` of those are exactly the values some
  *other* index gave before (a random row of the data, not an augmentation of the same one:
  random crops, flips and noise never reproduce another example exactly);
* too few examples: ``MIN_INDICES`` distinct indices gave at most a ``FEW`` share as many distinct
  values, while a tensor or array the dataset holds (one row per index) has at least
  ``MORE_IN_DATA`` times as many distinct rows at those indices: the data differ, the returned
  examples do not (a dataset whose own rows repeat, such as a few discrete points, stays quiet).

Quiet: augmentation that uses the index, samplers with replacement (an index asked twice gives the
same example), IterableDatasets and multi-process loaders (no indices), Subsets for the second test.
"""

from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.sample import first_tensor, row_hashes
from nndoctor.monitor.dataset_noise import TRAIN_DATASET_KEY
from nndoctor.monitor.events import ModelInput, OpCall, RunEnd
from nndoctor.monitor.loose_input import INPUT_OPS, loose_input

__all__ = ["IndexIgnored"]

MIN_REVISITS = 32
CHANGED = 0.5
COLLIDED = 0.2
MIN_INDICES = 64
FEW = 0.125
MORE_IN_DATA = 4.0
MAX_INDICES = 20_000  # indices remembered (training batches are fingerprinted until then)
MAX_REVISITS = 2048
ROW_VALUES = 512  # values of an example fingerprinted
MIN_PROBED = 16  # indices read at the end of the run
MAX_ROWS = 20_000  # rows of a stored array fingerprinted at the end  # ... or until this many revisits are counted


@register
class IndexIgnored(Check):
    """A map-style dataset whose ``__getitem__`` returns examples that do not follow the index."""

    code = "data.getitem-ignores-index"
    #: ("targets": read by the data checks, whose subscription installs the loader tracker; ignored here)
    needs = ("model_input", "op", "targets", "end")
    sampled_only = frozenset({"model_input"})
    ops = INPUT_OPS
    end_cost = 2  # a few dataset reads at the end of the run (after the training)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._fetch = -1
        self._by_index: dict[int, tuple[int, int]] = {}  # index -> (fingerprint, loader iteration)
        self._owner: dict[int, int] = {}  # fingerprint -> the first index that gave it
        self._revisits = self._changed = self._collided = 0
        self._dataset: Any = None
        self._size = -1  # len() of the dataset whose indices are remembered
        self._done = False

    def check(self, event: ModelInput | OpCall | RunEnd) -> Iterable[Finding]:
        if self._done or event.kind == "targets":
            return ()
        if isinstance(event, OpCall):
            loose = loose_input(self.state, event)
            if loose is not None:
                self._on_input(loose)
            return ()
        if isinstance(event, ModelInput):
            self._on_input(event)
            return ()
        return self._judge()

    def _on_input(self, event: ModelInput) -> None:
        if not (event.grad_enabled and event.training) or len(self._by_index) >= MAX_INDICES \
                or self._revisits >= MAX_REVISITS:
            return
        loaders = self.state.loaders
        if loaders is None or loaders.fetches == self._fetch or loaders.current is None:
            return
        indices = loaders.last_indices
        x = first_tensor(event.args, event.kwargs)
        if indices is None or x is None or x.dim() == 0 or int(x.shape[0]) != len(indices) or x.grad_fn is not None:
            return
        loader = loaders.loader(loaders.current)
        it = loaders.current_iterator() if loaders.current_iterator is not None else None
        # (a loader made in the ``for`` statement is gone: its iterator holds the dataset)
        dataset = getattr(loader, "dataset", None) if loader is not None else getattr(it, "_dataset", None)
        if dataset is None:
            return
        if dataset is not self._dataset:  # the first, or another (a DataLoader(Dataset(...)) made every epoch)
            try:
                size = len(dataset)
            except TypeError:
                return
            if size != self._size:
                self._by_index.clear()
                self._owner.clear()
                self._size = size
            # (kept until the end of the run, when it is read: a dataset made in the ``for`` statement is gone by then)
            self._dataset = dataset
            self.state.extra[TRAIN_DATASET_KEY] = dataset  # (read by the input-noise checks at the end)
        self._fetch = loaders.fetches
        hashes, _ = row_hashes(_few_values(x))
        iteration = loaders.current.iteration
        for i, h in zip(indices, hashes):
            seen = self._by_index.get(i)
            if seen is None:
                self._by_index[i] = (h, iteration)
            elif seen[1] != iteration:
                self._revisits += 1
                if h != seen[0]:
                    self._changed += 1
                    owner = self._owner.get(h)
                    if owner is not None and owner != i:
                        self._collided += 1
            self._owner.setdefault(h, i)

    def _judge(self) -> list[Finding]:
        self._done = True
        dataset, self._dataset = self._dataset, None
        name = type(dataset).__name__ if dataset is not None else "the dataset"
        r, changed, collided = self._revisits, self._changed, self._collided
        base = {"dataset": name, "indices_seen": len(self._by_index)}
        if r >= MIN_REVISITS and changed >= CHANGED * r and collided >= COLLIDED * r:
            evidence = {**base, "revisits": r, "changed": changed, "other_index_values": collided,
                        "kind": "random"}
            return [self.finding(
                f"{name}.__getitem__ does not return the example its index asks for: of {r} indices the "
                f"loader asked for again in a later epoch, {changed} came back with other values and {collided} "
                f"with exactly the values another index gave before; the examples are drawn at random "
                f"(randint inside __getitem__?), so each epoch trains on a random subset with repeats",
                evidence, location=name)]
        probed = _probe(dataset) if dataset is not None else None
        if probed is not None:
            n, own, other, same, rows = probed
            kind = "constant" if len(rows) == 1 else "few" if len(rows) <= FEW * n else "random"
            # (other rows, each index always the same one: a fixed permutation or mapping, not ignored)
            if n >= MIN_PROBED and other >= 0.5 * n and own <= 0.25 * n and (kind != "random" or same <= 0.5 * n):
                what = {"constant": f"always row {next(iter(rows))}", "few": f"only {len(rows)} different rows",
                        "random": f"{len(rows)} other rows, drawn at random"}[kind]
                evidence = {**base, "probed_indices": n, "own_row": own, "other_row": other,
                            "same_twice": same, "distinct_rows_returned": len(rows), "kind": kind}
                return [self.finding(
                    f"{name}.__getitem__ ignores its index: asked at the end of the run for {n} indices, it "
                    f"returned the data's own row for {own} and another row of the data it holds for {other} "
                    f"({what}); the model trained on those, not on the examples the sampler chose",
                    evidence, location=name)]
        distinct = len(set(h for h, _ in self._by_index.values()))
        n = len(self._by_index)
        if n < MIN_INDICES or distinct > FEW * n or dataset is None:
            return []
        in_data = _distinct_rows_in(dataset, list(self._by_index))
        if in_data is None or in_data < MORE_IN_DATA * distinct:
            return []
        evidence = {**base, "distinct_examples": distinct, "distinct_rows_in_data": in_data, "kind": "constant"
                    if distinct == 1 else "few"}
        what = "the same example" if distinct == 1 else f"only {distinct} different examples"
        return [self.finding(
            f"{name}.__getitem__ ignores its index: {n} different indices gave {what}, while the data it "
            f"holds have {in_data} different rows at those indices (a leftover self.x[0], or a cached batch?); "
            f"the model trains on {what}",
            evidence, location=name)]


def _few_values(x: torch.Tensor) -> torch.Tensor:
    """At most ``ROW_VALUES`` evenly strided values of each row (a bounded fingerprint per example)."""
    rows = x.detach().reshape(int(x.shape[0]), -1)
    step = -(-int(rows.shape[1]) // ROW_VALUES)
    return rows[:, ::step] if step > 1 else rows


def _distinct_rows_in(dataset: Any, indices: list[int]) -> int | None:
    """The most distinct rows at ``indices`` in any tensor or array the dataset holds with one row
    per example (None when it holds none)."""
    idx = torch.tensor([i for i in indices[:4096] if i < MAX_ROWS], dtype=torch.int64)
    counts = [len(set(row_hashes(_few_values(a[idx]))[0])) for a in _arrays(dataset)] if len(idx) else []
    return max(counts) if counts else None


def _arrays(dataset: Any) -> list[torch.Tensor]:
    """The tensors and arrays the dataset holds with one row per example."""
    try:
        size = len(dataset)
        attrs = list(vars(dataset).values())
    except Exception:  # no len() or no __dict__
        return []
    out = []
    for value in attrs[:32]:
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == size and value.dtype != object:
            out.append(torch.from_numpy(np.ascontiguousarray(value[:MAX_ROWS])))
        elif isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == size and value.device.type == "cpu":
            out.append(value.detach()[:MAX_ROWS])
    return out


def _example(item: Any) -> torch.Tensor | None:
    first = item[0] if isinstance(item, (tuple, list)) and item else item
    if isinstance(first, np.ndarray) and first.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(first))
    return first.detach() if isinstance(first, torch.Tensor) else None


def _probe(dataset: Any) -> tuple[int, int, int, int, set[int]] | None:
    """Read ``dataset[i]`` twice for evenly spread indices (random states saved and restored) and
    compare each example with the rows of the arrays the dataset holds: ``(indices read, examples
    equal to their own row, examples equal to another row, indices that gave the same example twice,
    the other rows returned)``; None when the dataset holds no such array or cannot be read."""
    arrays = _arrays(dataset)
    if not arrays:
        return None
    size = int(arrays[0].shape[0])
    tables = []
    for a in arrays:
        hashes, _ = row_hashes(_few_values(a))
        first: dict[int, int] = {}
        for j, h in enumerate(hashes):
            first.setdefault(h, j)
        tables.append((a, hashes, first))
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    n = own = other = same = 0
    rows: set[int] = set()
    try:
        for i in sorted(set(np.linspace(0, size - 1, min(64, size)).astype(int).tolist())):
            x, again = _example(dataset[i]), _example(dataset[i])
            if x is None or again is None:
                return None
            n += 1
            if again.shape == x.shape and again.dtype == x.dtype and bool(torch.equal(again, x)):
                same += 1
            for a, hashes, first in tables:
                if tuple(x.shape) != tuple(a.shape[1:]) or x.dtype != a.dtype:
                    continue
                h = row_hashes(_few_values(x.reshape(1, -1)))[0][0]
                if h == hashes[i]:
                    own += 1
                    break
                j = first.get(h)
                if j is not None:
                    other += 1
                    rows.add(j)
                    break
    except Exception:  # a dataset that cannot be read here (it needs a worker, a file that is gone)
        return None
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    return n, own, other, same, rows
