"""Runtime remedies for the data the model is given: inputs normalised twice brought back to a
unit scale, a debug slice of the training set widened to the data set it was cut from, and
half-precision weights trained in float32.
Same contract as :mod:`nndoctor.fix.remedies` (``install(finding, stack)``; the stack undoes it).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.data as tud

from nndoctor.fix.remedies import Remedy, _on_root_calls, _patch, _step_post, _transform_root_inputs

__all__ = ["DATA_REMEDIES", "storage_rows"]

Finding = dict[str, Any]


def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


# -- inputs normalised twice ----------------------------------------------------------------------
def _install_rescale(f: Finding, stack: contextlib.ExitStack) -> None:
    """Inputs whose values are all within 1/255 (a second division by 255) are multiplied by 255
    again; other tiny inputs are divided by the standard deviation of the first training batch
    (one factor for every feature and every later call, so train and test stay comparable)."""
    factor: list[float] = []

    def rescale(x: torch.Tensor) -> torch.Tensor:
        if not factor:
            flat = x.detach().double()
            peak, std = float(flat.abs().max()), float(flat.std()) if flat.numel() > 1 else 0.0
            factor.append(255.0 if 0 < peak <= 1.0 / 255 * 1.001 else (1.0 / std if std > 0 else 1.0))
        return x * factor[0]

    _transform_root_inputs(stack, rescale)


# -- a debug slice of the training set ----------------------------------------------------------
def storage_rows(x: torch.Tensor) -> int:
    """Rows of the tensor whose storage ``x`` views (``x`` itself when it owns its storage)."""
    if x.dim() < 1 or x.shape[0] < 1 or x.stride(0) <= 0 or x.is_sparse:
        return 0
    try:
        return int(x.untyped_storage().nbytes() // (x.stride(0) * x.element_size()))
    except (RuntimeError, NotImplementedError):
        return 0


def _head_slice(index: Any, n: int) -> bool:
    """``[:n]`` / ``[0:n]`` (alone or as the first of a tuple of indices)."""
    first = index[0] if isinstance(index, tuple) and index else index
    return (isinstance(first, slice) and first.start in (None, 0) and first.stop == n
            and first.step in (None, 1))


def _install_full_training_set(f: Finding, stack: contextlib.ExitStack) -> None:
    """``x[:n]`` of a tensor cut from a source of the measured size (``n`` the measured training
    rows) keeps all the rows of ``x``; ``Subset(dataset, indices)`` of ``n`` indices into a data
    set of the measured size covers the whole data set. Slices of any other size are untouched.
    When the larger set was only seen in evaluation (its size is not the source's), the first
    ``[:n]`` of each tensor with more rows (``Subset`` of each data set) made before the first
    optimizer step is widened (data preparation), and only once per storage: a batch slice
    ``x[0:n]`` of the widened tensor, or any slice once training runs, is left alone."""
    ev = _ev(f)
    try:
        n, rows = int(ev["train_rows"]), int(ev["source_rows"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no training and source sizes") from None
    known = "evaluation" not in str(ev.get("source", ""))
    widened: dict[int, Any] = {}      # storage address (data set id) -> the object: kept, so never reused
    started: list[bool] = []
    _step_post(stack, lambda *_: started.append(True) if not started else None)
    stack.callback(widened.clear)

    def first_cut(key: int, owner: Any) -> bool:
        if started or key in widened:
            return False
        widened[key] = owner
        return True

    def wide(x: torch.Tensor) -> bool:
        if known:
            return storage_rows(x) == rows
        try:
            key = x.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):
            return False
        return first_cut(key, x)

    def getitem(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: torch.Tensor, index: Any) -> Any:
            if _head_slice(index, n) and self.dim() >= 1 and self.shape[0] > n and wide(self):
                rest = index[1:] if isinstance(index, tuple) else ()
                return original(self, (slice(None), *rest))
            return original(self, index)

        return call

    def subset(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def init(self: Any, dataset: Any, indices: Any, *args: Any, **kwargs: Any) -> None:
            try:
                size = len(dataset)
                whole = len(indices) == n and (size == rows if known else size > n and first_cut(id(dataset), dataset))
            except TypeError:
                size, whole = 0, False
            original(self, dataset, range(size) if whole else indices, *args, **kwargs)

        return init

    _patch(stack, torch.Tensor, "__getitem__", getitem)
    _patch(stack, tud.Subset, "__init__", subset)


# -- regression targets on a large scale ------------------------------------------------------------
def _install_standardised_targets(f: Finding, stack: contextlib.ExitStack) -> None:
    """The network learns standardised targets: every output of the trained model (its outermost
    call, a floating-point tensor) comes back as ``mean + std * out`` with the finding's target
    statistics, and the gradient reaching ``out`` is divided by ``std ** 2``, so that the loss on
    the raw targets trains the network exactly as the loss on ``(y - mean) / std`` would (for any
    optimizer); predictions are in the targets' units. It starts once a regression loss got targets
    on the finding's scale (mean within half a std, std within 3x): a script whose targets are
    already standardised is untouched."""
    ev = _ev(f)
    try:
        mean, std = float(ev["target_mean"]), float(ev["target_std"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no target statistics") from None
    if not (std > 0 and std == std and abs(mean) < float("inf")):
        raise ValueError("the finding's target std is not positive")
    depth = [0]
    seen: list[bool] = []        # a regression loss got targets on the finding's scale (else: untouched)

    def pre(module: nn.Module, args: Any) -> None:
        depth[0] += 1
        return None

    def on_scale(t: Any) -> bool:
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() < 2:
            return False
        m, s_ = float(t.detach().double().mean()), float(t.detach().double().std())
        return abs(m - mean) <= 0.5 * std + 1e-12 and std / 3 <= s_ <= 3 * std

    def standardised(out: torch.Tensor) -> torch.Tensor:
        if out.requires_grad:
            out = out.view_as(out)
            out.register_hook(lambda g: g / (std * std))
        return out * std + mean

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if not seen and on_scale(target):
                seen.append(True)         # this first prediction came out untransformed: transform it here
                if isinstance(input, torch.Tensor) and input.is_floating_point():
                    input = standardised(input)
            return original(input, target, *args, **kwargs)

        return loss

    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"):
        _patch(stack, F, name, wrap)

    def post(module: nn.Module, args: Any, output: Any) -> Any:
        depth[0] = max(0, depth[0] - 1)
        if depth[0] or not seen or next(iter(module.parameters()), None) is None:
            return None
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return None
        return standardised(output)

    h1 = nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = nn.modules.module.register_module_forward_hook(post, always_call=True)
    stack.callback(h1.remove)
    stack.callback(h2.remove)


# -- half-precision weights ---------------------------------------------------------------------
_HALF = (torch.float16, torch.bfloat16)
_TARGET_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                  "binary_cross_entropy_with_logits", "cross_entropy", "kl_div")


def _install_float32_weights(f: Finding, stack: contextlib.ExitStack) -> None:
    """Half-precision (float16/bfloat16) parameters of a trained model become float32 before its
    forward (the optimizer keeps the same tensors), half inputs are cast to float32, and a half
    target given to a loss takes the prediction's dtype."""
    def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        for p in module.parameters():
            if p.dtype in _HALF:
                p.data = p.data.float()
                if p.grad is not None:
                    p.grad = p.grad.float()
        for b in module.buffers():
            if b.dtype in _HALF:
                b.data = b.data.float()
        return tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype in _HALF else a for a in args)

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(input, torch.Tensor) and isinstance(target, torch.Tensor) and target.dtype in _HALF \
                    and input.dtype == torch.float32:
                target = target.float()
            return original(input, target, *args, **kwargs)

        return call

    _on_root_calls(stack, pre)
    for name in _TARGET_LOSSES:
        _patch(stack, F, name, wrap)


DATA_REMEDIES: tuple[Remedy, ...] = (
    Remedy("rescale-inputs", ("preprocessing.normalised-twice",),
           lambda f: "the model's inputs brought back to a unit scale (x 255 when all within 1/255, else / std)",
           lambda f: "Normalise once: remove the second division (x / 255 applied when loading and again in "
                     "the Dataset / transform), so the inputs span about unit scale.",
           _install_rescale),
    Remedy("full-training-set", ("data.training-on-small-slice",),
           lambda f: f"the training slice of {_ev(f).get('train_rows', '?')} rows widened to the "
                     + (f"{_ev(f).get('source_rows', '?')} rows it was cut from"
                        if "evaluation" not in str(_ev(f).get("source", "")) else "tensor / data set it was cut from"),
           lambda f: f"Remove the debug slice ([:{_ev(f).get('train_rows', 'n')}] / Subset) that keeps "
                     f"{_ev(f).get('train_rows', '?')} of {_ev(f).get('source_rows', '?')} training rows.",
           _install_full_training_set,
           applies=lambda f: int(_ev(f)["train_rows"]) > 0 and int(_ev(f)["source_rows"]) > 0),
    Remedy("standardise-targets", ("preprocessing.targets-not-scaled",),
           lambda f: f"the network learns standardised targets (outputs x {_ev(f).get('target_std', 0):.4g} + "
                     f"{_ev(f).get('target_mean', 0):.4g}, the gradient scaled as for (y - mean) / std)",
           lambda f: f"Standardise the targets: y_n = (y - {_ev(f).get('target_mean', 0):.4g}) / "
                     f"{_ev(f).get('target_std', 1):.4g} from the training set, train on y_n and report predictions "
                     "* std + mean.",
           _install_standardised_targets,
           applies=lambda f: float(_ev(f)["target_std"]) > 0 and abs(float(_ev(f)["target_mean"])) < float("inf")),
    Remedy("float32-weights", ("dtype.half-precision-weights",),
           lambda f: f"the {_ev(f).get('dtype', 'half')} weights and inputs trained in float32",
           lambda f: "Keep the weights in float32 (drop model.half() / .to(torch.float16)); for speed on a GPU use "
                     "torch.autocast with a GradScaler, which keeps float32 master weights.",
           _install_float32_weights),
)
