"""preprocessing: what the model is fed, and the targets the loss is given.

:class:`InputPreprocessing` aggregates statistics of the first floating-point tensor a root
model receives (for a network written without modules, ``X @ w + b`` or ``F.linear(X, W1)`` over
weight tensors: data without a graph multiplied by a trainable weight outside any model), over
several sampled batches, then judges once per model and argument:
raw 0-255 / 0-16 pixel values, tabular features on wildly different scales, inputs
normalised twice (tiny spread), constant inputs or mostly constant features, and NaN/Inf
values (reported at once). A constant input is judged only for a model that trains (a parameter
with a gradient or in an optimizer): a layer called on zeros to show what it does, or a model
probed for its output shape before its optimizer exists, is not fed data. A first argument that is
constant beside a later tensor argument that is not (``model(hidden, x)`` with zeros for ``hidden``)
is an auxiliary input: the later one is judged as the data. :class:`BinaryTargetRange` checks that BCE-style losses get
targets in [0, 1]. :class:`ScaledClassTargets` finds float targets that are small class ids
scaled like pixels ({0, 1/255, 2/255, ...}: labels or masks divided by 255). Class-index
targets out of range crash inside torch: the crash explainer (``nndoctor.debug.crash``)
covers those.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import LossCall, ModelInput, ModuleOutput, OpCall, RunEnd
from nndoctor.monitor.tensors import own_parameters

__all__ = ["BinaryTargetRange", "InputPreprocessing", "ScaledClassTargets", "conv1d_input", "fed_back", "feature_matrix", "fmt",
           "looks_like_image", "sequence_input"]

logger = logging.getLogger("nndoctor")

#: batches aggregated before judging (fewer if the run ends first)
DECIDE_AFTER = 4
#: rows / values of one batch that are looked at (a deterministic slice, never random)
MAX_ROWS, MAX_VALUES = 512, 2_000_000
#: per-feature statistics are kept up to this many features
MAX_FEATURES = 200_000
#: a feature whose RMS value reaches this is "in the hundreds or thousands"
LARGE_SCALE = 100.0
#: columns whose stds (largest vs 10th percentile) differ this much are "on very different scales"
SPREAD_RATIO = 1e3
#: global std below this (with every |x| < TINY_MAX) means "normalised twice / too much"
TINY_STD, TINY_MAX = 3e-2, 0.1
#: a row whose L1 or L2 norm is 1 within this was normalised on its own (rows of a probability,
#: a row-normalised bag of words as GCNs feed it, L2-normalised TF-IDF): its small values are not tiny
UNIT_NORM_TOL = 1e-3

_BCE_LOSSES = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits",
                         "multilabel_soft_margin_loss"})

#: losses whose float targets may be class ids divided by 255
_VALUE_TARGET_LOSSES = _BCE_LOSSES | {"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"}
#: sampled loss calls and target values before small multiples of 1/255 are called scaled class ids
_SCALED_CALLS, _SCALED_VALUES = 2, 64
#: the largest class id that such targets may hold (max target 63/255)
_SCALED_MAX_ID = 63

_NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)

_CODES = {
    "nan": "preprocessing.nan-in-inputs",
    "pixels": "preprocessing.unnormalised-pixels",
    "scales": "preprocessing.unnormalised-features",
    "twice": "preprocessing.normalised-twice",
    "constant": "preprocessing.constant-input",
    "const_features": "preprocessing.constant-features",
}


@dataclass
class _Stats:
    """Running statistics of one model argument over the sampled batches."""

    shape: tuple[int, ...] = ()
    image: bool = False
    batches: int = 0
    rows: int = 0
    all_integer: bool = True
    constant_batches: int = 0
    gmin: float = math.inf
    gmax: float = -math.inf
    gsum: float = 0.0
    gsq: float = 0.0
    count: int = 0
    fmin: torch.Tensor | None = None
    fmax: torch.Tensor | None = None
    fzero: torch.Tensor | None = None  # per feature: how many sampled values were exactly 0
    crows: int = 0  # rows behind fmin / fmax / fzero
    fsum: torch.Tensor | None = None
    fsq: torch.Tensor | None = None
    frows: int = 0
    decided: bool = False
    nan_reported: bool = False
    learns: bool = False  # the model has trained (a parameter with a gradient or in an optimizer) by now
    #: what the model's first layer with parameters receives: inputs rescaled inside forward are fine
    first_layer: str = ""
    integer_input: bool = False
    first_is_norm: bool = False
    inner_ratio: float | None = None
    #: raw pixels were reported from the first batch already (the step a NaN loss may follow at once)
    pixels_reported: bool = False
    #: rows normalised one by one (unit L1 or L2 norm: a row-normalised bag of words, TF-IDF vectors)
    #: and the other non-zero rows: small values in such rows are the normalisation, not a second one
    unit_rows: int = 0
    other_rows: int = 0
    last_max_abs: float = 0.0  # the latest batch's largest |x| (read with its other statistics)

    def add(self, flat: torch.Tensor, channels: torch.Tensor) -> None:
        """``flat``: (rows, values per sample); ``channels``: (samples, C) for per-column/channel scales.

        Constant features are tracked per pixel for images and per column/channel otherwise (so that
        sequences of varying length share one set of features).
        """
        self.batches += 1
        self.rows += flat.shape[0]
        lo_t, hi_t = torch.aminmax(flat)
        # one host transfer (float64 holds the float32 extremes exactly)
        lo, hi, total, sq = torch.stack([lo_t.double(), hi_t.double(), flat.sum(dtype=torch.float64),
                                         flat.square().sum(dtype=torch.float64)]).tolist()
        self.last_max_abs = max(abs(lo), abs(hi))
        self.constant_batches += int(lo == hi)
        self.gmin, self.gmax = min(self.gmin, lo), max(self.gmax, hi)
        self.gsum += total
        self.gsq += sq
        self.count += flat.numel()
        if self.all_integer:
            self.all_integer = bool(torch.equal(flat, flat.round()))
        if not self.all_integer and self.other_rows == 0:
            a = flat.abs().double()
            l1, l2 = a.sum(1), a.square().sum(1).sqrt()
            unit = ((l1 - 1).abs() <= UNIT_NORM_TOL) | ((l2 - 1).abs() <= UNIT_NORM_TOL)
            nonzero = l1 > 0
            self.unit_rows += int((unit & nonzero).sum())
            self.other_rows += int((~unit & nonzero).sum())
        feats = flat if self.image else channels
        if feats.shape[1] <= MAX_FEATURES:
            fmin, fmax = feats.amin(0), feats.amax(0)
            zeros = (feats == 0).sum(0)
            if self.fmin is None or self.fmax is None or self.fzero is None or self.fmin.shape != fmin.shape:
                self.fmin, self.fmax, self.fzero, self.crows = fmin, fmax, zeros, 0
            else:
                self.fmin, self.fmax = torch.minimum(self.fmin, fmin), torch.maximum(self.fmax, fmax)
                self.fzero = self.fzero + zeros
            self.crows += feats.shape[0]
        c = channels.double()
        if self.fsum is None or self.fsum.shape[0] != c.shape[1]:
            self.fsum, self.fsq, self.frows = c.sum(0), c.square().sum(0), c.shape[0]
        else:
            self.fsum, self.fsq = self.fsum + c.sum(0), self.fsq + c.square().sum(0)
            self.frows += c.shape[0]

    @property
    def mean(self) -> float:
        return self.gsum / max(self.count, 1)

    @property
    def std(self) -> float:
        m = self.mean
        return math.sqrt(max(self.gsq / max(self.count, 1) - m * m, 0.0))

    def channel_mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.fsum is not None and self.fsq is not None
        n = max(self.frows, 1)
        mean = self.fsum / n
        return mean, (self.fsq / n - mean.square()).clamp(min=0).sqrt()


def fmt(value: float) -> str:
    """A short human form of a number: 255, 0.0039, 1.41e+03."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def looks_like_image(x: torch.Tensor) -> bool:
    """(N, C, H, W) / (N, C, D, H, W), (N, H, W) with H == W, or (N, k*k) / (N, 3*k*k) flattened pixels."""
    if x.dim() >= 4:
        return True
    if x.dim() == 3:
        return x.shape[1] == x.shape[2] >= 8
    if x.dim() == 2:
        f = x.shape[1]
        for c in (1, 3):
            k = math.isqrt(f // c)
            if f % c == 0 and k >= 8 and k * k * c == f:
                return True
    return False


def conv1d_input(model: Any, x: torch.Tensor) -> bool:
    """Whether a 3-D ``x`` is (N, C, L) for a model whose first weighted layer is an nn.Conv1d
    reading its C channels (a temporal convolution): its features are dim 1, not the positions."""
    if x.dim() != 3 or not isinstance(model, torch.nn.Module):
        return False
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear, torch.nn.RNNBase, torch.nn.Embedding,
                          torch.nn.modules.conv._ConvNd)):
            return isinstance(m, torch.nn.Conv1d) and m.in_channels == x.shape[1] != x.shape[2]
    return False


def sequence_input(model: Any, x: torch.Tensor) -> bool:
    """Whether a 3-D ``x`` feeds a model whose first weighted layer is a recurrent one (nn.RNN/LSTM/GRU)
    reading its last dim, (N, L, F) or (L, N, F): a sequence, never an image, even when L == F (a
    padded one-hot sentence of 27 words over 27 words, graykode's Bi-LSTM); its features are the last dim."""
    if x.dim() != 3 or not isinstance(model, torch.nn.Module):
        return False
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.RNNBase, torch.nn.Embedding, torch.nn.modules.conv._ConvNd)):
            return isinstance(m, torch.nn.RNNBase) and m.input_size == x.shape[-1]
    return False


def feature_matrix(x: torch.Tensor, channels_first: bool = False, sequence: bool = False,
                   ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any] | None]:
    """``(flat, channels, nonfinite)`` of a batch ``x`` of shape (N, ...).

    ``flat`` is (rows, features) with rows holding NaN/Inf removed; ``channels`` is
    (samples, C) for per-channel scale statistics: columns of a table, the last dim of a
    sequence (dim 1 of a ``channels_first`` (N, C, L) one), dim 1 of an image;
    ``nonfinite`` describes NaN/Inf values, or is None.
    """
    xf = x.detach().float()
    n = xf.shape[0]
    flat = xf.reshape(n, -1)
    nonfinite = None
    bad = ~torch.isfinite(flat)
    if bool(bad.any()):
        bad_rows = bad.any(1)
        if xf.dim() == 2:
            cols = bad.any(0).nonzero().flatten().tolist()
            where = "columns " + ", ".join(map(str, cols[:10])) + (" ..." if len(cols) > 10 else "")
        elif xf.dim() == 3 and (sequence or not looks_like_image(xf)):
            feats = bad.reshape(n, xf.shape[1], xf.shape[2]).any(0).any(0).nonzero().flatten().tolist()
            where = "features " + ", ".join(map(str, feats[:10])) + (" ..." if len(feats) > 10 else "")
        else:
            where = f"{int(bad.sum())} of {flat.numel()} values"
        nan = int(torch.isnan(flat).sum())
        nonfinite = {"nan": nan, "inf": int(bad.sum()) - nan, "where": f"{where}; rows affected "
                     f"{int(bad_rows.sum())} of {n}", "rows": int(bad_rows.sum())}
        keep = ~bad_rows
        xf, flat = xf[keep], flat[keep]
        n = flat.shape[0]
    if xf.dim() == 2:
        channels = flat
    elif xf.dim() == 3 and channels_first:
        channels = xf.transpose(1, 2).reshape(-1, xf.shape[1])
    elif xf.dim() == 3 and (sequence or not looks_like_image(xf)):
        channels = xf.reshape(-1, xf.shape[-1])
    elif xf.dim() == 3:
        channels = flat.reshape(-1, 1)
    else:
        channels = xf.transpose(0, 1).reshape(xf.shape[1], -1).t()
    return flat, channels, nonfinite


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            return f"args[{i}]", a
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            return k, v
    return "", None


def _constant(x: torch.Tensor) -> bool:
    flat = x.detach().reshape(-1)
    return flat.numel() >= 2 and bool((flat == flat[0]).all())


def _data_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    """The argument that carries the data: the first tensor, unless it is constant in this call and a
    later tensor argument is not. ``model(hidden, x)`` with ``hidden = torch.zeros(...)`` every step
    (graykode's TextRNN), an all-ones mask or a fixed time step before the data: the constant one is
    an auxiliary input, not data the model cannot learn from. A call whose tensors are all constant
    keeps the first (inputs zeroed by a bug)."""
    arg, x = _first_tensor(args, kwargs)
    if x is None or x.grad_fn is not None or not _constant(x):
        return arg, x
    rest = [(f"args[{i}]", a) for i, a in enumerate(args)] + list(kwargs.items())
    for name, t in rest:
        if name != arg and isinstance(t, torch.Tensor) and t.grad_fn is None and t.dtype != torch.bool \
                and t.dim() >= 2 and not _constant(t):
            return name, t
    return arg, x


def _vec(t: torch.Tensor, n: int = 6) -> str:
    vals = [fmt(v) for v in t[:n].tolist()]
    return "[" + ", ".join(vals) + (", ...]" if t.numel() > n else "]")


def fed_back(x: torch.Tensor, model: torch.nn.Module, limit: int = 512) -> bool:
    """Whether ``x``'s autograd graph reaches one of ``model``'s own parameters (within ``limit``
    graph nodes): the model's output fed back into it."""
    own = {id(p) for p in model.parameters()}
    if not own:
        return False
    stack, seen = [x.grad_fn], set()
    while stack and len(seen) < limit:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        var = getattr(fn, "variable", None)
        if var is not None and id(var) in own:
            return True
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return False


@register
class InputPreprocessing(Check):
    """Raw, over-normalised, constant or non-finite model inputs, judged over several batches."""

    code = _CODES["pixels"]
    needs = ("model_input", "module_output", "op", "end")
    sampled_only = frozenset({"model_input"})
    ops = frozenset({"matmul", "mm", "linear"})
    extra_codes = (
        _CODES["scales"],
        _CODES["twice"],
        _CODES["constant"],
        _CODES["const_features"],
        _CODES["nan"],
    )

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._stats: dict[tuple[int, str], _Stats] = {}
        self._names: dict[tuple[int, str], str] = {}
        self._pending: tuple[_Stats, float] | None = None
        self._embedding: dict[int, bool] = {}
        self._recurrent: set[tuple[int, str]] = set()  # a cell fed its own output: its inputs are state
        self._walked: set[tuple[int, str]] = set()

    def _note_fed_back(self, model: torch.nn.Module, arg: str, x: torch.Tensor) -> None:
        """A model whose input (this argument) is, on some calls, computed from the model's own
        parameters is a recurrent cell driven by hand (``h = cell(torch.cat([x, h]))``, a latent ODE's
        recognition RNN): on its other calls the grad-free input holds the initial state (zeros), not
        data, so the argument is not judged as data at all. Decided once per argument from the
        autograd graph (bounded walk); an input computed by another model (an encoder, a generator)
        leaves the argument judged."""
        key = (id(model), arg)
        if key in self._walked:
            return
        self._walked.add(key)
        if fed_back(x, model):
            self._recurrent.add(key)
            self._stats.pop(key, None)

    def _has_embedding(self, model: torch.nn.Module) -> bool:
        found = self._embedding.get(id(model))
        if found is None:
            found = self._embedding[id(model)] = any(
                isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) for m in model.modules())
        return found

    def check(self, event: ModelInput | ModuleOutput | OpCall | RunEnd) -> Iterable[Finding]:
        if isinstance(event, ModuleOutput):
            if self._pending is not None:
                return self._first_layer(event)
            return ()
        if isinstance(event, OpCall):
            return self._weights_without_model(event)
        if isinstance(event, RunEnd):
            out: list[Finding] = []
            for key, st in self._stats.items():
                if not st.decided and st.batches:
                    out.extend(self._judge(key, st, final=True))
            return out
        if not event.sampled:
            return ()
        arg, x = _data_tensor(event.args, event.kwargs)
        if x is None or x.dim() < 2 or x.shape[0] < 1 or x.numel() < 2 or x.dtype == torch.bool:
            return ()
        if x.grad_fn is not None:
            # computed by layers that train (an encoder called before this head, a generator's output
            # into a discriminator): features, not data; the data's own preprocessing is judged where
            # they enter the first model
            self._note_fed_back(event.model, arg, x)
            return ()
        integer = not x.is_floating_point()
        if integer and (x.is_complex() or self._has_embedding(event.model)):
            return ()  # token ids for an nn.Embedding
        key = (id(event.model), arg)
        if key in self._recurrent:
            return ()
        st = self._stats.get(key)
        if st is None:
            st = self._stats[key] = _Stats()
            self._names[key] = event.name
        st.integer_input = integer
        if not st.learns:
            st.learns = self._learns(event.model)
        if st.decided and st.nan_reported:
            return ()
        out = []
        per_sample = max(x[0].numel(), 1)
        rows = max(2, min(MAX_ROWS, MAX_VALUES // per_sample))
        seq = sequence_input(event.model, x)
        flat, channels, nonfinite = feature_matrix(x[:rows], conv1d_input(event.model, x), seq)
        if nonfinite is None and x.shape[0] > rows and not st.nan_reported and not bool(torch.isfinite(x).all()):
            nonfinite = feature_matrix(x, sequence=seq)[2]  # NaN rows beyond the slice: describe them from the whole batch
        if nonfinite is not None and not st.nan_reported:
            st.nan_reported = True
            out.append(self._nan_finding(event.name, arg, x, nonfinite))
        if st.decided or flat.numel() == 0:
            return out
        st.shape = tuple(x.shape)
        st.image = looks_like_image(x) and not seq
        st.add(flat, channels)
        self._pending = (st, st.last_max_abs)
        if st.batches >= DECIDE_AFTER and (st.learns or st.constant_batches < st.batches):
            out.extend(self._judge(key, st, final=False))  # (constant so far and not training: wait)
        return out

    def _learns(self, model: torch.nn.Module) -> bool:
        """Whether the model has trained by now: one of its parameters has a gradient or is in an
        optimizer (a model without parameters counts as training: nothing tells otherwise)."""
        params = list(model.parameters())
        if not params or any(p.grad is not None for p in params):
            return True
        held = self.state.optimizer_params()
        return any(id(p) in held for p in params)

    def _weights_without_model(self, event: OpCall) -> list[Finding]:
        """A network written without modules (``X @ w + b``, ``F.linear(X, W1)`` on weight tensors):
        data (no graph) multiplied by a trainable weight outside any model is its input."""
        if event.module or len(event.args) < 2:
            return []
        x, w = event.args[0], event.args[1]
        if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and isinstance(event.result, torch.Tensor)
                and event.result.requires_grad and w.requires_grad and w.is_leaf and x.grad_fn is None
                and not x.requires_grad and x.is_floating_point() and x.dim() >= 2 and x.shape[0] >= 1
                and x.numel() >= 2 and id(w) in self.state.param_refs):
            return []
        key = (id(w), "input")
        st = self._stats.get(key)
        if st is None:
            if len(self._stats) >= 64:
                return []
            st = self._stats[key] = _Stats(learns=True)  # (a trainable weight the script holds: it trains)
            self._names[key] = f"the layer of {self.state.param_name(w)}"
        if st.decided and st.nan_reported:
            return []
        out: list[Finding] = []
        rows = max(2, min(MAX_ROWS, MAX_VALUES // max(x[0].numel(), 1)))
        flat, channels, nonfinite = feature_matrix(x[:rows])
        if nonfinite is not None and not st.nan_reported:
            st.nan_reported = True
            out.append(self._nan_finding(self._names[key], "input", x, nonfinite))
        if st.decided or flat.numel() == 0:
            return out
        st.shape = tuple(x.shape)
        st.image = looks_like_image(x)
        st.add(flat, channels)
        st.first_layer = f"{self.state.param_name(w)} ({event.name})"
        out.extend(self._early_pixels(st))
        if st.batches >= DECIDE_AFTER:
            out.extend(self._judge(key, st, final=False))
        return out

    def _first_layer(self, event: ModuleOutput) -> list[Finding]:
        """The first layer with weights to finish: does it see the root input, or a rescaled one?"""
        if next(iter(own_parameters(event.module)), None) is None or self._pending is None:
            return []
        st, root_max = self._pending
        self._pending = None
        inp = next((a for a in event.inputs if isinstance(a, torch.Tensor)), None)
        st.first_layer = f"{event.name} ({type(event.module).__name__})"
        st.first_is_norm = isinstance(event.module, _NORM_LAYERS)
        if inp is None or not inp.is_floating_point() or inp.numel() == 0 or root_max <= 0:
            return []
        ratio = inp.detach().abs().max().item() / root_max
        st.inner_ratio = ratio if st.inner_ratio is None else max(st.inner_ratio, ratio)
        return self._early_pixels(st)

    def _early_pixels(self, st: _Stats) -> list[Finding]:
        """Raw pixels are plain from the first batch that reaches a layer: say so on that step, the step
        whose loss they may already turn NaN, not DECIDE_AFTER batches later."""
        if st.decided or st.pixels_reported or st.rows < 8 or st.constant_batches == st.batches:
            return []
        if st.first_is_norm or (st.inner_ratio is not None and st.inner_ratio < 0.1):
            return []
        key = next((k for k, v in self._stats.items() if v is st), None)
        model = self._names.get(key, "model") if key is not None else "model"
        base = {"model": model, "argument": key[1] if key else "", "shape": st.shape, "batches": st.batches,
                "first_layer": st.first_layer, "rows": st.rows, "min": st.gmin, "max": st.gmax,
                "mean": st.mean, "std": st.std}
        found = self._pixels(f"{model}'s input {st.shape}", model, st, base)
        if found is None:
            return []
        st.pixels_reported = True
        return [found]

    # ------------------------------------------------------------------ judgements
    def _nan_finding(self, model: str, arg: str, x: torch.Tensor, nonfinite: dict[str, Any]) -> Finding:
        where = nonfinite["where"]
        ev = {"model": model, "argument": arg, "shape": tuple(x.shape), "nan": nonfinite["nan"],
              "inf": nonfinite["inf"], "rows_affected": nonfinite["rows"], "where": where,
              "step": self.state.step}
        what = " and ".join(f"{n} {label}" for label, n in
                            (("NaN", nonfinite["nan"]), ("Inf", nonfinite["inf"])) if n)
        return self.finding(
            f"{model} gets {what} value(s) in its input {tuple(x.shape)} at step {self.state.step} "
            f"({where}); every loss and gradient that touches them becomes NaN",
            ev, location=model, code=_CODES["nan"], severity=Severity.ERROR)

    def _judge(self, key: tuple[int, str], st: _Stats, *, final: bool) -> list[Finding]:
        st.decided = True
        model = self._names.get(key, "model")
        base = {"model": model, "argument": key[1], "shape": st.shape, "batches": st.batches,
                "first_layer": st.first_layer,
                "rows": st.rows, "min": st.gmin, "max": st.gmax, "mean": st.mean, "std": st.std}
        where = f"{model}'s input {st.shape}"
        if st.integer_input and st.inner_ratio is None:
            return []  # integer data that never reached a layer (it crashed there): the crash explainer covers it
        if st.constant_batches == st.batches and (st.batches >= 2 or st.rows >= 16):
            if not st.learns:
                return []  # a layer only demonstrated on zeros (or probed for its output shape), never trained
            ev = {**base, "value": fmt(st.gmin)}
            return [self.finding(
                f"{where} is constant ({fmt(st.gmin)}) in all {st.batches} sampled batches: "
                "the model cannot learn anything from it", ev, location=model,
                code=_CODES["constant"], severity=Severity.ERROR)]
        out: list[Finding] = []
        rescaled = st.first_is_norm or (st.inner_ratio is not None and st.inner_ratio < 0.1)
        pixels = None if rescaled or st.pixels_reported else self._pixels(where, model, st, base)
        if pixels is not None:
            out.append(pixels)
        elif not rescaled and not st.pixels_reported:
            scales = self._scales(where, model, st, base)
            if scales is not None:
                out.append(scales)
        max_abs = max(abs(st.gmin), abs(st.gmax))
        per_row = st.unit_rows > 0 and st.other_rows == 0  # every non-zero row has a unit L1/L2 norm
        if st.gmin != st.gmax and st.std < TINY_STD and max_abs < TINY_MAX and not per_row:
            ev = {**base, "max_abs": fmt(max_abs), "std": fmt(st.std)}
            out.append(self.finding(
                f"{where} has a tiny spread (std {fmt(st.std)}, all |x| <= {fmt(max_abs)}): it looks "
                "normalised twice (or scaled far below unit size), so the first layer sees almost no signal",
                ev, location=model, code=_CODES["twice"]))
        const = self._constant_features(where, model, st, base)
        if const is not None:
            out.append(const)
        return out

    def _pixels(self, where: str, model: str, st: _Stats, base: dict[str, Any]) -> Finding | None:
        if not st.image or st.gmin < 0 or st.gmax > 255.0:
            return None
        if not ((st.all_integer and st.gmax >= 2) or st.gmax > 20):
            return None
        divisor = 16 if st.gmax <= 16 else 255
        norm_mean: Any = round(st.mean / divisor, 4)
        norm_std: Any = round(st.std / divisor, 4)
        if len(st.shape) >= 4 and 1 < st.shape[1] <= 4 and st.fsum is not None and st.fsum.numel() == st.shape[1]:
            cm, cs = st.channel_mean_std()  # per-channel statistics for transforms.Normalize
            norm_mean = tuple(round(float(v) / divisor, 4) for v in cm)
            norm_std = tuple(round(float(v) / divisor, 4) for v in cs)
        if isinstance(norm_mean, tuple):
            normalize = (f"transforms.Normalize(mean={norm_mean}, std={norm_std}) after ToTensor(), or "
                         f"x = (x / {divisor} - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1) with "
                         f"mean = torch.tensor({norm_mean}), std = torch.tensor({norm_std})")
        else:
            normalize = (f"x = (x / {divisor} - {norm_mean}) / {norm_std} "
                         f"(transforms.Normalize(({norm_mean},), ({norm_std},)))")
        ev = {**base, "divisor": divisor, "norm_mean": norm_mean, "norm_std": norm_std, "normalize": normalize,
              "range": f"{fmt(st.gmin)}..{fmt(st.gmax)}"}
        kind = "integer " if st.all_integer else ""
        if divisor == 16:
            # a few levels (scikit-learn's 8x8 digits, 0..16): measured, raw values train as well as or better
            # than x/16 or standardised ones under Adam, Adamax and SGD with momentum; advice, not a warning
            return self.finding(
                f"{where} gets raw {kind}pixel values {fmt(st.gmin)}..{fmt(st.gmax)} (mean {fmt(st.mean)}, "
                f"std {fmt(st.std)}): not normalised; at this small scale that rarely hurts, but standardised "
                "inputs are the usual default and keep learning rates comparable across data sets",
                ev, location=model, code=_CODES["pixels"], severity=Severity.INFO)
        return self.finding(
            f"{where} gets raw {kind}pixel values {fmt(st.gmin)}..{fmt(st.gmax)} (mean {fmt(st.mean)}, "
            f"std {fmt(st.std)}): inputs are not normalised, which slows or stalls training",
            ev, location=model, code=_CODES["pixels"])

    def _scales(self, where: str, model: str, st: _Stats, base: dict[str, Any]) -> Finding | None:
        if st.fsum is None or st.frows < 2:
            return None
        mean, std = st.channel_mean_std()
        rms = (mean.square() + std.square()).sqrt()
        varying = std > 0
        if not bool(varying.any()):
            return None
        rms_v = torch.where(varying, rms, torch.full_like(rms, math.nan))
        top = int(torch.nan_to_num(rms_v, nan=-1.0).argmax())
        big = float(rms[top])
        if big < LARGE_SCALE:
            return None if st.image else self._std_spread(where, model, mean, std, varying, base)
        small_idx = int(torch.nan_to_num(rms_v, nan=math.inf).argmin())
        small = float(rms[small_idx])
        ratio = big / small if small > 0 else math.inf
        unit = "channel" if st.image else "column"
        n_big = int(((rms >= LARGE_SCALE) & varying).sum())
        ev = {**base, "largest": f"{unit} {top}: mean {fmt(float(mean[top]))} std {fmt(float(std[top]))}",
              "smallest": f"{unit} {small_idx}: mean {fmt(float(mean[small_idx]))} "
                          f"std {fmt(float(std[small_idx]))}",
              "scale_ratio": fmt(ratio), "features_over_100": n_big, "n_features": int(rms.numel()),
              "means": _vec(mean.float()), "stds": _vec(std.float())}
        spread = (f"; scales differ {fmt(ratio)}x ({unit} {small_idx}: std {fmt(float(std[small_idx]))})"
                  if rms.numel() > 1 and ratio >= 10 else "")
        return self.finding(
            f"{where} is not normalised: {n_big} of {rms.numel()} {unit}s are in the hundreds or more "
            f"({unit} {top}: mean {fmt(float(mean[top]))}, std {fmt(float(std[top]))}){spread}; "
            "large inputs saturate units and make the learning rate hard to set",
            ev, location=model, code=_CODES["scales"])

    def _std_spread(self, where: str, model: str, mean: torch.Tensor, std: torch.Tensor,
                    varying: torch.Tensor, base: dict[str, Any]) -> Finding | None:
        """Columns whose spreads differ by orders of magnitude (e.g. normalised with one global std)."""
        stds = std[varying].double()
        if stds.numel() < 3:
            return None
        lo, hi = float(torch.quantile(stds, 0.1)), float(stds.max())
        if hi < 0.5 or lo <= 0 or hi / lo < SPREAD_RATIO:
            return None
        std_all = torch.where(varying, std, torch.full_like(std, math.nan))
        small_idx = int(torch.nan_to_num(std_all, nan=math.inf).argmin())
        big_idx = int(torch.nan_to_num(std_all, nan=-1.0).argmax())
        n_tiny = int((stds < hi / SPREAD_RATIO).sum())
        ev = {**base, "largest": f"column {big_idx}: mean {fmt(float(mean[big_idx]))} std {fmt(float(std[big_idx]))}",
              "smallest": f"column {small_idx}: mean {fmt(float(mean[small_idx]))} std {fmt(float(std[small_idx]))}",
              "scale_ratio": fmt(hi / lo), "n_features": int(std.numel()), "tiny_columns": n_tiny,
              "means": _vec(mean.float()), "stds": _vec(std.float())}
        return self.finding(
            f"{where} has columns on very different scales: their stds span {fmt(hi / lo)}x (largest vs "
            f"10th percentile); {n_tiny} of {std.numel()} columns vary by less than {fmt(hi / SPREAD_RATIO)} "
            f"(column {small_idx}: std {fmt(float(std[small_idx]))}) next to column {big_idx} (std "
            f"{fmt(float(std[big_idx]))}), as when one global mean/std is used instead of per-column statistics",
            ev, location=model, code=_CODES["scales"])

    def _constant_features(self, where: str, model: str, st: _Stats,
                           base: dict[str, Any]) -> Finding | None:
        if st.fmin is None or st.fmax is None or st.crows < 32 or st.batches < 2:
            return None
        n = st.fmin.numel()
        if n < 4:
            return None
        const = st.fmin == st.fmax
        n_const = int(const.sum())
        share = n_const / n
        if share < (0.8 if st.image else 0.5) or st.fzero is None:
            return None
        varying = ~const
        sparse_share = float(st.fzero[varying].sum()) / max(int(varying.sum()) * st.crows, 1)
        if sparse_share > 0.5:
            return None  # sparse inputs (one-hot, bag-of-words, dark images): rare columns just did not show up
        idx = const.nonzero().flatten()[:5].tolist()
        examples = ", ".join(f"feature {i} = {fmt(float(st.fmin[i]))}" for i in idx)
        ev = {**base, "n_constant": n_const, "n_features": n, "share": round(share, 3), "examples": examples}
        return self.finding(
            f"{n_const} of {n} input features ({share:.0%}) of {where} never change over "
            f"{st.crows} sampled rows (e.g. {examples}): most of the input carries no information",
            ev, location=model, code=_CODES["const_features"])


@register
class BinaryTargetRange(Check):
    """BCE-style losses need targets in [0, 1]; {0, 255} masks or {1, 2} labels are a bug."""

    code = "preprocessing.bce-target-out-of-range"
    needs = ("loss",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name not in _BCE_LOSSES or event.target is None or event.site in self._reported:
            return ()
        t = event.target
        if not t.is_floating_point() or t.numel() == 0:
            return ()
        t = t.detach()
        lo, hi = t.min().item(), t.max().item()
        if lo >= 0.0 and hi <= 1.0:
            return ()
        self._reported.add(event.site)
        values = torch.unique(t.flatten()[:4096])
        vals = values.tolist()
        if len(vals) <= 2 and lo >= 0 and hi > 1:
            suggestion = f"y = (y == {fmt(hi)}).float()" if len(vals) == 2 else f"y = y / {fmt(hi)}"
            if len(vals) == 2 and lo == 1.0:
                suggestion = f"y = y - 1 (labels are {fmt(lo)}/{fmt(hi)})"
        elif lo < 0 and len(vals) == 2 and hi == 1.0:
            suggestion = "y = (y + 1) / 2 (labels are -1/1)"
        else:
            suggestion = f"y = (y - {fmt(lo)}) / ({fmt(hi)} - {fmt(lo)}) or threshold them"
        ev = {"loss": f"F.{event.name}", "target_shape": tuple(t.shape), "target_min": lo, "target_max": hi,
              "target_values": [fmt(v) for v in vals[:8]], "site": event.site, "suggestion": suggestion}
        shown = ", ".join(fmt(v) for v in vals[:6]) + (", ..." if len(vals) > 6 else "")
        return [self.finding(
            f"F.{event.name} needs targets in [0, 1] but gets values {{{shown}}} (min {fmt(lo)}, max "
            f"{fmt(hi)}) at {event.site or 'the loss'}: the loss is wrong and can go negative",
            ev, location=event.site or f"F.{event.name}")]


@register
class ScaledClassTargets(Check):
    """Float targets that are small class ids divided by 255 ({0, 1/255, 2/255...}): labels scaled like pixels."""

    code = "preprocessing.labels-scaled-like-pixels"
    needs = ("loss",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        #: per loss call site: [matching calls, values seen, distinct ids seen (bitmask), settled]
        self._tallies: dict[str, list[int]] = {}

    def check(self, event: LossCall) -> Iterable[Finding]:
        if event.name not in _VALUE_TARGET_LOSSES or event.target is None:
            return ()
        t = event.target
        if not t.is_floating_point() or t.numel() == 0:
            return ()
        tally = self._tallies.setdefault(event.site, [0, 0, 0, 0])
        if tally[3]:
            return ()
        t = t.detach().flatten()[:65536].float()
        lo, hi = t.min().item(), t.max().item()
        ids = t * 255.0
        rounded = ids.round()
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi > _SCALED_MAX_ID / 255.0 + 1e-6 \
                or bool(((ids - rounded).abs() > 1e-3).any()):
            tally[3] = 1  # real values at this call site: never judge it again
            return ()
        for v in torch.unique(rounded).tolist():
            tally[2] |= 1 << int(v)
        tally[0] += 1
        tally[1] += t.numel()
        seen = [i for i in range(_SCALED_MAX_ID + 1) if tally[2] >> i & 1]
        if tally[0] < _SCALED_CALLS or tally[1] < _SCALED_VALUES or len(seen) < 2:
            return ()
        tally[3] = 1
        shown = ", ".join("0" if i == 0 else f"{i}/255" for i in seen[:6]) + (", ..." if len(seen) > 6 else "")
        ev = {"loss": f"F.{event.name}", "target_values": [round(i / 255.0, 6) for i in seen[:16]],
              "ids": seen[:16], "calls": tally[0], "values_seen": tally[1], "target_shape": tuple(event.target.shape),
              "site": event.site}
        return [self.finding(
            f"F.{event.name} gets targets that are only {{{shown}}} in {tally[0]} sampled calls ({tally[1]} "
            f"values, max {fmt(hi)}): these are class ids {seen[:8]} divided by 255, so the labels are nearly "
            f"0 everywhere and the model learns to predict ~0 instead of the classes",
            ev, location=event.site or f"F.{event.name}")]
