"""What a model's per-sample output depends on: one probe of a copy of a few rows of a training batch.

Karpathy's recipe "use backprop to chart dependencies": set the loss to the output of one sample, run
backward to the input, and the gradient must be non-zero on that sample's input only (and, for a
sequence model, on the time steps the prediction is meant to read). :func:`probe` does it on the side,
without touching anything of the user's:

* a copy of ``ROWS`` rows of the batch (along the batch dim of every argument of the batch's size; the
  whole batch, up to ``FULL_ROWS`` rows, where the model cannot run on a slice);
* every module in eval mode (batch-norm statistics and dropout do not mix samples), a forked RNG,
  cuDNN off (its RNN backward refuses eval mode), and ``torch.autograd.grad`` towards the copied input
  (an integer input: the output of the ``nn.Embedding`` that reads it), so no parameter's ``.grad``
  is written; the model's attributes, buffers and modes are restored afterwards;
* the gradient of (a fixed random projection of) the first and the last probed sample's outputs, in one
  backward: the share of it on the other samples' inputs is the leak; the share on each time step of
  each one's own input is its time profile;
* where the output leaks, two more forwards without autograd: the batch as is and rolled by one
  sample. A model that mixes samples on purpose and symmetrically (attention or pooling over a set of
  samples) gives the rolled outputs; a reshape that interleaves samples does not (``equivariant``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from nndoctor.monitor.model_state import kept_state
from nndoctor.monitor.tensors import fsdp_sharded, is_integer, is_sharded

__all__ = ["Dependence", "FULL_ROWS", "ROWS", "SEQUENCE_MODULES", "eager", "probe"]

ROWS = 7  # rows of the batch probed (a prime: it seldom equals another size of the output by chance)
FULL_ROWS = 256  # the whole batch is probed where a slice cannot run, up to this many rows
MAX_ELEMENTS = 1 << 22  # of the probed input
EPS = 1e-6  # a gradient below EPS times the largest is none (float round-off of a real zero)
#: modules that read a sequence: only a model holding one is judged for its use of the time steps
SEQUENCE_MODULES: tuple[type, ...] = (nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention,
                                      nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.Transformer)


@dataclass
class Dependence:
    """One probe's result."""

    rows: int
    output_shape: tuple[int, ...]
    #: share (L1) of the probed samples' output gradient on the other samples' inputs
    leak: float
    #: with a leak: whether the rolled batch gave the rolled outputs (None: not tested or not deterministic)
    equivariant: bool | None
    #: per probed sample: the only time step its gradient reaches, -1 where several (None: no time axis)
    single_steps: tuple[int, ...] | None
    seq_len: int = 0
    #: with ``locate``: the last module whose output still reaches the first sample's output through other
    #: samples' rows, and the module called after it (the mixing happens between them, or inside the second)
    boundary: tuple[str, str] | None = None


def _first_float(out: Any) -> torch.Tensor | None:
    items = [out] if isinstance(out, torch.Tensor) else (
        list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [])
    return next((o for o in items if isinstance(o, torch.Tensor) and o.is_floating_point()), None)


def _sample_dim(o: torch.Tensor | None, rows: int) -> int | None:
    """The dim of the per-sample output that holds the ``rows`` samples (dim 0 or 1, exactly one)."""
    if o is None or o.dim() == 0:
        return None
    dims = [d for d in range(min(o.dim(), 2)) if o.shape[d] == rows]
    return dims[0] if len(dims) == 1 else None


def _rows(args: Sequence[Any], dim: int, n: int, size: int, shift: int = 0) -> tuple[Any, ...]:
    """Copies of ``size`` rows of every batch argument (rolled by ``shift``); other arguments as they are."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor) and a.dim() > dim and a.shape[dim] == n:
            a = a.detach().narrow(dim, 0, size).clone()
            if shift:
                a = a.roll(shift, dim)
        out.append(a)
    return tuple(out)


@contextlib.contextmanager
def _embedding_input(model: nn.Module, x: torch.Tensor, found: list[torch.Tensor]) -> Iterator[None]:
    """While open, the output of an ``nn.Embedding`` that reads ``x`` itself becomes a leaf that requires
    grad (appended to ``found``): the tensor whose gradient is the dependence on the tokens."""

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
        if found or not inputs or inputs[0] is not x or not isinstance(output, torch.Tensor):
            return None
        leaf = output.detach().requires_grad_()
        found.append(leaf)
        return leaf

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Embedding)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _user_backward_hooks(model: nn.Module) -> bool:
    return any(getattr(m, "_backward_hooks", None) or getattr(m, "_backward_pre_hooks", None)
               for m in model.modules())


def eager(model: nn.Module) -> nn.Module | None:
    """The module to probe: a compiled model's eager original (a new batch size or mode would recompile it
    and count against its recompilation limit), a (Distributed)DataParallel's module (its forward prepares a
    gradient reduction the probe never runs); None for a sharded (FSDP) model, whose forward gathers the
    parameters across ranks (a collective that one rank's probe must not start)."""
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    model = getattr(model, "_orig_mod", model)
    if fsdp_sharded([model]) or any(is_sharded(p) for p in model.parameters()):
        return None
    return model


def probe(model: nn.Module, args: Sequence[Any], index: int, batch_dim: int, time_axis: bool, *,
          locate: bool = False) -> Dependence | None:
    """Probe ``model`` on rows of ``args`` (``args[index]`` the batch input, its samples along ``batch_dim``;
    ``time_axis``: that input is ``(N, T, ...)`` / ``(T, N, ...)`` and its other leading dim is time;
    ``locate``: also find between which modules the samples get mixed). None where the model cannot be
    probed this way."""
    x = args[index]
    n = int(x.shape[batch_dim])
    module = eager(model)
    if module is None or n < 3 or _user_backward_hooks(module):
        return None
    model = module
    sizes = [min(n, ROWS)]
    if n > ROWS and n <= FULL_ROWS:
        sizes.append(n)
    for size in sizes:
        if x.numel() // n * size > MAX_ELEMENTS:
            return None
        try:
            found = _probe_rows(model, args, index, batch_dim, n, size, time_axis, locate)
        except Exception:  # (a forward that cannot run on a slice of the batch: the whole batch next)
            found = None
        if found is not None:
            return found
    return None


@contextlib.contextmanager
def _leaf_outputs(model: nn.Module, leaves: list[tuple[str, torch.Tensor]], on: bool) -> Iterator[None]:
    """While open (and ``on``), the output of every call of a module without children, in call order."""
    if not on:
        yield
        return

    def hook(name: str) -> Any:
        def record(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) and output else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                leaves.append((name, out))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if name and next(iter(m.children()), None) is None]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _boundary(o: torch.Tensor, dim: int, size: int, leaves: list[tuple[str, torch.Tensor]],
              gen: torch.Generator) -> tuple[str, str] | None:
    """Between which module calls the first sample's output starts to depend on other samples' rows."""
    kept = [(name, t, d) for name, t in leaves if (d := _sample_dim(t, size)) is not None]
    if not kept:
        return None
    sample = o.select(dim, 0).float()
    weights = torch.randn(sample.shape, generator=gen).to(sample.device)
    grads = torch.autograd.grad((sample * weights).sum(), [t for _, t, _ in kept], retain_graph=True,
                                allow_unused=True)
    leaky: list[bool | None] = []  # None: the output does not reach the first sample's at all
    for (_, _, d), g in zip(kept, grads):
        g = g.detach().abs().float() if g is not None else None
        total = float(g.sum()) if g is not None else 0.0
        leaky.append(None if not total > 0 or g is None else 1.0 - float(g.select(d, 0).sum()) / total > 0.01)
    last = max((i for i, leak in enumerate(leaky) if leak), default=None)
    after = next((i for i in range(last + 1, len(kept)) if leaky[i] is False), None) if last is not None else None
    return (kept[last][0], kept[after][0]) if last is not None and after is not None else None


@contextlib.contextmanager
def _no_cudnn() -> Iterator[None]:
    """cuDNN off (only its ``enabled`` flag, restored afterwards): its RNN backward refuses eval mode."""
    was = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = was


def _forward(model: nn.Module, args: tuple[Any, ...], cpu: torch.Tensor) -> Any:
    torch.set_rng_state(cpu)
    return model(*args)


def _probe_rows(model: nn.Module, args: Sequence[Any], index: int, batch_dim: int, n: int, size: int,
                time_axis: bool, locate: bool) -> Dependence | None:
    rows = _rows(args, batch_dim, n, size)
    x = rows[index]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    found: list[torch.Tensor] = []
    with kept_state(model), torch.random.fork_rng(devices=devices), _no_cudnn():
        for m in model.modules():
            m.training = False
        cpu = torch.get_rng_state()
        leaves: list[tuple[str, torch.Tensor]] = []
        with torch.enable_grad(), _leaf_outputs(model, leaves, locate):
            if is_integer(x):
                with _embedding_input(model, x, found):
                    out = _forward(model, rows, cpu)
                wrt = found[0] if found else None
            else:
                wrt = x.requires_grad_()
                out = _forward(model, rows, cpu)
            o = _first_float(out)
            dim = _sample_dim(o, size)
            if wrt is None or o is None or dim is None or not o.requires_grad or tuple(
                    wrt.shape[:x.dim()]) != tuple(x.shape):
                return None  # (an embedding's output has the tokens' shape and one more dim)
            gen = torch.Generator().manual_seed(0)
            boundary = _boundary(o, dim, size, leaves, gen) if locate else None
            # one backward for both probed samples: a random projection of their outputs, zero elsewhere
            probed = (0, size - 1)
            weights = torch.zeros(o.shape, dtype=torch.float32)
            for i in probed:
                weights.select(dim, i).copy_(torch.randn(weights.select(dim, i).shape, generator=gen))
            (g,) = torch.autograd.grad((o.float() * weights.to(o.device)).sum(), wrt, allow_unused=True)
            if g is None:
                return None
            g = g.detach().abs().float()
            total = float(g.sum())
            if not total > 0:
                return None
            own = [g.select(batch_dim, i) for i in probed]
            leak = 1.0 - sum(float(r.sum()) for r in own) / total
            steps = []
            for r in own if time_axis else ():
                profile = r.reshape(r.shape[0], -1).sum(1) if r.dim() >= 1 else r.reshape(1)
                carriers = (profile > EPS * float(profile.max())).nonzero().flatten().tolist()
                steps.append(carriers[0] if len(carriers) == 1 and float(profile.max()) > 0 else -1)
            before = o.detach()
        equivariant = None
        if leak > 0.01:
            with torch.no_grad():
                again = _first_float(_forward(model, rows, cpu))
                rolled = _first_float(_forward(model, _rows(args, batch_dim, n, size, shift=1), cpu))
            scale = float(before.abs().max())
            if (again is not None and rolled is not None and again.shape == before.shape == rolled.shape
                    and scale > 0 and float((again - before).abs().max()) <= 1e-4 * scale):
                equivariant = float((rolled - again.roll(1, dim)).abs().max()) <= 1e-3 * scale
    seq_len = int(x.shape[1 - batch_dim]) if time_axis else 0
    return Dependence(rows=size, output_shape=tuple(o.shape), leak=leak, equivariant=equivariant,
                      single_steps=tuple(steps) if time_axis else None, seq_len=seq_len, boundary=boundary)
