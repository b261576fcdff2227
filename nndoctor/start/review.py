"""``nndoctor start``: review an experiment against the field guide's "start simple".

Checks the architecture family against the input type, the optimizer and lr against the
defaults (Adam, 3e-4), the init scale against the activation (He for ReLU, Glorot for
tanh), regularisation and normalisation layers present from the start, input statistics
measured from the data, training-set size and number of classes. Departures from the
defaults are advice (``info``); only what likely hurts (inputs far from normalised, an lr
far outside any working range, constant weights, strong class imbalance) is a warning or
an error. Nothing is trained and nothing is changed.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor import catalogue
from nndoctor.experiment import Experiment, ExperimentError, preserved, split_batch, to_device
from nndoctor.findings import Finding, Report, Severity
from nndoctor.start.baseline import baseline, describe, input_kind

__all__ = ["data_stats", "review"]

_RELU = {"relu", "relu_", "leaky_relu", "elu", "gelu", "silu", "relu6", "prelu", "selu", "mish", "hardswish"}
_SQUASH = {"tanh", "sigmoid", "tanh_", "sigmoid_"}
_SCHEME = {True: "kaiming_normal_(weight, nonlinearity='relu')", False: "xavier_normal_(weight)"}


def _f(code: str, severity: Severity, message: str, evidence: dict[str, Any], location: str = "",
       **fill: Any) -> Finding:
    return catalogue.finding(code, message, evidence, severity=severity, location=location, fill=fill)


class _OpRecorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.names.add(getattr(func, "__name__", ""))
        return func(*args, **(kwargs or {}))


def data_stats(exp: Experiment, max_examples: int = 2048) -> dict[str, Any]:
    """Input statistics, label counts and dataset size from the first batches of ``train``."""
    xs, ys, seen = [], [], 0
    for batch in exp.train:
        try:
            b = split_batch(batch)
        except ExperimentError:  # a batch only the custom step understands
            break
        x = (b.inputs or tuple(b.kwargs.values()))
        xs.append(x[0] if len(x) == 1 else x)
        ys.append(b.target)
        seen += int(b.target.shape[0]) if isinstance(b.target, torch.Tensor) and b.target.dim() else 1
        if seen >= max_examples:
            break
    stats: dict[str, Any] = {"examples_read": seen}
    dataset = getattr(exp.train, "dataset", None)
    try:
        stats["train_size"] = len(dataset) if dataset is not None else None  # type: ignore[arg-type]
    except TypeError:
        stats["train_size"] = None
    first = xs[0] if xs else None
    stats["kind"] = input_kind(first) if first is not None else "unknown"
    if isinstance(first, torch.Tensor) and first.is_floating_point():
        x = torch.cat([t.detach().float().reshape(t.shape[0], -1).cpu() for t in xs])
        finite = x[torch.isfinite(x)]
        stats.update(mean=float(finite.mean()) if finite.numel() else math.nan,
                     std=float(finite.std()) if finite.numel() > 1 else 0.0,
                     min=float(finite.min()) if finite.numel() else math.nan,
                     max=float(finite.max()) if finite.numel() else math.nan,
                     nonfinite=int((~torch.isfinite(x)).sum()),
                     shape=tuple(first.shape[1:]))
        if stats["kind"] == "tabular" and x.shape[0] > 1:
            stats["constant_features"] = int((x.std(0) == 0).sum())
            col_std = x.std(0)
            stats["max_feature_std"] = float(col_std.max())
    y = torch.cat([t.detach().reshape(t.shape[0], -1).cpu() for t in ys if isinstance(t, torch.Tensor)]) if ys else None
    if y is not None and not y.is_floating_point() and y.shape[1] == 1:
        counts = Counter(y.flatten().tolist())
        stats["classes"] = len(counts)
        stats["class_counts"] = dict(sorted(counts.items()))
    elif y is not None and y.is_floating_point():
        stats["target_mean"], stats["target_std"] = float(y.mean()), float(y.std()) if y.numel() > 1 else 0.0
    return stats


def _architecture(exp: Experiment, kind: str, ops: set[str], example: Any, out_shape: tuple[int, ...]) -> list[Finding]:
    mods = list(exp.model.modules())
    has = {
        "conv": any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in mods) or bool(ops & {"conv2d", "conv1d"}),
        "rnn": any(isinstance(m, (nn.RNNBase, nn.MultiheadAttention, nn.TransformerEncoderLayer)) for m in mods),
    }
    first = None
    if out_shape:
        first = describe(baseline(example, out_shape))
    out: list[Finding] = []
    want = {"images": ("conv", "a LeNet-like conv net"), "sequences": ("rnn", "a one-layer LSTM"),
            "tokens": ("rnn", "an embedding + one-layer LSTM")}
    if kind in want and not has[want[kind][0]] and not (kind != "images" and has["conv"]):
        out.append(_f("fit.start-architecture-for-input", Severity.INFO,
                      f"the inputs look like {kind} but the model has no "
                      f"{'convolution' if kind == 'images' else 'recurrent or attention'} layer; the guide "
                      f"starts with {want[kind][1]}",
                      {"input_kind": kind, "suggested_first_model": first}))
    params = sum(p.numel() for p in exp.model.parameters())
    if params > 5_000_000:
        out.append(_f("fit.start-large-model", Severity.INFO,
                      f"the model has {params:,} parameters; start with a small model that trains in "
                      "minutes, then add capacity when bias dominates",
                      {"parameters": params, "suggested_first_model": first}))
    return out


def _optimizer(exp: Experiment) -> list[Finding]:
    opt = exp.optimizer
    assert opt is not None
    g = opt.param_groups[0]
    lr = float(g.get("lr", 0.0))
    name = type(opt).__name__
    ev = {"optimizer": name, "lr": lr}
    out: list[Finding] = []
    adaptive = name in ("Adam", "AdamW", "RAdam", "NAdam", "Adamax", "RMSprop", "Adagrad")
    # small models train well up to Adam 0.05 (benchmarks/lr_find.py); warn only far beyond
    lo, hi = ((1e-6, 0.1) if adaptive else (1e-4, 1.0))
    if lr > hi or lr < lo:
        out.append(_f("lr.start-far-from-working-range", Severity.WARNING,
                      f"{name} lr={lr:.3g} is far outside the usual range for {name} ({lo:g} .. {hi:g}); "
                      f"training will likely {'diverge' if lr > hi else 'barely move'}",
                      ev))
    elif name not in ("Adam", "AdamW"):
        out.append(_f("optimizer.start-with-adam", Severity.INFO,
                      f"the guide starts with Adam (lr 3e-4); this experiment uses {name} lr={lr:.3g}",
                      ev))
    elif not 1e-4 <= lr <= 1e-3:
        out.append(_f("lr.start-default", Severity.INFO,
                      f"{name} lr={lr:.3g}: the guide's starting point is 3e-4", ev))
    return out


def _init(exp: Experiment, ops: set[str]) -> list[Finding]:
    out: list[Finding] = []
    relu, squash = bool(ops & _RELU), bool(ops & _SQUASH) and not ops & _RELU
    names = {id(m): n for n, m in exp.model.named_modules()}
    layers = [m for m in exp.model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    ratios = []
    for i, m in enumerate(layers):
        w = m.weight.detach()
        if w.numel() < 2:
            continue
        where = names.get(id(m), "") or type(m).__name__
        fan_in = w[0].numel()
        fan_out = w.shape[0] * (w[0, 0].numel() if w.dim() > 2 else 1)
        std = float(w.float().std())
        if bool((w == w.flatten()[0]).all()):
            out.append(_f("init.start-constant-weights", Severity.ERROR if i < len(layers) - 1 else Severity.WARNING,
                          f"every weight of {where} has the same value ({float(w.flatten()[0]):.3g}): its units "
                          "stay identical (symmetry is never broken)", {"layer": where, "shape": tuple(w.shape)},
                          location=where))
            continue
        ideal = math.sqrt(2 / fan_in) if relu else math.sqrt(2 / (fan_in + fan_out))
        ratios.append(std / ideal)
        if not 0.1 <= std / ideal <= 10:
            out.append(_f("init.start-scale", Severity.WARNING,
                          f"{where} weights have std {std:.3g}, {std / ideal:.2g}x the "
                          f"{'He' if relu else 'Glorot'} scale {ideal:.3g}: activations will "
                          f"{'explode' if std > ideal else 'vanish'} through the layers",
                          {"layer": where, "std": std, "ideal_std": ideal, "shape": tuple(w.shape)},
                          location=where, scheme=_SCHEME[relu]))
    if ratios and (relu or squash) and not out:
        med = sorted(ratios)[len(ratios) // 2]
        if not 0.7 <= med <= 1.4:
            scheme = "He normal (kaiming_normal_, for ReLU)" if relu else "Glorot normal (xavier_normal_, for tanh)"
            out.append(_f("init.start-scheme", Severity.INFO,
                          f"weights are {med:.2g}x the {scheme} scale (PyTorch's default init is ~0.41x He); "
                          "the guide starts with the init that matches the activation",
                          {"median_ratio": med, "activation": "relu" if relu else "tanh/sigmoid"}, scheme=scheme))
    return out


def _regularisation(exp: Experiment) -> list[Finding]:
    mods = list(exp.model.modules())
    drop = [m for m in mods if isinstance(m, nn.modules.dropout._DropoutNd)]
    norm = [m for m in mods if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm))]
    wd = max((float(g.get("weight_decay", 0.0) or 0.0) for g in exp.optimizer.param_groups), default=0.0)  # type: ignore[union-attr]
    out: list[Finding] = []
    if drop or wd > 0:
        out.append(_f("regularization.start-without", Severity.INFO,
                      f"regularisation from the start ({len(drop)} dropout layers, weight decay {wd:g}); the "
                      "guide adds it only once the model overfits (variance dominates)",
                      {"dropout_layers": len(drop), "max_dropout": max((m.p for m in drop), default=0.0),
                       "weight_decay": wd}))
    if norm:
        out.append(_f("regularization.start-without-normalisation", Severity.INFO,
                      f"{len(norm)} normalisation layers from the start; the guide adds them later "
                      "(they can hide bugs in the first version)", {"normalisation_layers": len(norm)}))
    return out


def _data(stats: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if stats.get("nonfinite"):
        out.append(_f("preprocessing.start-nonfinite-inputs", Severity.ERROR,
                      f"{stats['nonfinite']} NaN/Inf values in the first {stats['examples_read']} training inputs",
                      {"nonfinite": stats["nonfinite"]}))
    if "std" in stats:
        mean, std, hi = stats["mean"], stats["std"], max(abs(stats["min"]), abs(stats["max"]))
        ev = {k: stats[k] for k in ("mean", "std", "min", "max")}
        far = abs(mean) > 5 or std > 10 or std < 1e-3 or hi > 100 or (
            stats["kind"] == "tabular" and stats.get("max_feature_std", 0) > 50)
        if far:
            fix = ("Scale images to [0, 1] (divide by 255) or [-0.5, 0.5]." if stats["kind"] == "images"
                   else "Standardise each input feature: subtract the training mean, divide by the training std.")
            out.append(_f("preprocessing.start-inputs-not-normalised", Severity.WARNING,
                          f"inputs are not normalised: mean {mean:.3g}, std {std:.3g}, range "
                          f"[{stats['min']:.3g}, {stats['max']:.3g}]", ev, scaling=fix))
        elif abs(mean) > 1 or std > 3:
            out.append(_f("preprocessing.start-inputs-roughly-normalised", Severity.INFO,
                          f"inputs are only roughly normalised (mean {mean:.3g}, std {std:.3g}); the guide "
                          "uses zero mean and unit std", ev))
        if stats.get("constant_features"):
            out.append(_f("preprocessing.start-constant-features", Severity.INFO,
                          f"{stats['constant_features']} input features are constant in the first "
                          f"{stats['examples_read']} examples", {"constant_features": stats["constant_features"]}))
    if stats.get("target_std", 0) > 100 or abs(stats.get("target_mean", 0)) > 100:
        out.append(_f("preprocessing.start-targets-not-scaled", Severity.INFO,
                      f"regression targets have mean {stats['target_mean']:.3g} and std "
                      f"{stats['target_std']:.3g}; standardised targets train faster",
                      {"target_mean": stats["target_mean"], "target_std": stats["target_std"]}))
    size = stats.get("train_size")
    if size and size > 20_000:
        out.append(_f("data.start-simplify", Severity.INFO,
                      f"{size:,} training examples: the guide first works on ~10,000 so each try takes minutes",
                      {"train_size": size}))
    counts = stats.get("class_counts") or {}
    if counts:
        k = len(counts)
        if k > 20:
            out.append(_f("data.start-fewer-classes", Severity.INFO,
                          f"{k} classes seen in the first {stats['examples_read']} examples; a first version on "
                          "a few classes is quicker to debug", {"classes": k}))
        ratio = max(counts.values()) / max(1, min(counts.values()))
        if k > 1 and ratio > 10 and stats["examples_read"] >= 20 * k:
            out.append(_f("data.start-class-imbalance", Severity.WARNING,
                          f"the most frequent class is {ratio:.0f}x as common as the rarest "
                          f"({max(counts.values())} vs {min(counts.values())} of {stats['examples_read']})",
                          {"imbalance_ratio": ratio, "class_counts": counts}))
    return out


def review(exp: Experiment) -> Report:
    """Findings (``Step.START``) for ``exp`` against the guide's "start simple" defaults."""
    with torch.random.fork_rng(devices=[]):
        return _review(exp)


def _review(exp: Experiment) -> Report:
    batch = to_device(next(iter(exp.train)), exp.device)
    out_shape: tuple[int, ...] = ()
    ops: set[str] = set()
    example: Any = None
    if exp.step is not None:  # run the custom step once to see the activations
        rec = _OpRecorder()
        with preserved(exp.model, None), torch.no_grad(), rec:  # batch-norm statistics stay as they are
            exp.step(exp.model, batch)
        ops = rec.names
    else:
        b = split_batch(batch)
        example = b.inputs or tuple(b.kwargs.values())
        rec = _OpRecorder()
        with preserved(exp.model, None), torch.no_grad(), rec:
            out = exp.model(*b.inputs, **b.kwargs)
        if isinstance(out, torch.Tensor) and out.dim():
            out_shape = tuple(out.shape[1:])
        ops = rec.names
    stats = data_stats(exp)
    findings = _data(stats)
    findings += _architecture(exp, stats.get("kind", "unknown"), ops, example, out_shape) if example is not None else []
    findings += _optimizer(exp) + _init(exp, ops) + _regularisation(exp)
    if exp.train_val is None:
        findings.append(_f("fit.start-no-validation", Severity.INFO,
                           "no train_val set: without it under- and overfitting cannot be told apart", {}))
    facts = {"command": "start", "experiment": exp.name, "hyperparameters": exp.hyperparameters,
             "input_kind": stats.get("kind"), "data": {k: v for k, v in stats.items() if k != "class_counts"},
             "parameters": sum(p.numel() for p in exp.model.parameters()),
             "optimizer": type(exp.optimizer).__name__}
    if example is not None and out_shape:
        facts["first_model"] = describe(baseline(example, out_shape))
    return Report(findings=findings, facts=facts)
