"""Label noise by confident learning, implemented here (no cleanlab dependency).

Given out-of-sample predicted probabilities and the given labels, confident learning
(Northcutt, Jiang & Chuang, 2021) estimates the joint distribution of given and true
labels from the examples the model is *confident* about (probability above the
per-class average self-confidence), calibrates it to the label counts, and flags, for
each (given i, true j) cell, the examples labelled i with the largest margin
p(j) - p(i). The implementation is ~60 lines of numpy; cleanlab would add pandas and
scikit-learn to the core for the same estimate, so we keep it in-house.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nndoctor import catalogue
from nndoctor.findings import Finding, Step

__all__ = ["LabelNoise", "find_label_issues", "out_of_sample_probs"]


@dataclass
class LabelNoise:
    """The estimate: noise rate, flagged example indices (most suspicious first), the joint."""

    noise_rate: float
    issues: np.ndarray
    suggested: np.ndarray  # the class confident learning thinks each flagged example belongs to
    joint: np.ndarray  # calibrated confident joint (given x true), sums to 1

    def finding(self, *, min_rate: float = 0.05) -> Finding | None:
        if self.noise_rate < min_rate or len(self.issues) == 0:
            return None
        top = [int(i) for i in self.issues[:20]]
        evidence = {"noise_rate": round(self.noise_rate, 4), "n_flagged": int(len(self.issues)),
                    "top_indices": top, "suggested_labels": [int(s) for s in self.suggested[:20]],
                    "which": "indices in the evidence, most suspicious first"}

        return catalogue.finding(
            "labels.noisy", step=Step.EVALUATE,
            message=(f"about {self.noise_rate:.0%} of the training labels look wrong: "
                     f"{len(self.issues)} examples disagree confidently with out-of-sample predictions"),
            evidence=evidence, location="train")


def find_label_issues(probs: np.ndarray, labels: np.ndarray) -> LabelNoise:
    """Confident learning on out-of-sample ``probs`` (n, K) and given ``labels`` (n,)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs must be (n, K) matching labels (n,), got {probs.shape} and {labels.shape}")
    n, k = probs.shape
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must be in [0, {k}), got range [{labels.min()}, {labels.max()}]")
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    thresholds = np.array([probs[labels == j, j].mean() if counts[j] else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    confident = above.any(axis=1)
    true_guess = masked.argmax(axis=1)
    joint = np.zeros((k, k))
    np.add.at(joint, (labels[confident], true_guess[confident]), 1.0)
    # calibrate: each row sums to the number of examples with that given label
    row = joint.sum(axis=1, keepdims=True)
    joint = np.where(row > 0, joint / np.maximum(row, 1e-12) * counts[:, None], 0.0)
    joint /= max(joint.sum(), 1e-12)
    noise_rate = float(1.0 - np.trace(joint))
    # prune by noise rate: in each off-diagonal cell flag the largest-margin examples
    flagged: dict[int, tuple[float, int]] = {}
    for i in range(k):
        idx = np.flatnonzero(labels == i)
        if idx.size == 0:
            continue
        for j in range(k):
            if i == j:
                continue
            m = int(round(joint[i, j] * n))
            if m <= 0:
                continue
            margin = probs[idx, j] - probs[idx, i]
            order = np.argsort(-margin)[:m]
            for pos in order:
                if margin[pos] <= 0:
                    break
                ex = int(idx[pos])
                if ex not in flagged or flagged[ex][0] < margin[pos]:
                    flagged[ex] = (float(margin[pos]), j)
    # keep only examples whose prediction also disagrees with the label ("both" method)
    pred = probs.argmax(axis=1)
    items = [(m, ex, j) for ex, (m, j) in flagged.items() if pred[ex] != labels[ex]]
    items.sort(key=lambda t: -t[0])
    issues = np.array([ex for _, ex, _ in items], dtype=np.int64)
    suggested = np.array([j for _, _, j in items], dtype=np.int64)
    return LabelNoise(noise_rate=noise_rate, issues=issues, suggested=suggested, joint=joint)


def out_of_sample_probs(
    features: np.ndarray, labels: np.ndarray, *, folds: int = 5, epochs: int = 150, seed: int = 0,
    weight_decay: float = 1e-2,
) -> np.ndarray:
    """K-fold out-of-sample class probabilities from a multinomial logistic regression.

    Cheap and deterministic; good enough to find confidently wrong labels when the
    classes are at least roughly linearly separable (a learned embedding can be passed
    as ``features`` otherwise).
    """
    import torch

    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if folds < 2 or folds > len(y):
        raise ValueError(f"folds must be in [2, {len(y)}], got {folds!r}")
    k = int(y.max()) + 1
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / std
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    out = np.zeros((len(y), k))
    gen = torch.Generator().manual_seed(seed)
    for f in range(folds):
        test_idx = order[f::folds]
        train_idx = np.setdiff1d(order, test_idx)
        w, b = _fit_softmax_regression(torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]), k,
                                       epochs=epochs, weight_decay=weight_decay, generator=gen)
        with torch.no_grad():
            out[test_idx] = torch.softmax(torch.from_numpy(x[test_idx]) @ w + b, dim=1).numpy()
    return out


def _fit_softmax_regression(xt, yt, k: int, *, epochs: int, weight_decay: float, generator):  # type: ignore[no-untyped-def]
    import torch

    w = torch.zeros(xt.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    torch.nn.init.normal_(w, std=0.01, generator=generator)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=epochs, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()
