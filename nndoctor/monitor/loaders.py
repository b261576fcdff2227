"""Which DataLoader a batch came from: a thin wrapper around ``DataLoader.__iter__`` and the
iterators' ``__next__`` (and ``_next_index``: the dataset indices a single-process batch was asked for).

The data checks of ``nndoctor run`` need to know whether an evaluation pass reads the
training data (a script measuring its training accuracy) or other data (its validation
or test set), and where one pass ends and the next begins. Both wrappers only record;
batches are returned untouched. Installed and removed by the observer (``finally``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.dataloader import _BaseDataLoaderIter

__all__ = ["LoaderInfo", "LoaderTracker", "root_dataset"]

_MAX_ITERATORS = 256


def root_dataset(dataset: Any) -> Any:
    """The dataset under ``Subset`` wrappers (a subset of the training set is training data)."""
    seen = 0
    while isinstance(dataset, Subset) and seen < 16:
        dataset = dataset.dataset
        seen += 1
    return dataset


@dataclass(frozen=True)
class LoaderInfo:
    """One iteration (epoch) over a DataLoader."""

    iteration: int  # 1-based count of DataLoader iterations started in the run
    loader_id: int
    dataset_id: int  # id of the dataset under any Subset wrappers
    own_dataset_id: int  # id of the loader's own dataset (a Subset, e.g. from random_split)
    dataset_len: int | None  # len() of the loader's own dataset, when it has one
    name: str  # the variable name the script gave the loader, "" if unknown


class LoaderTracker:
    """Records the DataLoader iteration the latest batch was fetched from."""

    def __init__(self, name_for: Callable[[Any, str], str] | None = None,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._name_for = name_for
        self._on_error = on_error  # told of a fault in the recording (the observer switches off)
        self._orig_iter: Callable[..., Any] | None = None
        self._orig_next: Callable[..., Any] | None = None
        self._iterators: dict[int, tuple[weakref.ReferenceType[Any], LoaderInfo]] = {}
        self._loaders: dict[int, weakref.ReferenceType[Any]] = {}  # id(loader) -> the loader, while alive
        self._names: dict[int, str] = {}
        self.iterations = 0
        self.fetches = 0  # batches fetched from any DataLoader
        self.train_mark = 0  # fetches at the latest root forward with gradient (set by the observer)
        #: the loader iteration of the latest root forward with gradient (set by the observer)
        self.train_current: LoaderInfo | None = None
        self.last_ptr = 0  # data_ptr() of the latest batch's first tensor (0: none or not a tensor)
        self.current: LoaderInfo | None = None
        #: a weak reference to the iterator of the latest batch (a loader made inside the ``for``
        #: statement is gone by then; its iterator holds the dataset and the sampler)
        self.current_iterator: weakref.ReferenceType[Any] | None = None
        #: id(loader) -> (name, sampler class, shuffle, [sampler.epoch at each iteration]) for the
        #: loaders whose sampler has set_epoch (DistributedSampler and the like)
        self.sampler_epochs: dict[int, tuple[str, str, bool, list[int]]] = {}
        #: id(loader) -> (name, dataset size, batch_size, drop_last, iterations) of the loaders iterated
        #: while they had no batch to give (len(loader) == 0: drop_last with fewer rows than a batch,
        #: an empty split)
        self.empty: dict[int, tuple[str, int | None, int | None, bool, int]] = {}
        #: the dataset indices of the latest batch, for a single-process loader whose batch sampler
        #: gives a list of ints (None otherwise): which examples the batch's rows were asked for
        self.last_indices: list[int] | None = None
        self._pending_indices: Any = None
        self._orig_index: Callable[..., Any] | None = None
        self._orig_it_iter: Callable[..., Any] | None = None
        #: id(iterator) -> the iterator, for the iterators whose batches ran out (StopIteration)
        self._exhausted: dict[int, weakref.ReferenceType[Any]] = {}
        #: id(loader) -> (name, times): an exhausted iterator of the loader iterated again (``it =
        #: iter(loader)`` made once, outside the epoch loop: every pass after the first is empty)
        self.reused_exhausted: dict[int, tuple[str, int]] = {}

    def install(self) -> None:
        if self._orig_iter is not None:
            return
        tracker = self
        orig_iter = DataLoader.__iter__
        orig_next = _BaseDataLoaderIter.__next__
        orig_index = _BaseDataLoaderIter._next_index
        orig_it_iter = _BaseDataLoaderIter.__iter__

        def __iter__(loader: DataLoader) -> Any:  # noqa: N807
            it = orig_iter(loader)  # (the user's errors pass through)
            if tracker._orig_iter is not None:
                try:
                    tracker._on_iter(loader, it)
                except Exception as exc:  # recording must never break the user's loop
                    tracker._fault("data loader iteration", exc)
            return it

        def _next_index(it: Any) -> Any:
            index = orig_index(it)
            tracker._pending_indices = index
            return index

        def it_iter(it: Any) -> Any:
            try:
                if id(it) in tracker._exhausted:
                    tracker._on_reuse(it)
            except Exception as exc:
                tracker._fault("data loader iteration", exc)
            return orig_it_iter(it)

        def __next__(it: Any) -> Any:  # noqa: N807
            tracker._pending_indices = None
            try:
                batch = orig_next(it)  # (the user's errors and StopIteration pass through)
            except StopIteration:
                if len(tracker._exhausted) >= _MAX_ITERATORS:
                    tracker._exhausted = {k: r for k, r in tracker._exhausted.items() if r() is not None}
                if len(tracker._exhausted) < _MAX_ITERATORS:
                    tracker._exhausted[id(it)] = weakref.ref(it)
                raise
            try:
                if tracker._exhausted:
                    tracker._exhausted.pop(id(it), None)  # (it yields again: reset by its loader)
                index, tracker._pending_indices = tracker._pending_indices, None
                tracker.last_indices = index if (getattr(it, "_num_workers", 1) == 0 and type(index) is list
                                                 and 0 < len(index) <= 4096 and type(index[0]) is int) else None
                tracker.fetches += 1
                first = batch[0] if type(batch) in (list, tuple) and batch else batch
                tracker.last_ptr = first.data_ptr() if type(first) is torch.Tensor else 0
                entry = tracker._iterators.get(id(it))
                if entry is not None and entry[0]() is it:
                    tracker.current = entry[1]
                    tracker.current_iterator = entry[0]
            except Exception as exc:
                tracker._fault("data loader batch", exc)
            return batch

        __iter__.__wrapped__ = orig_iter  # type: ignore[attr-defined]
        __next__.__wrapped__ = orig_next  # type: ignore[attr-defined]
        _next_index.__wrapped__ = orig_index  # type: ignore[attr-defined]
        it_iter.__wrapped__ = orig_it_iter  # type: ignore[attr-defined]
        self._orig_iter, self._orig_next, self._orig_index = orig_iter, orig_next, orig_index
        self._orig_it_iter = orig_it_iter
        _BaseDataLoaderIter.__iter__ = it_iter  # type: ignore[method-assign]
        DataLoader.__iter__ = __iter__  # type: ignore[method-assign]
        _BaseDataLoaderIter.__next__ = __next__  # type: ignore[method-assign]
        _BaseDataLoaderIter._next_index = _next_index  # type: ignore[method-assign]

    def remove(self) -> None:
        if self._orig_iter is not None:
            DataLoader.__iter__ = self._orig_iter  # type: ignore[method-assign]
            self._orig_iter = None
        if self._orig_next is not None:
            _BaseDataLoaderIter.__next__ = self._orig_next  # type: ignore[method-assign]
            self._orig_next = None
        if self._orig_index is not None:
            _BaseDataLoaderIter._next_index = self._orig_index  # type: ignore[method-assign]
            self._orig_index = None
        if self._orig_it_iter is not None:
            _BaseDataLoaderIter.__iter__ = self._orig_it_iter  # type: ignore[method-assign]
            self._orig_it_iter = None

    def _fault(self, where: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(where, exc)

    def _on_reuse(self, it: Any) -> None:
        """``iter()`` / ``for`` over an iterator whose batches already ran out: it yields nothing."""
        ref = self._exhausted.get(id(it))
        if ref is None or ref() is not it:
            return
        entry = self._iterators.get(id(it))
        info = entry[1] if entry is not None and entry[0]() is it else None
        key = info.loader_id if info is not None else id(it)
        name = info.name if info is not None else ""
        old = self.reused_exhausted.get(key)
        if old is not None or len(self.reused_exhausted) < _MAX_ITERATORS:
            self.reused_exhausted[key] = (name, old[1] + 1 if old else 1)

    def _on_iter(self, loader: DataLoader, it: Any) -> None:
        self.iterations += 1
        self._exhausted.pop(id(it), None)  # (a persistent-workers loader resets and returns its old iterator)
        dataset = loader.dataset
        try:
            size: int | None = len(dataset)  # type: ignore[arg-type]
        except Exception:  # an IterableDataset, or a dataset without len()
            size = None
        name = self._names.get(id(loader))
        if name is None:
            name = self._name_for(loader, "") if self._name_for is not None else ""
            self._names[id(loader)] = name
        info = LoaderInfo(iteration=self.iterations, loader_id=id(loader),
                          dataset_id=id(root_dataset(dataset)), own_dataset_id=id(dataset),
                          dataset_len=size, name=name)
        self._record_sampler_epoch(loader, name)
        self._record_empty(loader, name, size)
        if len(self._iterators) >= _MAX_ITERATORS:
            self._iterators = {k: v for k, v in self._iterators.items() if v[0]() is not None}
        self._iterators[id(it)] = (weakref.ref(it), info)
        if id(loader) not in self._loaders:
            if len(self._loaders) >= _MAX_ITERATORS:
                self._loaders = {k: r for k, r in self._loaders.items() if r() is not None}
            if len(self._loaders) < _MAX_ITERATORS:
                self._loaders[id(loader)] = weakref.ref(loader)

    def loader(self, info: LoaderInfo) -> Any:
        """The DataLoader of an iteration, while it lives (its iterator may be gone: ``next(iter(loader))``)."""
        ref = self._loaders.get(info.loader_id)
        loader = ref() if ref is not None else None
        return loader if loader is not None and id(loader) == info.loader_id else None

    def _record_empty(self, loader: DataLoader, name: str, size: int | None) -> None:
        if size is None or len(self.empty) >= _MAX_ITERATORS:
            return
        try:
            batches = len(loader)
        except Exception:  # an IterableDataset or a custom sampler without len()
            return
        if batches != 0:
            return
        old = self.empty.get(id(loader))
        self.empty[id(loader)] = (name, size, loader.batch_size, bool(loader.drop_last), old[4] + 1 if old else 1)

    def _record_sampler_epoch(self, loader: DataLoader, name: str) -> None:
        samplers = (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None))
        sampler = next((s for s in samplers if callable(getattr(s, "set_epoch", None))
                        and isinstance(getattr(s, "epoch", None), int)), None)
        if sampler is None:
            return
        record = self.sampler_epochs.get(id(loader))
        if record is None:
            if len(self.sampler_epochs) >= _MAX_ITERATORS:
                return
            record = self.sampler_epochs[id(loader)] = (name, type(sampler).__name__,
                                                        bool(getattr(sampler, "shuffle", True)), [])
        if len(record[3]) < 64:
            record[3].append(sampler.epoch)
