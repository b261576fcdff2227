"""Search spaces: declared in the experiment file, or derived from the defaults.

Declare ranges with a module-level ``SPACE`` dict in the experiment file::

    SPACE = {"lr": nndoctor.loguniform(1e-5, 1e-1), "hidden": nndoctor.choice([64, 128, 256])}

Without a declaration, nndoctor derives a space from ``experiment``'s keyword defaults
and the field guide's sensitivity table: learning rate first (log scale, /30..x30 around
the default), then width, depth, weight decay, dropout and batch size when they are
arguments. Other arguments stay fixed at their defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

__all__ = [
    "Choice",
    "Dimension",
    "IntUniform",
    "LogUniform",
    "Uniform",
    "choice",
    "default_space",
    "describe",
    "intuniform",
    "loguniform",
    "narrow",
    "suggest",
    "uniform",
]


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high < math.inf):
            raise ValueError(f"loguniform needs 0 < low < high (finite), got ({self.low!r}, {self.high!r})")


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def __post_init__(self) -> None:
        if not -math.inf < self.low < self.high < math.inf:
            raise ValueError(f"uniform needs low < high (finite), got ({self.low!r}, {self.high!r})")


@dataclass(frozen=True)
class IntUniform:
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low < 1):
            raise ValueError(f"intuniform needs low < high (and low >= 1 with log), got ({self.low!r}, {self.high!r})")


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.options) < 1:
            raise ValueError("choice needs at least one option")


Dimension = Union[LogUniform, Uniform, IntUniform, Choice]


def loguniform(low: float, high: float) -> LogUniform:
    return LogUniform(float(low), float(high))


def uniform(low: float, high: float) -> Uniform:
    return Uniform(float(low), float(high))


def intuniform(low: int, high: int, log: bool = False) -> IntUniform:
    return IntUniform(int(low), int(high), log)


def choice(options: Sequence[Any]) -> Choice:
    return Choice(tuple(options))


#: field guide sensitivity: high > medium > low; names we recognise for each knob
_LR = ("lr", "learning_rate", "init_lr")
_WIDTH = ("hidden", "hidden_size", "width", "units", "channels", "d_model", "embed_dim", "n_units")
_DEPTH = ("layers", "depth", "num_layers", "n_layers")
_WD = ("weight_decay", "wd", "l2")
_DROPOUT = ("dropout", "p_drop", "drop")
_BATCH = ("batch_size", "bs")


def default_space(defaults: Mapping[str, Any]) -> tuple[dict[str, Dimension], list[str]]:
    """A space from the hyperparameter defaults, and one line per choice made (to print)."""
    space: dict[str, Dimension] = {}
    why: list[str] = []
    for name, value in defaults.items():
        if isinstance(value, bool) or value is None:
            continue
        if name in _LR and isinstance(value, (int, float)) and value > 0:
            space[name] = loguniform(value / 30, min(value * 30, 10.0))
            why.append(f"{name}: log-uniform {value / 30:.2g}..{min(value * 30, 10.0):.2g} around {value:g} "
                       "(sensitivity high: learning rate first)")
        elif name in _WIDTH and isinstance(value, int) and value > 1:
            space[name] = intuniform(max(2, value // 4), value * 4, log=True)
            why.append(f"{name}: integers {max(2, value // 4)}..{value * 4}, log scale (sensitivity high: layer size)")
        elif name in _DEPTH and isinstance(value, int) and value >= 1:
            space[name] = intuniform(max(1, value - 2), value + 2) if value + 2 > max(1, value - 2) else choice([value])
            why.append(f"{name}: integers {max(1, value - 2)}..{value + 2} (sensitivity medium: depth)")
        elif name in _WD and isinstance(value, (int, float)):
            low, high = 1e-6, 1e-1
            space[name] = loguniform(low, high)
            why.append(f"{name}: log-uniform {low:g}..{high:g} (sensitivity medium: regularisation weight)")
        elif name in _DROPOUT and isinstance(value, (int, float)) and 0 <= value < 1:
            space[name] = uniform(0.0, 0.6)
            why.append(f"{name}: uniform 0..0.6 (sensitivity medium: regularisation)")
        elif name in _BATCH and isinstance(value, int) and value > 1:
            opts = sorted({max(1, value // 4), max(1, value // 2), value, value * 2, value * 4})
            space[name] = choice(opts)
            why.append(f"{name}: one of {opts} (sensitivity low: batch size)")
    return space, why


def suggest(trial: Any, name: str, dim: Dimension) -> Any:
    """Ask an Optuna trial for a value of ``dim``."""
    if isinstance(dim, LogUniform):
        return trial.suggest_float(name, dim.low, dim.high, log=True)
    if isinstance(dim, Uniform):
        return trial.suggest_float(name, dim.low, dim.high)
    if isinstance(dim, IntUniform):
        return trial.suggest_int(name, dim.low, dim.high, log=dim.log)
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, list(dim.options))
    raise TypeError(f"unknown search dimension {dim!r} for {name!r}")


def narrow(dim: Dimension, values: Sequence[Any], *, margin: float = 0.25) -> Dimension:
    """A smaller range around the values the best trials used (coarse-to-fine).

    Numeric ranges shrink to the best values' span plus ``margin`` of the current range
    on each side (in log space for log dimensions); choices keep the options used.
    """
    vals = [v for v in values if v is not None]
    if not vals:
        return dim
    if isinstance(dim, Choice):
        kept = tuple(o for o in dim.options if o in vals)
        return Choice(kept) if kept else dim
    log = isinstance(dim, LogUniform) or (isinstance(dim, IntUniform) and dim.log)
    tf = (lambda x: math.log(x)) if log else (lambda x: float(x))
    inv = (lambda x: math.exp(x)) if log else (lambda x: x)
    lo_d, hi_d = tf(dim.low), tf(dim.high)
    span = (hi_d - lo_d) * margin
    lo = max(lo_d, tf(min(vals)) - span)
    hi = min(hi_d, tf(max(vals)) + span)
    if isinstance(dim, IntUniform):
        a, b = int(math.floor(inv(lo))), int(math.ceil(inv(hi)))
        a, b = max(dim.low, a), min(dim.high, b)
        return IntUniform(a, b, dim.log) if a < b else Choice((a,))
    low, high = inv(lo), inv(hi)
    if not low < high:
        return dim
    return LogUniform(low, high) if isinstance(dim, LogUniform) else Uniform(low, high)


def describe(dim: Dimension) -> str:
    if isinstance(dim, LogUniform):
        return f"log-uniform {dim.low:.3g}..{dim.high:.3g}"
    if isinstance(dim, Uniform):
        return f"uniform {dim.low:.3g}..{dim.high:.3g}"
    if isinstance(dim, IntUniform):
        return f"int {dim.low}..{dim.high}{' (log)' if dim.log else ''}"
    return f"one of {list(dim.options)}"
