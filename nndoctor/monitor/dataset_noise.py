"""Noise a ``Dataset.__getitem__`` adds with numpy, measured at the end of the run.

``return self.x[i] + np.random.normal(0, 3.0, self.x[i].shape), self.y[i]``: the function mode
follows torch's random functions only, so noise drawn with numpy inside a dataset is not seen in
training. At the end of the run (after the training: nothing the script does changes) the latest
training dataset (kept by :class:`~nndoctor.monitor.checks.data.index_ignored.IndexIgnored`,
``state.extra[TRAIN_DATASET_KEY]``) is read twice at ``READS`` spread indices while numpy's global
random functions (``np.random.normal``/``randn``/``standard_normal``/``uniform``/``rand``/``random``)
are wrapped to record what they draw; every random state is restored afterwards.

The noise is additive when the two reads differ by one number times the difference of the draws
of the same shape: ``x1 - x2 = s * (d1 - d2)`` over all examples read (fitted by least squares, at
least ``FIT`` of the variance explained). Then the noise is ``s * d1``, the clean example ``x1 - s * d1``,
and :func:`noise_ratio` compares them (the input-noise check's measure). ``part`` picks the item's
element: 0 the input, 1 the target.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["TRAIN_DATASET_KEY", "numpy_noise"]

TRAIN_DATASET_KEY = "nndoctor.train_dataset"
READS = 32
FIT = 0.98
_FUNCS = ("normal", "randn", "standard_normal", "uniform", "rand", "random", "random_sample")


def _part(item: Any, part: int) -> np.ndarray | None:
    value = item[part] if isinstance(item, (tuple, list)) and len(item) > part else (item if part == 0 else None)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = np.asarray(value, dtype=np.float64)
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        return None
    return value.astype(np.float64)


def _read(dataset: Any, i: int, part: int, draws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(element, the draw of its shape)`` of ``dataset[i]``; None without exactly one such draw."""
    draws.clear()
    item = dataset[i]
    x = _part(item, part)
    if x is None:
        return None
    if isinstance(item, (tuple, list)) and any(k != part and tuple(np.shape(v)) == x.shape and np.ndim(v) >= 1
                                               for k, v in enumerate(item)):
        return None  # another element of the input's shape: a denoising pair (noisy input, clean target)
    same = [d for d in draws if np.shape(d) == x.shape]
    return (x, np.asarray(same[0], dtype=np.float64)) if len(same) == 1 else None


def numpy_noise(dataset: Any, part: int, ratio: Callable[[torch.Tensor, torch.Tensor], float | None]
                ) -> tuple[float, int, float] | None:
    """``(noise ratio, examples read, fitted scale)`` of additive numpy noise in ``dataset[i][part]``,
    or None when there is none to measure."""
    try:
        size = len(dataset)
    except Exception:  # an IterableDataset, no len()
        return None
    if size < 8:
        return None
    draws: list[np.ndarray] = []
    originals = {name: getattr(np.random, name) for name in _FUNCS if hasattr(np.random, name)}

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def drawn(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            if len(draws) < 16:
                draws.append(np.asarray(out))
            return out
        return drawn

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    pairs = []
    try:
        for name, fn in originals.items():
            setattr(np.random, name, wrap(fn))
        for i in sorted(set(np.linspace(0, size - 1, min(READS, size)).astype(int).tolist())):
            first, second = _read(dataset, i, part, draws), _read(dataset, i, part, draws)
            if first is not None and second is not None:
                pairs.append((first, second))
    except Exception:  # a dataset that cannot be read here: nothing to say
        return None
    finally:
        for name, fn in originals.items():
            setattr(np.random, name, fn)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    if len(pairs) < 8:
        return None
    dx = np.concatenate([(a[0] - b[0]).ravel() for a, b in pairs])
    dd = np.concatenate([(a[1] - b[1]).ravel() for a, b in pairs])
    denom = float(dd @ dd)
    if not denom > 0 or not float(dx @ dx) > 0:
        return None
    s = float(dx @ dd) / denom
    explained = 1.0 - float(((dx - s * dd) ** 2).sum()) / float((dx ** 2).sum())
    if explained < FIT:
        return None  # not one scale times the draw: clipped, multiplied in, or something else
    clean = torch.from_numpy(np.stack([a[0] - s * a[1] for a, _ in pairs]))
    noise = torch.from_numpy(np.stack([s * a[1] for a, _ in pairs]))
    r = ratio(clean.reshape(len(pairs), -1), noise.reshape(len(pairs), -1))
    return None if r is None else (r, len(pairs), s)
