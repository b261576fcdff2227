"""Train one zoo configuration, watched by nndoctor (or bare), and measure how well it trained.

The loop is written the ways real scripts write it (DataLoader or manual slicing, zero_grad
before the forward or after the step, gradient accumulation, clipping, schedulers, periodic
evaluation in eval mode) as the config says. Quality is measured outside nndoctor's watch, on
held-out data, with the task's natural loss: the same yardstick for a run and its mutants.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.runzoo.config import Config
from benchmarks.runzoo.data import Data, make_data
from benchmarks.runzoo.models import build_model
from benchmarks.runzoo.recipes import build_recipe

__all__ = ["Outcome", "run_config"]


@dataclass
class Outcome:
    config: dict[str, Any]
    init_quality: float              # held-out loss before training (lower is better)
    quality: float                   # held-out loss after training (inf when crashed / non-finite)
    crashed: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)   # code, category, severity, first_step
    internal_errors: list[str] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    @property
    def trained_well(self) -> bool:
        """A healthy run must clearly beat its untrained self on held-out data."""
        if self.crashed or not math.isfinite(self.quality):
            return False
        task = self.config["data"]
        ratio = {"regression": 0.5, "autoencode": 0.5, "tokens": 0.9}.get(task, 0.8)
        return self.quality <= ratio * self.init_quality

    def warnings(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["severity"] in ("warning", "error")]


class _Detach(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


def _prepare_data(cfg: Config) -> Data:
    data = make_data(cfg.data, cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    if cfg.label_shuffle:
        data.y_train = data.y_train[torch.randperm(len(data.y_train), generator=g)]
    if cfg.label_noise and data.n_classes:
        flip = torch.rand(len(data.y_train), generator=g) < cfg.label_noise
        noise = torch.randint(0, data.n_classes, (len(data.y_train),), generator=g)
        data.y_train = torch.where(flip, noise, data.y_train)
    if cfg.input_scale != 1.0 or cfg.input_shift:
        # the same raw scale in training and evaluation (forgotten normalisation)
        data.x_train = data.x_train * cfg.input_scale + cfg.input_shift
        data.x_eval = data.x_eval * cfg.input_scale + cfg.input_shift
        if data.task == "reconstruct":
            data.y_train, data.y_eval = data.x_train.clone(), data.x_eval.clone()
    if cfg.float64 or cfg.input_float64:
        if data.x_train.is_floating_point():
            data.x_train, data.x_eval = data.x_train.double(), data.x_eval.double()
    if cfg.float64 and data.y_train.is_floating_point():
        data.y_train, data.y_eval = data.y_train.double(), data.y_eval.double()
    return data


def _prepare_model(cfg: Config, data: Data) -> nn.Module:
    model = build_model(cfg, data)
    if cfg.detach_hidden and isinstance(model, nn.Sequential):
        first_act = next(i for i, m in enumerate(model) if i > 1 and not isinstance(m, nn.Linear))
        model.insert(first_act + 1, _Detach())
    if cfg.init != "default":
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                if cfg.init == "constant":
                    nn.init.constant_(m.weight, 0.05)
                elif cfg.init == "zeros":
                    nn.init.zeros_(m.weight)
                elif cfg.init == "huge":
                    nn.init.normal_(m.weight, std=3.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    if cfg.float64:
        model = model.double()
    if cfg.freeze_all:
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def _optimizer(cfg: Config, params: Any) -> torch.optim.Optimizer:
    o, lr, wd = cfg.optimizer, cfg.lr, cfg.weight_decay
    if o == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if o == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if o == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, eps=cfg.adam_eps)
    if o == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, eps=cfg.adam_eps)
    if o == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    if o == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if o == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=5, history_size=10)
    raise ValueError(f"unknown optimizer {o!r}")


def _scheduler(cfg: Config, opt: torch.optim.Optimizer) -> Any:
    s, n = cfg.schedule, cfg.steps
    lrs = torch.optim.lr_scheduler
    if s == "step":
        return lrs.StepLR(opt, step_size=max(1, n // 3), gamma=0.5)
    if s == "cosine":
        return lrs.CosineAnnealingLR(opt, T_max=n)
    if s == "onecycle":
        cycle = "betas" in opt.defaults or bool(opt.defaults.get("momentum"))
        return lrs.OneCycleLR(opt, max_lr=cfg.lr, total_steps=n, cycle_momentum=cycle)
    if s == "warmup":
        warm = max(1, n // 10)
        return lrs.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm))
    if s == "restarts":
        return lrs.CosineAnnealingWarmRestarts(opt, T_0=max(1, n // 4))
    if s == "plateau":
        return lrs.ReduceLROnPlateau(opt, factor=0.5, patience=max(2, n // 20))
    return None


def _loss(cfg: Config, data: Data, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if data.task == "lm":
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    if data.task == "classify":
        if cfg.loss == "ce":
            return nn.CrossEntropyLoss()(out, y)
        if cfg.loss == "ce_smooth":
            return F.cross_entropy(out, y, label_smoothing=0.1)
        if cfg.loss == "nll":
            return F.nll_loss(F.log_softmax(out, dim=1), y)
        return F.cross_entropy(out, y)
    if cfg.flat_target:
        y = y.reshape(-1)
    if cfg.loss == "bce":
        return F.binary_cross_entropy(out, y)
    if cfg.loss == "l1":
        return nn.L1Loss()(out, y)
    if cfg.loss == "huber":
        return F.smooth_l1_loss(out, y)
    return nn.MSELoss()(out, y)


def _quality(model: nn.Module, data: Data) -> float:
    """Held-out loss with the task's natural loss function (never watched)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(data.x_eval)
            y = data.y_eval
            if data.task == "lm":
                value = F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), y.reshape(-1))
            elif data.task == "classify":
                value = F.cross_entropy(out.float(), y)
            else:
                value = F.mse_loss(out.float(), y.float())
        return float(value)
    except Exception:
        return math.inf
    finally:
        model.train(was)


def _batches(cfg: Config, data: Data, g: torch.Generator) -> Any:
    n = len(data.x_train)
    bs = min(cfg.batch_size, n)
    if cfg.loader == "dataloader" and cfg.optimizer != "lbfgs":
        ds = torch.utils.data.TensorDataset(data.x_train, data.y_train)
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, generator=g)
        while True:
            yield from loader
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - bs + 1, bs):
            idx = perm[i:i + bs]
            yield data.x_train[idx], data.y_train[idx]


def _train(cfg: Config, data: Data, model: nn.Module, net: nn.Module, opt: torch.optim.Optimizer) -> int:
    """The training loop; ``net`` is what the script calls (the model, maybe with a softmax on top)."""
    sched = _scheduler(cfg, opt)
    g = torch.Generator().manual_seed(cfg.seed + 2)
    batches = _batches(cfg, data, g)
    model.train(not cfg.train_in_eval)
    params = [p for p in model.parameters()]
    steps = 0
    if cfg.zero_grad == "after" and not cfg.skip_zero_grad:
        opt.zero_grad()
    while steps < cfg.steps:
        if cfg.optimizer == "lbfgs":
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = _loss(cfg, data, net(data.x_train), data.y_train)
                loss.backward()
                return loss

            opt.step(closure)
        else:
            micro = cfg.accumulate if cfg.zero_grad == "accumulate" else 1
            if not cfg.skip_zero_grad:
                if cfg.zero_grad in ("before", "accumulate"):
                    opt.zero_grad()
                elif cfg.zero_grad == "model":
                    model.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(micro):
                x, y = next(batches)
                loss = _loss(cfg, data, net(x), y)
                if cfg.hand_l2:
                    loss = loss + cfg.hand_l2 * sum(p.pow(2).sum() for p in params)
                (loss / micro).backward()
                total += loss.item() / micro
            if cfg.clip:
                nn.utils.clip_grad_norm_(params, cfg.clip)
            opt.step()
            if cfg.zero_grad == "after" and not cfg.skip_zero_grad:
                opt.zero_grad()
            if sched is not None:
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    sched.step(total)
                else:
                    sched.step()
        steps += 1
        if cfg.eval_every and steps % cfg.eval_every == 0:
            model.eval()
            with torch.no_grad():
                _loss(cfg, data, net(data.x_eval), data.y_eval)
            model.train(not cfg.train_in_eval)
    return steps


def run_config(cfg: Config, *, watch: bool = True) -> Outcome:
    """Train ``cfg`` (under ``nndoctor.watch()`` unless ``watch=False``) and score it."""
    import nndoctor

    torch.manual_seed(cfg.seed)
    if cfg.recipe:
        recipe = build_recipe(cfg)
        quality, train = recipe.quality, recipe.train
    else:
        data = _prepare_data(cfg)
        model = _prepare_model(cfg, data)
        net: nn.Module = nn.Sequential(model, nn.Softmax(dim=-1)) if cfg.softmax_output else model
        opt = _optimizer(cfg, model.parameters())

        def quality() -> float:
            return _quality(model, data)

        def train() -> int:
            return _train(cfg, data, model, net, opt)
    init_quality = quality()
    outcome = Outcome(config=cfg.to_dict(), init_quality=init_quality, quality=math.inf)
    doctor = nndoctor.watch() if watch else None
    started = time.perf_counter()
    try:
        # the crash goes through the watch's __exit__, which explains it, before it is caught here
        with contextlib.ExitStack() as stack:
            if doctor is not None:
                stack.enter_context(doctor)
            outcome.steps = train()
    except Exception as exc:  # a mutant may crash: that is part of what nndoctor explains
        outcome.crashed = f"{type(exc).__name__}: {exc}"[:300]
    outcome.seconds = time.perf_counter() - started
    if not outcome.crashed:
        outcome.quality = quality()
    if doctor is not None:
        report = doctor.report()
        outcome.findings = [{"code": f.code, "category": f.category, "severity": f.severity.value,
                             "first_step": f.first_step} for f in report.sorted()]
        outcome.internal_errors = [f"{e.probe}: {e.error}" for e in report.internal_errors]
    return outcome
