"""More zoo recipes: healthy kinds the first set (runzoo/recipes.py) does not generate.

Class-weighted and per-sample-weighted losses on imbalanced data, a multi-task loss (a shared
trunk with a classification and a regression head, maybe in double precision), a token model on
sequences of mixed lengths whose padding the loss ignores (``ignore_index``; maybe a
zero-initialised embedding table), and very short runs (fewer than 30 steps). Every recipe
may use a warm-up followed by cosine restarts (``schedule="warmup_restarts"``, as
transformers' ``get_cosine_with_hard_restarts_schedule_with_warmup`` writes it). Each run
takes well under a second on one core.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.runzoo.data import make_data
from benchmarks.runzoo.models import ACTIVATIONS

__all__ = ["MORE_BUILDERS", "warmup_restarts"]


def warmup_restarts(opt: torch.optim.Optimizer, steps: int, cycles: int = 3) -> Any:
    """Linear warm-up over a tenth of the run, then ``cycles`` cosine decays with hard restarts."""
    warm = max(1, steps // 10)

    def factor(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        progress = (i - warm) / max(1, steps - warm)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _imbalanced_blobs(seed: int) -> Any:
    """Blobs whose classes are kept with falling probability (the last ones are rare)."""
    data = make_data("blobs", seed)
    k = data.n_classes
    g = torch.Generator().manual_seed(seed + 13)
    keep_p = torch.linspace(1.0, 0.15, k)
    for split in ("train", "eval"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        keep = torch.rand(len(y), generator=g) < keep_p[y]
        setattr(data, f"x_{split}", x[keep])
        setattr(data, f"y_{split}", y[keep])
    return data


def _weighted(cfg: Any) -> Any:
    from benchmarks.runzoo.recipes import Recipe, _Loop, _mlp, _no_grad_eval

    L = _Loop(cfg)
    data = _imbalanced_blobs(cfg.seed)
    k = data.n_classes
    counts = torch.bincount(data.y_train, minlength=k).float().clamp_min(1)
    w = counts.sum() / (k * counts)  # inverse frequency (sklearn's "balanced")
    model = _mlp(data.in_features, k, cfg.width, cfg.act, cfg.norm)
    opt = L.optimizer(model.parameters())
    sched = L.scheduler(opt)
    params = list(model.parameters())
    crit = nn.CrossEntropyLoss(weight=w)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if cfg.loss == "class_weight_module":
            return crit(out, y)
        if cfg.loss == "class_weight_fn":
            return F.cross_entropy(out, y, weight=w)
        per = F.cross_entropy(out, y, reduction="none")  # per-sample weights
        return (per * w[y]).sum() / w[y].sum()

    def train() -> int:
        batches = L.batches(data.x_train, data.y_train)
        for _step in range(cfg.steps):
            x, y = next(batches)
            L.update(opt, loss_of(x, y), params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(
        F.cross_entropy(model(data.x_eval), data.y_eval, weight=w))))


class _TwoHeads(nn.Module):
    def __init__(self, d: int, k: int, width: int, act: str) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(d, width), ACTIVATIONS[act](), nn.Linear(width, width),
                                   ACTIVATIONS[act]())
        self.cls = nn.Linear(width, k)
        self.reg = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.cls(h), self.reg(h)


def _multitask(cfg: Any) -> Any:
    from benchmarks.runzoo.recipes import Recipe, _Loop, _no_grad_eval

    L = _Loop(cfg)
    data = make_data("blobs", cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed + 17)
    proj = torch.randn(data.in_features, generator=g) / math.sqrt(data.in_features)

    def target(x: torch.Tensor) -> torch.Tensor:  # a second, continuous label of the same inputs
        return torch.tanh(x @ proj).unsqueeze(1) * 2

    r_train, r_eval = target(data.x_train), target(data.x_eval)
    model = _TwoHeads(data.in_features, data.n_classes, cfg.width, cfg.act)
    x_train, x_eval = data.x_train, data.x_eval
    if cfg.float64:  # double precision on purpose (the whole run, not just the inputs)
        model = model.double()
        x_train, x_eval, r_train, r_eval = x_train.double(), x_eval.double(), r_train.double(), r_eval.double()
    opt = L.optimizer(model.parameters())
    sched = L.scheduler(opt)
    params = list(model.parameters())
    alpha = 0.5 if cfg.seed % 3 else 1.5

    def loss_of(x: torch.Tensor, y: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        logits, pred = model(x)
        if cfg.loss == "sum":
            return F.cross_entropy(logits, y) + alpha * F.mse_loss(pred, r)
        return nn.CrossEntropyLoss()(logits, y) + alpha * nn.SmoothL1Loss()(pred, r)

    def train() -> int:
        was = torch.get_default_dtype()
        if cfg.float64:  # the way a script says it means float64: the default dtype, for the whole run
            torch.set_default_dtype(torch.float64)
        try:
            batches = L.batches(x_train, data.y_train, r_train)
            for _step in range(cfg.steps):
                L.update(opt, loss_of(*next(batches)), params, sched)
        finally:
            torch.set_default_dtype(was)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(loss_of(x_eval, data.y_eval, r_eval))))


class _PaddedLM(nn.Module):
    """A GRU language model over token ids 1..V, id 0 the padding (never a target)."""

    def __init__(self, vocab: int, width: int, zero_emb: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab + 1, 32, padding_idx=0)
        if zero_emb:
            nn.init.zeros_(self.emb.weight)
        self.rnn = nn.GRU(32, width, batch_first=True)
        self.head = nn.Linear(width, vocab + 1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(idx))
        return self.head(out)


def _markov_tokens(seed: int, n: int = 640, t: int = 13) -> torch.Tensor:
    """``n`` sequences of ``t`` ids in 0..V-1 (V 16 to 40) from a chain where each id prefers a few successors."""
    g = torch.Generator().manual_seed(seed)
    vocab = int(torch.randint(16, 41, (1,), generator=g))
    trans = torch.full((vocab, vocab), 0.2 / vocab)
    for tok in range(vocab):
        trans[tok, torch.randperm(vocab, generator=g)[:2]] += 0.4
    seqs = torch.empty(n, t, dtype=torch.long)
    seqs[:, 0] = torch.randint(0, vocab, (n,), generator=g)
    for i in range(1, t):
        seqs[:, i] = torch.multinomial(trans[seqs[:, i - 1]], 1, generator=g).squeeze(1)
    return seqs


def _pad(seqs: torch.Tensor, seed: int, target_pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences cut to random lengths (a half to all of their tokens), the rest padded."""
    g = torch.Generator().manual_seed(seed)
    n, t = seqs.shape
    lengths = torch.randint(max(2, t // 2), t + 1, (n,), generator=g)
    tokens = seqs + 1  # ids 1..V; 0 pads
    inside = torch.arange(t)[None, :] < lengths[:, None]
    x = torch.where(inside[:, :-1], tokens[:, :-1], 0)
    y = torch.where(inside[:, 1:], tokens[:, 1:], target_pad)
    return x, y


def _padded(cfg: Any) -> Any:
    from benchmarks.runzoo.recipes import Recipe, _Loop, _no_grad_eval

    L = _Loop(cfg)
    seqs = _markov_tokens(cfg.seed)
    vocab = int(seqs.max()) + 1
    ignore = -100 if cfg.loss == "ignore_default" else 0  # -100 (the default) or the pad id itself
    x_train, y_train = _pad(seqs[:512], cfg.seed + 19, ignore)
    x_eval, y_eval = _pad(seqs[512:], cfg.seed + 23, ignore)
    model = _PaddedLM(vocab, cfg.width, zero_emb=cfg.seed % 4 < 2)
    opt = L.optimizer(model.parameters())
    sched = L.scheduler(opt)
    params = list(model.parameters())
    crit = nn.CrossEntropyLoss(ignore_index=ignore)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        if cfg.loss == "ignore_pad_module":
            return crit(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        if cfg.loss == "ignore_pad_fn":
            return F.cross_entropy(logits.transpose(1, 2), y, ignore_index=ignore)  # (N, C, T) form
        return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))

    def train() -> int:
        batches = L.batches(x_train, y_train)
        for _step in range(cfg.steps):
            L.update(opt, loss_of(*next(batches)), params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(loss_of(x_eval, y_eval))))


def _short(cfg: Any) -> Any:
    """Fewer than 30 steps: a quick fit of an easy task with a hot learning rate, full batch or not."""
    from benchmarks.runzoo.recipes import Recipe, _Loop, _mlp, _no_grad_eval

    L = _Loop(cfg)
    data = make_data("blobs", cfg.seed)
    k = data.n_classes
    if cfg.loss == "linear":
        model: nn.Module = nn.Linear(data.in_features, k)
    else:
        model = _mlp(data.in_features, k, cfg.width, cfg.act, cfg.norm)
    opt = L.optimizer(model.parameters())
    sched = L.scheduler(opt)
    params = list(model.parameters())

    def train() -> int:
        batches = L.batches(data.x_train, data.y_train)
        for _step in range(cfg.steps):
            x, y = next(batches)
            L.update(opt, F.cross_entropy(model(x), y), params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(
        F.cross_entropy(model(data.x_eval), data.y_eval))))


MORE_BUILDERS = {"weighted": _weighted, "multitask": _multitask, "padded": _padded, "short": _short}
