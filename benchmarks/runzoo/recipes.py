"""Zoo recipes: healthy training kinds whose loop is not "a model, a loss, a target".

GANs (two optimizers, losses that do not go down), a VAE (reconstruction plus KL), contrastive
learning (SimCLR's NT-Xent with a temperature, triplets), distillation (KL to a teacher's soft
targets), fine-tuning a head on a frozen backbone, a curriculum (data that gets harder: the loss
goes up on purpose) and soft targets (mixup). Each recipe is seeded by its config and written in
more than one style; its quality is a held-out loss measured outside nndoctor's watch (lower is
better), so a recipe run and its mutants share one yardstick. Mutation operators that a recipe
supports: the learning rate, zero_grad, freezing, weight decay and a hand-written L2 term
(``RECIPE_MUTATIONS``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.runzoo.data import make_data
from benchmarks.runzoo.models import ACTIVATIONS

__all__ = ["RECIPES", "RECIPE_MUTATIONS", "Recipe", "build_recipe", "recipe_fields"]

RECIPES = ("gan", "vae", "simclr", "triplet", "distill", "finetune", "curriculum", "mixup",
           "weighted", "multitask", "padded", "short")  # the last four: runzoo/recipes_more.py
RECIPE_MUTATIONS = frozenset({"lr-x1000", "lr-div1e4", "no-zero-grad", "freeze-all", "huge-weight-decay",
                              "hand-l2-dominates"})


@dataclass
class Recipe:
    train: Callable[[], int]       # the watched loop; returns the steps taken
    quality: Callable[[], float]   # held-out loss (never watched)


def recipe_fields(kind: str, rng: random.Random) -> dict[str, Any]:
    """The config fields of a healthy run of ``kind`` (learning rates that train it well)."""
    opt = rng.choice({"gan": ["adam"], "vae": ["adam", "adamw"], "simclr": ["adam", "adamw", "sgd_momentum"],
                      "triplet": ["sgd_momentum", "adam"], "distill": ["adam", "sgd_momentum"],
                      "finetune": ["adam", "sgd_momentum", "adamw"], "curriculum": ["adam", "adamw"],
                      "mixup": ["adam", "adamw", "sgd_momentum"], "weighted": ["adam", "adamw", "sgd_momentum"],
                      "multitask": ["adam", "adamw", "sgd_momentum"], "padded": ["adam", "adamw"],
                      "short": ["adam", "sgd_momentum"]}[kind])
    lr = {"adam": 2e-3, "adamw": 2e-3, "sgd_momentum": 0.05}[opt] * math.exp(rng.uniform(-0.4, 0.4))
    if kind == "padded":
        lr *= 3  # a GRU language model
    elif kind == "multitask" and opt == "sgd_momentum":
        lr *= 0.6  # two losses add their gradients
    elif kind == "short":
        lr *= 10  # a short run is tuned hotter
    loss = {"gan": rng.choice(["bce_logits", "bce_sigmoid", "wasserstein"]),
            "vae": rng.choice(["bce", "mse"]), "distill": rng.choice(["kl_module", "kl_fn"]),
            "simclr": rng.choice(["ntxent", "ntxent_learned"]), "triplet": rng.choice(["module", "fn"]),
            "weighted": rng.choice(["class_weight_module", "class_weight_fn", "sample_weight"]),
            "multitask": rng.choice(["sum", "sum_modules"]), "short": rng.choice(["linear", "mlp"]),
            "padded": rng.choice(["ignore_default", "ignore_pad_module", "ignore_pad_fn"]),
            }.get(kind, "ce")
    if kind == "gan" and loss == "wasserstein":
        opt, lr = "rmsprop", 5e-4
    steps = {"curriculum": 100 * rng.choice([3, 4]), "vae": rng.choice([400, 600]),
             "simclr": rng.choice([200, 300]), "short": rng.choice([8, 12, 20, 25]),
             "padded": rng.choice([80, 120]), "weighted": rng.choice([60, 100, 150]),
             "multitask": rng.choice([60, 100, 150])}.get(kind, rng.choice([100, 200, 300]))
    more = kind in ("weighted", "multitask", "padded", "short")
    return dict(float64=kind == "multitask" and rng.random() < 0.3,recipe=kind, data=kind, model=kind, optimizer=opt, lr=lr, loss=loss, steps=steps,
                weight_decay=0.01 if opt == "adamw" else 0.0, width=rng.choice([32, 64]),
                act=rng.choice(["relu", "gelu", "leaky_relu", "tanh"]), norm=rng.choice(["none", "bn"]),
                batch_size=rng.choice([32, 64, 128]), loader=rng.choice(["dataloader", "manual"]),
                zero_grad=rng.choice(["before", "after"]), eval_every=rng.choice([0, steps // 4]),
                schedule=rng.choice(["none", "warmup", "cosine", "warmup_restarts"] if more else
                                    ["none", "warmup", "cosine"]))


# ---------------------------------------------------------------------------------------------- shared

def _mlp(d_in: int, d_out: int, width: int, act: str, norm: str = "none", out: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, width)]
    if norm == "bn":
        layers.append(nn.BatchNorm1d(width))
    layers += [ACTIVATIONS[act](), nn.Linear(width, d_out)]
    if out is not None:
        layers.append(out)
    return nn.Sequential(*layers)


class _Loop:
    """What every recipe loop shares: optimizers, zero_grad placement, schedules, mutations."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def optimizer(self, params: Any, lr_scale: float = 1.0) -> torch.optim.Optimizer:
        c = self.cfg
        params = list(params)
        if c.freeze_all:
            for p in params:
                p.requires_grad_(False)
        lr = c.lr * lr_scale
        if c.optimizer == "sgd_momentum":
            return torch.optim.SGD(params, lr=lr, momentum=c.momentum, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=c.weight_decay, eps=c.adam_eps)
        if c.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, weight_decay=c.weight_decay)
        betas = (0.5, 0.999) if c.recipe == "gan" else (0.9, 0.999)
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=c.weight_decay, eps=c.adam_eps)

    def scheduler(self, opt: torch.optim.Optimizer) -> Any:
        s, n = self.cfg.schedule, self.cfg.steps
        if s == "warmup":
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / max(1, n // 10)))
        if s == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n)
        if s == "warmup_restarts":
            from benchmarks.runzoo.recipes_more import warmup_restarts

            return warmup_restarts(opt, n)
        return None

    def update(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter],
               sched: Any = None) -> None:
        """zero_grad before the backward or after the step, as the config says (or never: a mutant)."""
        c = self.cfg
        if c.hand_l2:
            loss = loss + c.hand_l2 * sum(p.pow(2).sum() for p in params)
        if c.zero_grad == "before" and not c.skip_zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        if c.zero_grad == "after" and not c.skip_zero_grad:
            opt.zero_grad()
        if sched is not None:
            sched.step()

    def batches(self, x: torch.Tensor, *rest: torch.Tensor) -> Any:
        """Endless shuffled mini-batches, from a DataLoader or sliced by hand."""
        g = torch.Generator().manual_seed(self.cfg.seed + 2)
        bs = min(self.cfg.batch_size, len(x))
        if self.cfg.loader == "dataloader":
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, *rest), batch_size=bs,
                                                 shuffle=True, generator=g, drop_last=True)
            while True:
                yield from loader
        while True:
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x) - bs + 1, bs):
                idx = perm[i:i + bs]
                yield (x[idx], *(r[idx] for r in rest))


def _no_grad_eval(models: list[nn.Module], fn: Callable[[], float]) -> float:
    was = [(sub, sub.training) for m in models for sub in m.modules()]  # (a frozen part stays in eval)
    for m in models:
        m.eval()
    try:
        with torch.no_grad():
            value = fn()
        return value if math.isfinite(value) else math.inf
    except Exception:
        return math.inf
    finally:
        for sub, w in was:
            sub.training = w


# ---------------------------------------------------------------------------------------------- recipes

def _gan(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    center = torch.randn(2, generator=g) * 2
    mix = torch.tensor([[1.0, 0.0], [0.6, 0.5]])

    def real(n: int) -> torch.Tensor:
        return center + torch.randn(n, 2) @ mix.T

    z_dim, w = 4, cfg.width
    G = _mlp(z_dim, 2, w, "relu", cfg.norm)
    sigmoid = cfg.loss == "bce_sigmoid"
    D = _mlp(2, 1, w, "leaky_relu", out=nn.Sigmoid() if sigmoid else None)
    opt_g, opt_d = L.optimizer(G.parameters()), L.optimizer(D.parameters())
    crit: nn.Module = nn.BCELoss() if sigmoid else nn.BCEWithLogitsLoss()
    bs = cfg.batch_size
    fixed_z = torch.randn(1000, z_dim, generator=g)
    held_out = center + torch.randn(1000, 2, generator=g) @ mix.T

    def train() -> int:
        ones, zeros = torch.ones(bs, 1), torch.zeros(bs, 1)
        for step in range(cfg.steps):
            if cfg.loss == "wasserstein":
                for _ in range(3):
                    loss_d = D(G(torch.randn(bs, z_dim)).detach()).mean() - D(real(bs)).mean()
                    L.update(opt_d, loss_d, list(D.parameters()))
                    with torch.no_grad():
                        for p in D.parameters():
                            p.clamp_(-0.1, 0.1)
                loss_g = -D(G(torch.randn(bs, z_dim))).mean()
                L.update(opt_g, loss_g, list(G.parameters()))
            else:
                fake = G(torch.randn(bs, z_dim))
                loss_d = crit(D(real(bs)), ones) + crit(D(fake.detach()), zeros)
                L.update(opt_d, loss_d, list(D.parameters()))
                L.update(opt_g, crit(D(fake), ones), list(G.parameters()))
            if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
                with torch.no_grad():  # look at samples, in train mode as GAN scripts do
                    G(torch.randn(256, z_dim))
        return cfg.steps

    def quality() -> float:
        def dist() -> float:
            s = G(fixed_z)
            return float((s.mean(0) - held_out.mean(0)).norm() + (s.std(0) - held_out.std(0)).abs().sum())
        return _no_grad_eval([G], dist)

    return Recipe(train, quality)


def _vae(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    data = make_data("autoencode", cfg.seed)
    d, latent, w = data.in_features, 4, cfg.width

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(d, w), ACTIVATIONS[cfg.act]())
            self.mu, self.logvar = nn.Linear(w, latent), nn.Linear(w, latent)
            self.dec = nn.Sequential(nn.Linear(latent, w), ACTIVATIONS[cfg.act](), nn.Linear(w, d))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            h = self.enc(x)
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
            return torch.sigmoid(self.dec(z)), mu, logvar

    model = VAE()
    opt = L.optimizer(model.parameters())
    sched = L.scheduler(opt)
    params = list(model.parameters())

    def train() -> int:
        batches = L.batches(data.x_train)
        for _step in range(cfg.steps):
            (x,) = next(batches)
            recon, mu, logvar = model(x)
            if cfg.loss == "bce":
                rec = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
            else:
                rec = F.mse_loss(recon, x, reduction="sum") / len(x)
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
            L.update(opt, rec + kld, params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(F.mse_loss(model(data.x_eval)[0], data.x_eval))))


def _nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / t
    n = len(z1)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def _simclr(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    data = make_data("blobs", cfg.seed)
    enc = _mlp(data.in_features, 32, cfg.width, cfg.act, cfg.norm)
    head = nn.Sequential(nn.ReLU(), nn.Linear(32, 16))
    log_t = nn.Parameter(torch.tensor(math.log(0.2)))
    learned = cfg.loss == "ntxent_learned"
    params = [*enc.parameters(), *head.parameters(), *([log_t] if learned else [])]
    opt = L.optimizer(params)
    sched = L.scheduler(opt)
    g = torch.Generator().manual_seed(cfg.seed + 5)
    noise = (0.3 * torch.randn(len(data.x_eval), data.in_features, generator=g),
             0.3 * torch.randn(len(data.x_eval), data.in_features, generator=g))

    def train() -> int:
        batches = L.batches(data.x_train)
        for _step in range(cfg.steps):
            (x,) = next(batches)
            t = log_t.exp() if learned else 0.2
            loss = _nt_xent(head(enc(x + 0.3 * torch.randn_like(x))), head(enc(x + 0.3 * torch.randn_like(x))), t)
            L.update(opt, loss, params, sched)
        return cfg.steps

    x = data.x_eval
    return Recipe(train, lambda: _no_grad_eval([enc, head], lambda: float(
        _nt_xent(head(enc(x + noise[0])), head(enc(x + noise[1])), 0.2))))


def _triplet(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    data = make_data("blobs", cfg.seed)
    net = _mlp(data.in_features, 16, cfg.width, cfg.act, cfg.norm)
    opt = L.optimizer(net.parameters())
    sched = L.scheduler(opt)
    params = list(net.parameters())
    crit = nn.TripletMarginLoss(margin=1.0)

    def triplets(x: torch.Tensor, y: torch.Tensor, g: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """For each anchor: a positive of its class and a negative of another (random picks)."""
        same = y[:, None] == y[None, :]
        r = torch.rand(len(y), len(y), generator=g)
        pos = torch.where(same, r, -1.0).argmax(1)
        neg = torch.where(~same, r, -1.0).argmax(1)
        return x, x[pos], x[neg]

    def loss_of(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if cfg.loss == "module":
            return crit(net(a), net(p), net(n))
        return F.triplet_margin_loss(net(a), net(p), net(n), margin=1.0)

    held = triplets(data.x_eval, data.y_eval, torch.Generator().manual_seed(cfg.seed + 7))

    def train() -> int:
        batches = L.batches(data.x_train, data.y_train)
        for _step in range(cfg.steps):
            x, y = next(batches)
            L.update(opt, loss_of(*triplets(x, y)), params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([net], lambda: float(crit(net(held[0]), net(held[1]), net(held[2])))))


def _pretrained(cfg: Any, data: Any, model: nn.Module, y: torch.Tensor, steps: int = 150) -> None:
    """Train ``model`` before the watched run (a teacher or backbone loaded from a checkpoint)."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(cfg.seed + 11)
    for _ in range(steps):
        idx = torch.randint(0, len(data.x_train), (64,), generator=g)
        loss = F.cross_entropy(model(data.x_train[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def _distill(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    data = make_data("blobs", cfg.seed)
    k = data.n_classes
    teacher = _mlp(data.in_features, k, 256, "relu")
    _pretrained(cfg, data, teacher, data.y_train)
    teacher.eval()
    student = _mlp(data.in_features, k, 16, cfg.act, cfg.norm)
    opt = L.optimizer(student.parameters())
    sched = L.scheduler(opt)
    params = list(student.parameters())
    T, alpha = 4.0, 0.7 if cfg.seed % 3 else 1.0
    kl = nn.KLDivLoss(reduction="batchmean")

    def train() -> int:
        batches = L.batches(data.x_train, data.y_train)
        for _step in range(cfg.steps):
            x, y = next(batches)
            with torch.no_grad():
                t_logits = teacher(x)
            s_logits = student(x)
            if cfg.loss == "kl_module":
                soft = kl(F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1)) * T * T
            else:
                soft = F.kl_div(F.log_softmax(s_logits / T, -1), F.log_softmax(t_logits / T, -1),
                                reduction="batchmean", log_target=True) * T ** 2
            loss = alpha * soft + (1 - alpha) * F.cross_entropy(s_logits, y) if alpha < 1 else soft
            L.update(opt, loss, params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([student], lambda: float(F.cross_entropy(student(data.x_eval), data.y_eval))))


def _finetune(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    data = make_data("digits", cfg.seed)
    backbone = nn.Sequential(nn.Flatten(), *_mlp(64, cfg.width, 128, "relu", cfg.norm), ACTIVATIONS[cfg.act]())
    _pretrained(cfg, data, nn.Sequential(backbone, nn.Linear(cfg.width, 10)), data.y_train)
    for p in backbone.parameters():
        p.requires_grad_(False)
    backbone.eval()  # frozen batch-norm statistics
    head = nn.Linear(cfg.width, 2)
    model = nn.Sequential(backbone, head)
    y_train, y_eval = (data.y_train % 2), (data.y_eval % 2)  # the new task: odd or even digits
    trainable = [p for p in model.parameters() if p.requires_grad] if cfg.seed % 2 else list(head.parameters())
    opt = L.optimizer(trainable)
    sched = L.scheduler(opt)

    def train() -> int:
        batches = L.batches(data.x_train, y_train)
        for step in range(cfg.steps):
            x, y = next(batches)
            head.train()
            L.update(opt, F.cross_entropy(model(x), y), trainable, sched)
            if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
                head.eval()
                with torch.no_grad():
                    F.cross_entropy(model(data.x_eval), y_eval)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(F.cross_entropy(model(data.x_eval), y_eval))))


def _curriculum(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    d = 4
    w = torch.randn(d, 1, generator=g)
    model = _mlp(d, 1, cfg.width, cfg.act if cfg.act != "relu" else "tanh")
    opt = L.optimizer(model.parameters())
    params = list(model.parameters())
    stages = cfg.steps // 100
    x_eval = torch.randn(1000, d, generator=g) * stages
    y_eval = torch.sin(x_eval @ w)

    def train() -> int:
        for stage in range(stages):  # easy examples first: wider inputs and noisier targets each stage
            spread, noise = 0.5 + stage, 0.3 * stage
            for _ in range(100):
                x = torch.randn(cfg.batch_size, d) * spread
                y = torch.sin(x @ w) + noise * torch.randn(cfg.batch_size, 1)
                L.update(opt, F.mse_loss(model(x), y), params)
        return stages * 100

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(F.mse_loss(model(x_eval), y_eval))))


def _mixup(cfg: Any) -> Recipe:
    L = _Loop(cfg)
    data = make_data("blobs", cfg.seed)
    k = data.n_classes
    model = _mlp(data.in_features, k, cfg.width, cfg.act, cfg.norm)
    opt = L.optimizer(model.parameters())
    sched = L.scheduler(opt)
    params = list(model.parameters())
    beta = torch.distributions.Beta(0.4, 0.4)

    def train() -> int:
        batches = L.batches(data.x_train, data.y_train)
        for _step in range(cfg.steps):
            x, y = next(batches)
            lam = float(beta.sample())
            perm = torch.randperm(len(x))
            onehot = F.one_hot(y, k).float()
            soft = lam * onehot + (1 - lam) * onehot[perm]
            L.update(opt, F.cross_entropy(model(lam * x + (1 - lam) * x[perm]), soft), params, sched)
        return cfg.steps

    return Recipe(train, lambda: _no_grad_eval([model], lambda: float(F.cross_entropy(model(data.x_eval), data.y_eval))))


_BUILDERS: dict[str, Callable[[Any], Recipe]] = {
    "gan": _gan, "vae": _vae, "simclr": _simclr, "triplet": _triplet, "distill": _distill,
    "finetune": _finetune, "curriculum": _curriculum, "mixup": _mixup,
}


def build_recipe(cfg: Any) -> Recipe:
    """The recipe ``cfg.recipe`` names, built (and its teacher or backbone pre-trained) for ``cfg``."""
    from benchmarks.runzoo.recipes_more import MORE_BUILDERS

    builders = {**_BUILDERS, **MORE_BUILDERS}
    if cfg.recipe not in builders:
        raise ValueError(f"unknown recipe {cfg.recipe!r}; known: {', '.join(RECIPES)}")
    return builders[cfg.recipe](cfg)
