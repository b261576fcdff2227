"""A zoo run's configuration, and the seeded sampler of healthy configurations.

Every field that a mutation operator changes has a healthy default, so a config sampled
here is a healthy run and ``dataclasses.replace(cfg, ...)`` makes a faulty one.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.runzoo.models import MODELS_FOR

__all__ = ["Config", "sample_config", "sample_recipe"]


@dataclass(frozen=True)
class Config:
    seed: int
    data: str
    model: str
    depth: int = 2
    width: int = 64
    act: str = "relu"
    norm: str = "none"            # none | bn | ln
    dropout: float = 0.0
    optimizer: str = "adam"       # sgd | sgd_momentum | adam | adamw | rmsprop | adagrad | lbfgs
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "none"        # none | step | cosine | onecycle | warmup | restarts | plateau
    batch_size: int = 64
    steps: int = 150
    loader: str = "dataloader"    # dataloader | manual
    zero_grad: str = "before"     # before | after | model | accumulate
    accumulate: int = 1
    clip: float = 0.0
    eval_every: int = 0
    loss: str = "ce"              # ce | ce_fn | ce_smooth | nll | mse | l1 | huber | bce
    float64: bool = False         # model and data in double precision on purpose
    recipe: str = ""              # a loop of its own (benchmarks/runzoo/recipes.py): gan, vae, simclr...
    # -- what mutation operators change (healthy defaults) --------------------------------
    mutation: str = ""
    softmax_output: bool = False
    skip_zero_grad: bool = False
    freeze_all: bool = False
    label_noise: float = 0.0
    label_shuffle: bool = False
    input_scale: float = 1.0
    input_shift: float = 0.0
    input_float64: bool = False
    init: str = "default"         # default | constant | zeros | huge
    train_in_eval: bool = False
    adam_eps: float = 1e-8
    momentum: float = 0.9
    detach_hidden: bool = False
    flat_target: bool = False
    hand_l2: float = 0.0

    @property
    def half(self) -> str:
        """Calibration half: thresholds may be tuned on ``tune``; ``holdout`` is reported untouched."""
        return "tune" if self.seed % 2 == 0 else "holdout"

    def short(self) -> str:
        bits = [f"#{self.seed}", self.data, self.model, self.optimizer, f"lr={self.lr:.2g}",
                f"{self.steps} steps", f"bs={self.batch_size}"]
        if self.recipe:
            bits[1:3] = [f"recipe {self.recipe}", self.loss]
        if self.schedule != "none":
            bits.append(self.schedule)
        if self.float64:
            bits.append("float64")
        if self.mutation:
            bits.append(f"MUTANT {self.mutation}")
        return " ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# learning-rate ranges that train each kind of model well with each optimizer (log-uniform)
_LR = {
    ("adam", "default"): (1e-3, 4e-3), ("adam", "rnn"): (3e-3, 1e-2), ("adam", "attn"): (5e-4, 2e-3),
    ("adam", "table"): (0.05, 0.2),
    ("sgd_momentum", "default"): (0.02, 0.08), ("sgd_momentum", "table"): (2.0, 8.0),
    ("sgd", "default"): (0.05, 0.2), ("sgd", "table"): (10.0, 40.0),
    ("rmsprop", "default"): (5e-4, 2e-3), ("adagrad", "default"): (0.02, 0.06),
}


#: models whose steps cost the most on one CPU core
_COSTLY = frozenset({"cnn", "lstm", "gru", "rnn", "transformer", "transformer_lm", "gru_lm", "mlp_lm"})


def _family(model: str) -> str:
    if model in ("lstm", "gru", "rnn", "gru_lm"):
        return "rnn"
    if model in ("transformer", "transformer_lm"):
        return "attn"
    if model == "bigram":
        return "table"
    return "default"


def _optimizers_for(model: str, data: str) -> list[str]:
    fam = _family(model)
    if fam == "table":
        return ["adam", "adamw", "sgd", "sgd_momentum"]
    if fam in ("rnn", "attn") or model == "mlp_lm":
        return ["adam", "adamw"]
    opts = ["adam", "adamw", "sgd_momentum", "sgd", "rmsprop", "adagrad"]
    if data in ("regression", "blobs") and model in ("mlp", "mlp_class"):
        opts.append("lbfgs")
    return opts


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    import math

    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def sample_config(seed: int) -> Config:
    """A healthy configuration, the same for the same seed."""
    rng = random.Random(seed * 7919 + 17)
    data = rng.choices(["blobs", "digits", "regression", "sequences", "tokens", "autoencode", "images"],
                       weights=[3, 2, 2, 2, 3, 1, 1])[0]
    model = rng.choice(MODELS_FOR[data])
    optimizer = rng.choice(_optimizers_for(model, data))
    fam = _family(model)
    base = optimizer.replace("adamw", "adam")
    lo, hi = _LR.get((base, fam), _LR.get((base, "default"), (1e-3, 3e-3)))
    act = rng.choices(["relu", "gelu", "tanh", "leaky_relu", "silu", "elu"], weights=[4, 2, 2, 1, 1, 1])[0]
    norm = rng.choices(["none", "bn", "ln"], weights=[3, 1, 1])[0]
    if model == "cnn" and norm == "ln":
        norm = "none"
    if optimizer in ("sgd", "adagrad") and act == "tanh" and model in ("mlp", "mlp_class"):
        act = "relu"  # plain SGD with tanh is slow to start: not a healthy run in 30 steps
    loss = {"lm": "ce", "regression": rng.choice(["mse", "mse", "l1", "huber"]),
            "autoencode": rng.choice(["mse", "bce"])}.get(data if data != "tokens" else "lm",
                                                           rng.choice(["ce", "ce", "ce_fn", "ce_smooth", "nll"]))
    steps = rng.choices([30, 60, 150, 400, 1000], weights=[2, 2, 3, 2, 1])[0]
    if steps <= 60 and fam == "default":
        lo, hi = 3 * lo, 3 * hi  # a short run is tuned hotter
    if model in _COSTLY:
        steps = min(steps, 150)  # keep a zoo run to a few seconds on one core
    batch = rng.choice([16, 32, 64, 128] if model in _COSTLY else [16, 32, 64, 128, 256])
    wd = 0.0
    if optimizer == "adamw":
        wd = rng.choice([0.01, 0.05, 0.1])
    elif rng.random() < 0.25:
        wd = _log_uniform(rng, 1e-5, 1e-3)
    cfg = dict(
        seed=seed, data=data, model=model, depth=rng.choice([1, 2, 2, 3, 4]), width=rng.choice([32, 64, 128]),
        act=act, norm=norm, dropout=rng.choice([0.0, 0.0, 0.1, 0.2]), optimizer=optimizer,
        lr=_log_uniform(rng, lo, hi), weight_decay=wd,
        schedule=rng.choices(["none", "step", "cosine", "onecycle", "warmup", "restarts", "plateau"],
                             weights=[4, 1, 1, 1, 1, 1, 1])[0],
        batch_size=batch, steps=steps, loader=rng.choice(["dataloader", "manual"]),
        zero_grad=rng.choices(["before", "after", "model", "accumulate"], weights=[3, 2, 1, 1])[0],
        clip=rng.choice([0.0, 0.0, 0.0, 1.0]), eval_every=rng.choice([0, max(1, steps // 4)]), loss=loss,
    )
    if cfg["zero_grad"] == "accumulate":
        cfg["accumulate"] = rng.choice([2, 4])
    if optimizer == "lbfgs":
        cfg.update(lr=1.0, steps=rng.choice([15, 30]), schedule="none", zero_grad="before", accumulate=1,
                   clip=0.0, act=rng.choice(["tanh", "relu"]), dropout=0.0, norm="none",
                   float64=rng.random() < 0.5, batch_size=10 ** 6)
    return Config(**cfg)  # type: ignore[arg-type]


def sample_recipe(seed: int) -> Config:
    """A healthy run of one of the recipes (GAN, VAE, contrastive, distillation, fine-tuning,
    curriculum, soft targets, weighted and multi-task losses, padded sequences, short runs), the same for the same seed; recipes take turns by pairs of seeds
    (one of each calibration half)."""
    from benchmarks.runzoo.recipes import RECIPES, recipe_fields

    rng = random.Random(seed * 104729 + 3)
    return Config(seed=seed, **recipe_fields(RECIPES[(seed // 2) % len(RECIPES)], rng))  # type: ignore[arg-type]
