"""The experiment file: one function that builds everything the guided workflow needs.

An experiment file defines ``experiment(**hyperparameters) -> nndoctor.Experiment``. The
keyword arguments of ``experiment`` with their defaults are the hyperparameters (``--set
name=value`` and the tuner override them). The guided commands (``start``, ``overfit``,
``baseline``, ``lr-find``) load the file, call it and drive training themselves.

Batches are read the way most loaders yield them: ``(inputs, target)``, ``(x1, x2, ...,
target)`` (several inputs) or a dict with a ``target``/``label``/``y`` key. Anything else
needs a custom ``step(model, batch) -> loss``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

__all__ = [
    "Experiment",
    "ExperimentError",
    "Batch",
    "batch_size_of",
    "compute_loss",
    "first_batch",
    "forward",
    "hyperparameters_of",
    "load_experiment",
    "parse_sets",
    "preserved",
    "split_batch",
    "to_device",
]

_TARGET_KEYS = ("target", "targets", "label", "labels", "y")


class ExperimentError(Exception):
    """The experiment file or what it returns cannot be used (one line, for the user)."""


@dataclass
class Batch:
    """One batch split into the model's inputs and the target."""

    inputs: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: Any


@dataclass
class Experiment:
    """Everything one training run needs; ``train`` is the only required data.

    ``loss(output, target)`` is any callable (``nn.CrossEntropyLoss()``, ``F.mse_loss``...).
    ``step(model, batch) -> loss`` replaces the default ``loss(model(inputs), target)`` for
    models that need more. Without ``optimizer`` the guide's default, Adam lr 3e-4, is used.
    """

    model: nn.Module
    loss: Callable[..., torch.Tensor] | None = None
    optimizer: torch.optim.Optimizer | None = None
    train: Iterable[Any] | None = None
    train_val: Iterable[Any] | None = None
    test_val: Iterable[Any] | None = None
    test: Iterable[Any] | None = None
    step: Callable[[nn.Module, Any], torch.Tensor] | None = None
    name: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise ExperimentError(f"Experiment(model=...) must be a torch.nn.Module, got {type(self.model).__name__}")
        if self.train is None:
            raise ExperimentError("Experiment(train=...) is required: give a DataLoader or an iterable of batches")
        if self.loss is None and self.step is None:
            raise ExperimentError("Experiment needs loss=... (e.g. torch.nn.CrossEntropyLoss()) or step=...")
        for what in ("loss", "step"):
            value = getattr(self, what)
            if value is not None and not callable(value):
                raise ExperimentError(f"Experiment({what}=...) must be callable, got {type(value).__name__}")
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=3e-4)
        elif not isinstance(self.optimizer, torch.optim.Optimizer):
            raise ExperimentError(
                f"Experiment(optimizer=...) must be a torch.optim.Optimizer, got {type(self.optimizer).__name__}")

    @property
    def device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")


# ---------------------------------------------------------------------------------- loading
def parse_sets(items: Iterable[str] | None) -> dict[str, str]:
    """``["lr=0.01", "hidden=64"]`` -> ``{"lr": "0.01", "hidden": "64"}``."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ExperimentError(f"--set expects name=value, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def hyperparameters_of(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments of ``experiment`` that have defaults."""
    params = inspect.signature(fn).parameters
    return {n: p.default for n, p in params.items()
            if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD}


def _convert(name: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(float(text)) if float(text).is_integer() else int(text)
        if isinstance(default, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError:
        raise ExperimentError(
            f"--set {name}={text}: expected a {type(default).__name__} like the default {default!r}") from None
    if default is None:
        for cast in (int, float):
            try:
                return cast(text)
            except ValueError:
                pass
    return text


def load_experiment(path: str, overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Import ``path``, call its ``experiment(**overrides)`` and check what comes back."""
    if not os.path.exists(path):
        raise ExperimentError(f"experiment file {path!r} does not exist")
    if os.path.isdir(path) or not path.endswith(".py"):
        raise ExperimentError(f"{path!r} is not a Python file: give an experiment file such as my_experiment.py")
    path = os.path.abspath(path)
    mod_name = "_nndoctor_experiment_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - defensive
        raise ExperimentError(f"cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ExperimentError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise ExperimentError(f"importing {os.path.basename(path)} failed: {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(os.path.dirname(path))
    fn = getattr(module, "experiment", None)
    if fn is None or not callable(fn):
        raise ExperimentError(
            f"{os.path.basename(path)} defines no function experiment(...) -> nndoctor.Experiment")
    defaults = hyperparameters_of(fn)
    kwargs: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name not in defaults:
            known = ", ".join(defaults) or "none"
            raise ExperimentError(f"--set {name}: experiment() has no hyperparameter {name!r} (known: {known})")
        kwargs[name] = _convert(name, value, defaults[name]) if isinstance(value, str) else value
    try:
        exp = fn(**kwargs)
    except ExperimentError:
        raise
    except Exception as exc:
        raise ExperimentError(f"experiment() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(exp, Experiment):
        raise ExperimentError(
            f"experiment() must return nndoctor.Experiment(...), got {type(exp).__name__}")
    exp.hyperparameters = {**defaults, **kwargs}
    exp.name = exp.name or os.path.splitext(os.path.basename(path))[0]
    check_batches(exp)
    return exp


# ---------------------------------------------------------------------------------- batches
def split_batch(batch: Any) -> Batch:
    """Split one batch into inputs and target (see the module docstring for the forms)."""
    if isinstance(batch, Mapping):
        key = next((k for k in _TARGET_KEYS if k in batch), None)
        if key is None:
            raise ExperimentError(
                f"a batch is a dict with keys {sorted(batch)} but none of {list(_TARGET_KEYS)}: "
                "name the target 'target' or give Experiment(step=...)")
        kwargs = {k: v for k, v in batch.items() if k != key}
        return Batch(inputs=(), kwargs=kwargs, target=batch[key])
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return Batch(inputs=tuple(batch[:-1]), kwargs={}, target=batch[-1])
    kind = type(batch).__name__ + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
    raise ExperimentError(
        f"a batch is a {kind}: loaders must yield (inputs, target), (x1, ..., target) or a dict "
        "with a 'target' key; otherwise give Experiment(step=...)")


def to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device) for o in obj)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def forward(model: nn.Module, batch: Batch) -> Any:
    return model(*batch.inputs, **batch.kwargs)


def compute_loss(exp: Experiment, batch: Any, model: nn.Module | None = None) -> torch.Tensor:
    """The training loss of one raw batch (the custom ``step`` if given)."""
    model = model or exp.model
    batch = to_device(batch, exp.device)
    if exp.step is not None:
        loss = exp.step(model, batch)
    else:
        b = split_batch(batch)
        assert exp.loss is not None
        loss = exp.loss(forward(model, b), b.target)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = type(loss).__name__ if not isinstance(loss, torch.Tensor) else f"tensor of shape {tuple(loss.shape)}"
        raise ExperimentError(f"the loss must be one number (a 0-d tensor), got a {what}")
    return loss.reshape(())


def first_batch(loader: Iterable[Any], what: str = "train") -> Any:
    try:
        return next(iter(loader))
    except StopIteration:
        raise ExperimentError(f"Experiment({what}=...) yields no batches (empty dataset?)") from None
    except TypeError:
        raise ExperimentError(f"Experiment({what}=...) is not iterable: give a DataLoader") from None


def batch_size_of(batch: Any) -> int:
    for t in _tensors(batch):
        return int(t.shape[0]) if t.dim() else 1
    return 0


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, Mapping):
        for o in obj.values():
            yield from _tensors(o)


def check_batches(exp: Experiment) -> None:
    """Read one batch of each loader and run the model once: one clear line if unusable."""
    with torch.random.fork_rng(devices=[]):
        _check_batches(exp)


def _check_batches(exp: Experiment) -> None:
    for what in ("train", "train_val", "test_val", "test"):
        loader = getattr(exp, what)
        if loader is None:
            continue
        batch = first_batch(loader, what)
        if exp.step is None:
            b = split_batch(batch)
            if not any(True for _ in _tensors((b.inputs, b.kwargs))):
                raise ExperimentError(f"the first {what} batch holds no tensor inputs")
    with preserved(exp.model, None), torch.no_grad():
        try:
            compute_loss(exp, first_batch(exp.train))
        except ExperimentError:
            raise
        except Exception as exc:
            raise ExperimentError(
                f"the loss of the first train batch cannot be computed: {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def preserved(model: nn.Module, optimizer: torch.optim.Optimizer | None, *, rng: bool = True) -> Iterator[None]:
    """Restore weights, buffers, train/eval flags, optimizer state and (``rng``) RNG state on exit."""
    model_state = copy.deepcopy(model.state_dict())
    modes = {m: m.training for m in model.modules()}
    opt_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
    lrs = [g.get("lr") for g in optimizer.param_groups] if optimizer is not None else []
    rng_state = torch.get_rng_state() if rng else None
    cuda_rng = torch.cuda.get_rng_state_all() if rng and torch.cuda.is_available() else None
    try:
        yield
    finally:
        model.load_state_dict(model_state)
        for m, mode in modes.items():
            m.training = mode
        if optimizer is not None and opt_state is not None:
            optimizer.load_state_dict(opt_state)
            for g, lr in zip(optimizer.param_groups, lrs):
                g["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
        model.zero_grad(set_to_none=True)
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
