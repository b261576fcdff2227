"""Make the problem smaller (field guide, "simplify the problem") and build learnable synthetic data.

:func:`simplify` keeps ~10,000 examples, the most frequent classes and smaller images, so
a first model trains in seconds. :func:`synthetic_like` builds a dataset with the user's
input and target shapes whose labels a small model can learn: if the model cannot fit
it, the bug is in the model or the training code, not in the data. Both are
deterministic (their own generator: the user's RNG is not touched).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

__all__ = ["as_tensors", "simplify", "synthetic_like"]


def as_tensors(data: Any, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` from tensors, a TensorDataset, a map-style Dataset or a DataLoader."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors[0], data.tensors[1]
    dataset = getattr(data, "dataset", None)
    if dataset is not None and not isinstance(data, Dataset):  # a DataLoader
        return as_tensors(dataset, limit)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        n = len(data) if limit is None else min(limit, len(data))  # type: ignore[arg-type]
        items = [data[i] for i in range(n)]
        xs = torch.stack([torch.as_tensor(it[0]) for it in items])
        ys = torch.stack([torch.as_tensor(it[-1]) for it in items])
        return xs, ys
    raise TypeError(f"cannot read examples from {type(data).__name__}: give tensors, a Dataset or a DataLoader")


def simplify(data: Any, *, max_examples: int = 10_000, classes: int | None = None,
             image_size: int | None = None, seed: int = 0) -> TensorDataset:
    """A smaller version of ``data``: at most ``max_examples``, the ``classes`` most frequent
    classes (relabelled 0..classes-1, stratified), images resized to ``image_size``."""
    x, y = as_tensors(data, limit=None)
    if classes is not None:
        if y.is_floating_point() or y.dim() != 1:
            raise ValueError("classes= needs integer class labels of shape (N,)")
        keep = [c for c, _ in Counter(y.tolist()).most_common(classes)]
        mapping = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
        for new, old in enumerate(sorted(keep)):
            mapping[old] = new
        mask = mapping[y] >= 0
        x, y = x[mask], mapping[y[mask]]
    if len(x) > max_examples:
        g = torch.Generator().manual_seed(seed)
        if not y.is_floating_point() and y.dim() == 1:  # stratified: same share of each class
            idx = []
            for c in y.unique():
                members = (y == c).nonzero().flatten()
                take = max(1, round(len(members) * max_examples / len(y)))
                idx.append(members[torch.randperm(len(members), generator=g)[:take]])
            order = torch.cat(idx)
            order = order[torch.randperm(len(order), generator=g)][:max_examples]
        else:
            order = torch.randperm(len(x), generator=g)[:max_examples]
        x, y = x[order], y[order]
    if image_size is not None and x.dim() in (3, 4) and x.is_floating_point():
        grey = x.dim() == 3
        x4 = x.unsqueeze(1) if grey else x
        x4 = F.adaptive_avg_pool2d(x4, image_size) if x4.shape[-1] > image_size else F.interpolate(
            x4, size=(image_size, image_size), mode="bilinear", align_corners=False)
        x = x4.squeeze(1) if grey else x4
    return TensorDataset(x, y)


def synthetic_like(inputs: torch.Tensor, targets: torch.Tensor, *, n: int = 1024, seed: int = 0) -> TensorDataset:
    """A learnable dataset with the shapes and dtypes of ``inputs`` / ``targets`` (one batch each).

    Inputs are standard normal (token ids uniform over the observed vocabulary); targets
    come from a fixed random teacher: class labels from ``argmax`` of a linear projection
    (same number of classes), binary 0/1 targets from its sign, regression targets from a
    tanh of it, scaled like the real targets.
    """
    g = torch.Generator().manual_seed(seed)
    shape = tuple(inputs.shape[1:])
    if inputs.is_floating_point():
        x = torch.randn((n, *shape), generator=g, dtype=inputs.dtype)
        feats = x.reshape(n, -1).float()
    else:
        vocab = max(2, int(inputs.max()) + 1)
        x = torch.randint(0, vocab, (n, *shape), generator=g, dtype=inputs.dtype)
        feats = F.one_hot(x.reshape(n, -1) % vocab, vocab).float().mean(1)
    d = feats.shape[1]
    t_shape = tuple(targets.shape[1:])
    if not targets.is_floating_point():
        k = max(2, int(targets.max()) + 1)
        w = torch.randn(d, k * max(1, math.prod(t_shape)), generator=g)
        scores = (feats @ w).reshape(n, *t_shape, k) if t_shape else feats @ w
        y = scores.argmax(-1).to(targets.dtype)
    else:
        m = max(1, math.prod(t_shape))
        proj = feats @ torch.randn(d, m, generator=g) / math.sqrt(d)
        if bool(((targets == 0) | (targets == 1)).all()):
            y = (proj > 0).to(targets.dtype)
        else:
            y = torch.tanh(proj) * targets.float().std().clamp_min(1e-3) + targets.float().mean()
            y = y.to(targets.dtype)
        y = y.reshape(n, *t_shape)
    return TensorDataset(x, y)
