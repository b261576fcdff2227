"""Parameters and gradients as the plain tensors this process holds.

Sharded training (FSDP2's ``fully_shard``, tensor parallelism) makes parameters and their
gradients DTensors: each rank holds a shard, and an operation on the DTensor itself either fails
(``.tolist()``, boolean indexing, mixing DTensor and Tensor) or quietly runs a collective to build
its result (``bool(g.any())`` on a sharded gradient all-reduces). A check must never communicate
in the training's hot path, so every check reads parameter and gradient values through
:func:`local`: the rank's own shard, as a plain tensor, with no communication. A shard can be
empty on some ranks (a small tensor split over many ranks): callers skip those.

FSDP2 also frees the storage of a layer's gathered (unsharded) weights after its forward and
backward while the tensor object, still full-sized, lives on: reading one would crash the process.
:func:`local` returns an empty tensor for such a tensor, so a check that kept a reference from
the forward pass reads nothing instead.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable, Sequence

import torch

_PLAIN = (torch.Tensor, torch.nn.Parameter)  # (a DTensor, even as a parameter, is of its own type)
_strided = torch.strided

__all__ = ["ForwardInputs", "all_zero", "dense_inputs", "transformed", "zero_flag", "fsdp_sharded", "is_integer", "is_sharded", "local", "local_grad", "materialised", "own_named_parameters",
           "own_parameters", "param_ids"]


def local(tensor: torch.Tensor) -> torch.Tensor:
    """The plain tensor this rank holds: a DTensor's local shard (a view that follows in-place
    updates, no copy, no communication), any other tensor unchanged; an empty tensor where the
    storage behind it has been freed."""
    if type(tensor) in _PLAIN:  # (the common case, kept short: checks call this per parameter)
        t = tensor
    else:
        inner = getattr(tensor, "_local_tensor", None)
        t = inner if isinstance(inner, torch.Tensor) else tensor
    return t if _backed(t) else t.new_empty((0,))


def _backed(t: torch.Tensor) -> bool:
    """The tensor's storage holds all of its elements (FSDP2 resizes a freed one to 0 bytes)."""
    try:
        if t.layout is not _strided or t.is_nested or t.is_meta or not (numel := t.numel()):
            return True
        nbytes = t.untyped_storage().nbytes()
        if t.is_contiguous():  # (the common case: no Python loop over the dimensions)
            last = t.storage_offset() + numel - 1
        else:
            last = t.storage_offset() + sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride()))
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # no plain storage (functorch, subclasses)
        return True
    return nbytes >= (last + 1) * t.element_size()


def local_grad(param: torch.Tensor) -> torch.Tensor | None:
    """``param.grad`` as this rank's shard (see :func:`local`), or None."""
    grad = param.grad
    return None if grad is None else local(grad)


#: float dtypes whose all-zero test on CPU reads a min/max pass (see :func:`all_zero`)
_MINMAX_DTYPES = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16})
_MINMAX_NUMEL = 1024  # (below this ``any()`` is as cheap)


def all_zero(t: torch.Tensor) -> torch.Tensor:
    """A 0-d bool tensor: every element of the dense, non-empty tensor ``t`` is zero (NaN is not,
    -0.0 is), without a host sync; ``~t.any()``, which torch runs several times slower than a
    min/max pass over a large floating-point tensor on CPU (a gradient tested on each sampled step)."""
    t = t.detach()
    if type(t) is torch.Tensor and t.dtype in _MINMAX_DTYPES and t.is_cpu and t.numel() >= _MINMAX_NUMEL:
        lo, hi = torch.aminmax(t)
        return (lo == 0) & (hi == 0)  # (NaN compares unequal: not zero, as for any())
    return ~t.any()


def zero_flag(t: torch.Tensor) -> torch.Tensor | bool:
    """Whether ``t`` (a gradient: dense, sparse or empty) is all zero: True for an empty one, else
    :func:`all_zero` of its (stored) values."""
    if t.is_sparse:
        t = t._values()
    if t.numel() == 0:
        return True
    return all_zero(t)


def is_sharded(param: torch.Tensor) -> bool:
    """A parameter that holds one rank's shard only (DTensors, FSDP1's flat parameters): its
    values are not expected to agree across ranks."""
    return bool(getattr(param, "_is_flat_param", False)) or hasattr(param, "_local_tensor") \
        or hasattr(param, "_sharded_param_data")


def fsdp_sharded(modules: Iterable[torch.nn.Module]) -> bool:
    """Some module is an FSDP1 unit (``FullyShardedDataParallel``) that shards its parameters: with
    ``use_orig_params=True`` the parameters the optimizer holds are plain tensors viewing this
    rank's shard of the flat parameter (possibly empty), so :func:`is_sharded` cannot tell."""
    for module in modules:
        for sub in module.modules():
            handle = getattr(sub, "_handle", None)
            if handle is not None and getattr(handle, "uses_sharded_strategy", False) is True:
                return True
    return False


def param_ids(optimizer: torch.optim.Optimizer) -> set[int]:
    """The ids of the parameters ``optimizer`` holds (to test whether it trains a model's)."""
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


def materialised(param: torch.Tensor) -> bool:
    """False for a LazyModule's parameter before its first forward gives it a shape
    (``UninitializedParameter``: reading its size or values raises); True for every other tensor."""
    return not isinstance(param, torch.nn.parameter.UninitializedTensorMixin)


def is_integer(t: torch.Tensor) -> bool:
    """Integer values (token ids, class indices): not floating point, complex or bool."""
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


class ForwardInputs:
    """The input tensors of a check's latest training forward, by weak reference (never kept alive),
    for the loss of the same step to be compared with; ``model`` names the model, ``extra`` holds
    what the check derived from it."""

    KEPT = 4  # tensors kept per forward

    def __init__(self) -> None:
        self.step: int | None = None
        self.model = ""
        self.extra: Any = None
        self._refs: list[weakref.ReferenceType[torch.Tensor]] = []

    def keep(self, step: int, model: str, tensors: Sequence[torch.Tensor], extra: Any = None) -> None:
        self.step, self.model, self.extra = step, model, extra
        self._refs = [weakref.ref(t) for t in tensors[:self.KEPT]]

    def clear(self) -> None:
        self.step, self.extra, self._refs = None, None, []

    def at(self, step: int) -> list[torch.Tensor | None] | None:
        """The kept tensors (None where one was freed) if they were kept at ``step``, else None."""
        if self.step is None or self.step != step:
            return None
        return [ref() for ref in self._refs]


def own_named_parameters(module: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """``module.named_parameters(recurse=False)`` read from the registry itself: a user's module may
    override ``parameters()`` / ``named_parameters()`` with another signature (torchdiffeq's
    learn_physics ``EventFn.parameters(self)`` takes no ``recurse``) or return a list, which a call
    with ``recurse=False`` or ``next(...)`` on it would crash on."""
    seen: set[int] = set()
    out = []
    for name, p in module._parameters.items():
        if p is not None and id(p) not in seen:
            seen.add(id(p))
            out.append((name, p))
    return out


def own_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """``module.parameters(recurse=False)``, safe against overridden ``parameters()`` (see above)."""
    return [p for _, p in own_named_parameters(module)]


try:
    _WRAPPER_TESTS = (torch._C._functorch.is_functorch_wrapped_tensor, torch._C._functorch.is_batchedtensor)
except AttributeError:  # pragma: no cover - an older torch without torch.func
    _WRAPPER_TESTS = ()


def transformed(values: Iterable[Any]) -> bool:
    """Whether one of the first tensors among ``values`` is a torch.func transform's wrapper (inside
    ``grad``, ``vmap``, ``jacrev``...): it has no storage whose values can be read."""
    for i, value in enumerate(values):
        if i >= 4:
            break
        if isinstance(value, torch.Tensor) and any(test(value) for test in _WRAPPER_TESTS):
            return True
    return False


def _no_dense(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and (value.layout != torch.strided or value.is_nested)


def dense_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A model call's inputs as the checks see them: a sparse or nested tensor (a graph's
    ``torch.sparse`` adjacency, sparse bag-of-words features) replaced by None. The checks read
    values, reshape and slice them, which such layouts do not support; the user's call is
    untouched (this is a view for the checks only)."""
    if not any(_no_dense(v) for v in args) and not any(_no_dense(v) for v in kwargs.values()):
        return args, kwargs
    return (tuple(None if _no_dense(v) else v for v in args),
            {k: None if _no_dense(v) else v for k, v in kwargs.items()})
