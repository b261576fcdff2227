"""The field guide's first model for the data at hand ("start simple"), with the right init.

| input       | first model                                                     | init            |
|-------------|-----------------------------------------------------------------|-----------------|
| images      | LeNet-like: 2 x (conv 5x5, ReLU, max-pool), FC 120, FC 84, out  | He normal       |
| sequences   | one-hidden-layer LSTM (embedding first for token ids), FC out   | Glorot normal   |
| otherwise   | fully connected, one hidden layer, ReLU                         | He normal       |
| several     | one encoder per input to a 32-d vector, concatenate, FC, out    | as above        |

:func:`input_kind` decides which from an example batch. Models are built from a seed
inside :func:`torch.random.fork_rng`, so building one never moves the user's RNG.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["LeNet", "MultiInput", "OneLayerLSTM", "OneLayerMLP", "Reshape", "Reshaped", "baseline", "describe", "input_kind"]


def input_kind(x: Any) -> str:
    """``images``, ``sequences``, ``tokens`` (integer sequences), ``tabular`` or ``several``."""
    if isinstance(x, (tuple, list)):
        if len(x) == 1:
            return input_kind(x[0])
        return "several"
    if isinstance(x, dict):
        return "several" if len(x) > 1 else input_kind(next(iter(x.values())))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor input, got {type(x).__name__}")
    if not x.is_floating_point():
        return "tokens" if x.dim() == 2 else "tabular"
    if x.dim() == 4:
        return "images"
    if x.dim() == 3:
        # (N, H, W) grey images are square-ish and at least 8 px; (N, T, F) is a sequence
        h, w = x.shape[1], x.shape[2]
        return "images" if h >= 8 and w >= 8 and 0.5 <= h / w <= 2 else "sequences"
    return "tabular"


def _he(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class LeNet(nn.Module):
    """LeNet-like conv net for (N, C, H, W) or (N, H, W) images."""

    def __init__(self, channels: int, height: int, width: int, outputs: int) -> None:
        super().__init__()
        pool = 2 if min(height, width) >= 8 else 1
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(pool),
            nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(pool),
        )
        flat = 16 * (height // pool // pool) * (width // pool // pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84),
                                  nn.ReLU(), nn.Linear(84, outputs))
        _he(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.head(self.features(x.float()))


class OneLayerLSTM(nn.Module):
    """One LSTM layer (tanh inside, Glorot init) over (N, T, F) floats or (N, T) token ids."""

    def __init__(self, features: int, outputs: int, hidden: int = 64, vocab: int | None = None) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 32) if vocab else None
        self.lstm = nn.LSTM(32 if vocab else features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)
        for name, p in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_normal_(p)
            else:
                nn.init.zeros_(p)
        nn.init.xavier_normal_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x.long()) if self.embed is not None else x.float()
        if x.dim() == 2:
            x = x.unsqueeze(-1)
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class OneLayerMLP(nn.Module):
    """Fully connected, one hidden ReLU layer, He init; flattens its input."""

    def __init__(self, features: int, outputs: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, outputs))
        _he(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


class MultiInput(nn.Module):
    """One encoder per input to a low-dim vector, concatenated, then FC layers to the output."""

    def __init__(self, encoders: Sequence[nn.Module], outputs: int, code: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(code * len(encoders), hidden), nn.ReLU(),
                                  nn.Linear(hidden, outputs))
        _he(self.head)

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor) -> torch.Tensor:
        xs = list(inputs) + list(named.values())
        return self.head(torch.cat([enc(x) for enc, x in zip(self.encoders, xs)], dim=1))


def _single(x: torch.Tensor, outputs: int) -> nn.Module:
    kind = input_kind(x)
    if kind == "images":
        c, h, w = (1, *x.shape[1:]) if x.dim() == 3 else tuple(x.shape[1:])
        return LeNet(int(c), int(h), int(w), outputs)
    if kind == "sequences":
        return OneLayerLSTM(int(x.shape[2]), outputs)
    if kind == "tokens":
        return OneLayerLSTM(1, outputs, vocab=int(x.max()) + 1)
    return OneLayerMLP(max(1, math.prod(x.shape[1:])), outputs)


def baseline(example_input: Any, outputs: int | Sequence[int], *, seed: int = 0) -> nn.Module:
    """The guide's first model for inputs like ``example_input`` (a batch), ``outputs`` units.

    ``outputs`` may be a shape (e.g. the user's model output shape without the batch
    dimension); the model's output is reshaped to it.
    """
    shape = (outputs,) if isinstance(outputs, int) else tuple(int(o) for o in outputs)
    n_out = max(1, math.prod(shape))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(example_input, dict):
            example_input = tuple(example_input.values())
        if input_kind(example_input) == "several":
            model: nn.Module = MultiInput([_single(x, 32) for x in example_input], n_out)
        else:
            x = example_input[0] if isinstance(example_input, (tuple, list)) else example_input
            model = _single(x, n_out)
    if shape == (n_out,):
        return model
    return Reshaped(model, shape)


class Reshape(nn.Module):
    """Reshape ``(N, prod(shape))`` to ``(N, *shape)`` (``shape`` may be ``()``)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Reshaped(nn.Module):
    """``model`` with its output reshaped to ``(N, *shape)``; takes the same inputs."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.reshape = Reshape(shape)

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor) -> torch.Tensor:
        return self.reshape(self.model(*inputs, **named))


def describe(model: nn.Module) -> str:
    """One line: the baseline's family and size."""
    inner = model.model if isinstance(model, Reshaped) else model
    params = sum(p.numel() for p in model.parameters())
    names = {LeNet: "LeNet-like conv net (He init)", OneLayerLSTM: "one-layer LSTM (Glorot init)",
             OneLayerMLP: "one-hidden-layer MLP (ReLU, He init)",
             MultiInput: "one encoder per input + concatenate + FC"}
    return f"{names.get(type(inner), type(inner).__name__)}, {params:,} parameters"
