"""The sample of observed data the dataset checks judge (collected by :class:`DataCollector`).

Training batches are looked at on sampled steps only (the first steps, then one in
``Schedule.every``): the inputs' rows are fingerprinted and a few thousand (input,
target) pairs are kept. Evaluation forwards (no gradient) are fingerprinted and grouped
into passes: one DataLoader iteration, or for batches the script slices itself, a run
of equal-sized batches ending with a smaller one. Everything is bounded.

A model that runs without gradient on the very batch tensor another model trains on in the same
step (a distillation teacher, a target network, an EMA copy, a frozen reference model) is part of
the training step, not an evaluation: once seen (on a sampled step), its forwards make no
evaluation passes and the passes it made before are dropped.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.loss_weights import LossWeights
from nndoctor.monitor.events import ModelInput, OpCall, Targets
from nndoctor.monitor.loose_input import INPUT_OPS, loose_input

__all__ = ["DataCollector", "EvalPass", "ObservedData", "add_confusion", "class_targets", "example_hashes",
           "first_tensor", "row_hashes"]

KEY = "nndoctor.observed_data"
#: models whose training examples are fingerprinted apart (ObservedData.train_hashes_by_model)
MAX_MODELS_FINGERPRINTED = 32
MAX_TRAIN_HASHES = 200_000
MAX_PASS_ROWS = 200_000
MAX_EVAL_ROWS = 1_000_000
MAX_PASS_BATCHES = 4096
MAX_PAIRS = 4096
MAX_CONFUSION_CLASSES = 32
MAX_FEATURES = 1024  # probe features per example (wider inputs are projected)
MAX_HASHED_VALUES = 65_536  # per example; wider inputs are fingerprinted on a strided subset
MAX_DENSIFIED = 1 << 22  # a sparse input with more elements is not densified to be fingerprinted
_UNMATCHED = itertools.count()  # fingerprints that match nothing (rows with no dense form)
CLASSIFICATION_LOSSES = frozenset({"cross_entropy", "nll_loss"})
BINARY_LOSSES = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})


def first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _dense(x: torch.Tensor) -> torch.Tensor | None:
    """``x`` as a strided tensor: a sparse one (a graph's adjacency, ``torch.sparse``) densified when it
    is small, else None (no fingerprint: reshape has no sparse kernel); nested tensors have none."""
    if x.layout == torch.strided and not x.is_nested:
        return x
    if x.is_nested or x.numel() > MAX_DENSIFIED:
        return None
    try:
        return x.to_dense()
    except (RuntimeError, TypeError, NotImplementedError):
        return None


def row_hashes(x: torch.Tensor) -> tuple[list[int], np.ndarray]:
    """One fingerprint per example (row along dim 0) and a mask of constant rows. A tensor with no
    dense form (a large sparse or a nested one) gives each row its own fingerprint (no match)."""
    n = int(x.shape[0])
    dense = _dense(x.detach())
    if dense is None:
        return [hash(("no-dense-form", next(_UNMATCHED))) for _ in range(n)], np.zeros(n, dtype=bool)
    t = dense
    rows = t.reshape(n, -1)
    if rows.shape[1] > MAX_HASHED_VALUES:
        rows = rows[:, :: math.ceil(rows.shape[1] / MAX_HASHED_VALUES)]
    if rows.dtype in (torch.bfloat16, torch.float16) or rows.is_complex():
        rows = rows.float() if not rows.is_complex() else torch.view_as_real(rows).reshape(n, -1)
    a = np.ascontiguousarray(rows.cpu().numpy())
    constant = (a.min(axis=1) == a.max(axis=1)) if a.shape[1] else np.ones(n, dtype=bool)
    return [hash(a[i].tobytes()) for i in range(n)], constant


def example_hashes(x: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[int], np.ndarray]:
    """:func:`row_hashes` of an example made of every tensor input with ``x``'s rows (a tabular model's
    categorical ids and numeric columns, ``model(cats, nums)``): low-cardinality ids alone recur across
    distinct examples. A row is constant when all its inputs are."""
    hashes, constant = row_hashes(x)
    n = int(x.shape[0])
    others = [v for v in list(args) + list(kwargs.values())
              if isinstance(v, torch.Tensor) and v is not x and v.dim() >= 1 and int(v.shape[0]) == n
              and _dense(v) is v]  # (a sparse adjacency beside a graph's node features is no part of an example)
    for v in others:
        more, flat = row_hashes(v)
        hashes = [hash((a, b)) for a, b in zip(hashes, more)]
        constant = constant & flat
    return hashes, constant


def class_targets(event: Targets) -> tuple[np.ndarray, np.ndarray | None, int | None] | None:
    """``(targets, predictions or None, number of classes or None)`` for a classification batch."""
    name, inp, target = event.name, event.input, event.target
    if name in CLASSIFICATION_LOSSES:
        if inp.dim() < 2 or target.dim() != inp.dim() - 1 or target.is_floating_point():
            return None  # soft labels or an unusual layout
        n_classes = int(inp.shape[1])
        y = target.detach().reshape(-1).cpu().numpy().astype(np.int64)
        pred = inp.detach().argmax(1).reshape(-1).cpu().numpy().astype(np.int64)
    elif name in BINARY_LOSSES:
        if inp.shape != target.shape or not (inp.dim() == 1 or (inp.dim() == 2 and inp.shape[1] == 1)):
            return None  # multi-label: no single class per example
        y_f = target.detach().reshape(-1).float().cpu().numpy()
        if not np.all((y_f == 0) | (y_f == 1)):
            return None
        n_classes, y = 2, y_f.astype(np.int64)
        threshold = 0.0 if name.endswith("with_logits") else 0.5
        pred = (inp.detach().reshape(-1).float().cpu().numpy() > threshold).astype(np.int64)
    elif name == "compare":
        y_f = target.detach().reshape(-1).double().cpu().numpy()
        if not np.all(np.isfinite(y_f)) or np.any(y_f != np.round(y_f)) or np.any(y_f < 0):
            return None
        n_classes, y = None, y_f.astype(np.int64)
        pred = inp.detach().reshape(-1).cpu().numpy().astype(np.int64)
    else:
        return None
    keep = (y >= 0) & (y < (n_classes or 1 << 30))
    if not keep.all():
        y, pred = y[keep], pred[keep]
    return y, pred, n_classes


def add_confusion(confusion: np.ndarray | None, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``confusion`` (true x predicted counts, MAX_CONFUSION_CLASSES square) plus this batch."""
    k = MAX_CONFUSION_CLASSES
    keep = (y >= 0) & (y < k) & (pred >= 0) & (pred < k)
    new = np.bincount(y[keep] * k + pred[keep], minlength=k * k).reshape(k, k)
    return new if confusion is None else confusion + new


def _add(counts: np.ndarray | None, values: np.ndarray, size: int) -> np.ndarray:
    new = np.bincount(values, minlength=size)
    if counts is None:
        return new
    if len(counts) < len(new):
        counts = np.pad(counts, (0, len(new) - len(counts)))
    elif len(new) < len(counts):
        new = np.pad(new, (0, len(counts) - len(new)))
    return counts + new


@dataclass
class EvalPass:
    """One evaluation pass: the fingerprints of its examples and its classification results."""

    step: int
    loader: Any = None  # LoaderInfo, or None for batches the script made itself
    hashes: list[int] = field(default_factory=list)
    constant_rows: int = 0
    rows: int = 0
    batches: int = 0
    last_batch: int = 0
    smaller_seen: bool = False
    capped: bool = False
    counts: np.ndarray | None = None  # targets per class
    wrong: np.ndarray | None = None  # misclassified per class
    #: (true class, predicted class) counts, classes < MAX_CONFUSION_CLASSES only
    confusion: np.ndarray | None = None
    forward: int = -1  # forward call whose targets were counted last (one count per batch)
    models: set[str] = field(default_factory=set)  # the models whose forwards made this pass
    #: len(hashes) after each batch (script-made passes only, bounded): where the batches start,
    #: so that a pass mixing batches of several splits can be cut by where they came from
    batch_ends: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.loader is not None and self.loader.name:
            return self.loader.name
        return "evaluation batches" if self.loader is None else "an evaluation DataLoader"


@dataclass
class ObservedData:
    """What the dataset checks judge (``state.extra["nndoctor.observed_data"]``)."""

    train_counts: np.ndarray | None = None
    n_classes: int | None = None
    weighted_loss: bool = False
    #: the training loss's class weighting (what predicting the priors costs under it)
    weights: LossWeights = field(default_factory=LossWeights)
    train_target_batches: int = 0
    batch_purity: list[float] = field(default_factory=list)  # share of the majority class per batch
    batch_sizes: list[int] = field(default_factory=list)
    train_hashes: Counter[int] = field(default_factory=Counter)
    #: the step at which each fingerprinted training example was first seen (an evaluation before it
    #: cannot have been flattered by training on it)
    train_first_step: dict[int, int] = field(default_factory=dict)
    #: the fingerprinted training examples of each model (k-fold cross-validation trains one model per
    #: fold, each evaluated on rows only the others train on); at most MAX_MODELS_FINGERPRINTED models
    train_hashes_by_model: dict[str, set[int]] = field(default_factory=dict)
    train_rows_hashed: int = 0
    train_batch_duplicates: int = 0  # repeated rows inside one training batch
    #: training rows a step used without their labels beside labelled ones (:mod:`.unlabelled`), and how often
    unlabelled_hashes: Counter[int] = field(default_factory=Counter)
    train_loaders: set[int] = field(default_factory=set)
    train_datasets: set[int] = field(default_factory=set)  # the training loaders' own datasets
    train_dataset_lens: set[int] = field(default_factory=set)
    passes: list[EvalPass] = field(default_factory=list)
    eval_rows: int = 0
    pairs_x: list[np.ndarray] = field(default_factory=list)
    pairs_y: list[np.ndarray] = field(default_factory=list)
    pair_rows: int = 0
    pair_loss: str = ""
    single_input: bool = True
    #: some training targets were per element (tokens, pixels: an (N, L) target), not one per
    #: example: class shares then describe tokens, which are imbalanced by nature
    element_targets: bool = False
    #: training loader iterations (epochs) and steps the counted targets came from
    target_iterations: set[int] = field(default_factory=set)
    target_steps: list[int] = field(default_factory=list)  # first and latest
    target_losses: set[str] = field(default_factory=set)
    #: models that ran without gradient on the batch another model trained on in the same step
    companions: set[str] = field(default_factory=set)
    #: per label space (loss and its number of classes: a GAN's real/fake BCE targets and a class
    #: head's labels are different spaces): class counts, and each batch's purity and size
    spaces: dict[str, tuple[np.ndarray | None, list[float], list[int]]] = field(default_factory=dict)
    #: per label space: the targets of its single-class batches, by class
    space_pure: dict[str, np.ndarray] = field(default_factory=dict)

    def revisited(self) -> bool:
        """Some sampled training rows were seen in two sampled batches: the sample spans the data."""
        return any(c >= 2 for c in self.train_hashes.values())

    @staticmethod
    def of(state: Any) -> ObservedData | None:
        return state.extra.get(KEY)

    def unshuffled(self, optimizers: int = 1) -> bool:
        """Most sampled training batches hold one class, far more than random batches would.

        Two classes with several optimizers are a GAN's real/fake batches, not sorted data. Targets
        of different label spaces (a GAN's real/fake BCE and a class head's cross entropy, with its
        constant 'fake' class) are judged apart: mixed, every real/fake batch would look sorted; a
        two-class space beside another (all-real / all-fake, all-source / all-target) is not judged.
        """
        if len(self.spaces) > 1:  # (a two-class space beside another: real/fake targets, even with one optimizer)
            return any(_unshuffled(c, p, b, max(optimizers, 2)) for c, p, b in self.spaces.values())
        return _unshuffled(self.train_counts, self.batch_purity, self.batch_sizes, optimizers)

    def pure_batches_by_chance(self) -> float:
        """The chance that random batches of the observed class mix and sizes hold as many single-class
        batches as were sampled (binomial tail; 1.0 when several label spaces are mixed or nothing is known)."""
        if len(self.spaces) > 1 or self.train_counts is None or not self.batch_purity:
            return 1.0
        _, q = _pure_batches(self.train_counts, self.batch_purity, self.batch_sizes)
        n, k = len(self.batch_purity), sum(p >= 0.999 for p in self.batch_purity)
        q = min(max(q, 0.0), 1.0)
        return float(sum(math.comb(n, j) * q ** j * (1 - q) ** (n - j) for j in range(k, n + 1)))

    def add_space(self, key: str, y: np.ndarray, n_classes: int) -> None:
        counts, purity, sizes = self.spaces.get(key) or (None, [], [])
        if len(self.spaces) >= 8 and key not in self.spaces:
            return
        if y.size >= 8:
            purity.append(float(np.bincount(y).max() / y.size))
            sizes.append(int(y.size))
            if purity[-1] >= 0.999:
                self.space_pure[key] = _add(self.space_pure.get(key), y, n_classes)
        self.spaces[key] = (_add(counts, y, n_classes), purity, sizes)

    def class_counts(self) -> np.ndarray | None:
        """The training targets' class counts that describe the data. With several label spaces:
        the one with the most classes (a class head beside real/fake BCE targets), less its
        single-class batches when they are far more common than chance makes them (a constant
        target made by the script, a semi-supervised GAN's 'fake' class, not a class of the data)."""
        if len(self.spaces) <= 1:
            return self.train_counts
        key = max(self.spaces, key=lambda k: 0 if self.spaces[k][0] is None else np.count_nonzero(self.spaces[k][0]))
        counts, purity, sizes = self.spaces[key]
        pure = self.space_pure.get(key)
        if counts is None or pure is None or not purity:
            return counts
        observed, expected = _pure_batches(counts, purity, sizes)
        rest = counts.copy()
        rest[: len(pure)] -= pure[: len(rest)]
        if observed < expected + 0.25 or rest.sum() <= 0:
            return counts
        return rest


def _pure_batches(counts: np.ndarray, purity: list[float], sizes: list[int]) -> tuple[float, float]:
    """The share of single-class batches observed, and the share random batches of these sizes
    drawn from this class mix would have."""
    observed = float(np.mean([p >= 0.999 for p in purity]))
    share = counts[counts > 0] / counts.sum()
    expected = float(np.mean([np.sum(share ** b) for b in sizes]))
    return observed, expected


def _unshuffled(counts: np.ndarray | None, purity: list[float], sizes: list[int], optimizers: int) -> bool:
    present = 0 if counts is None else int(np.count_nonzero(counts))
    if counts is None or present < 2 or (present == 2 and optimizers > 1) or len(purity) < 4:
        return False
    observed, expected = _pure_batches(counts, purity, sizes)
    return observed >= 0.75 and observed >= expected + 0.5


def probe_features(x: torch.Tensor) -> np.ndarray | None:
    """Per-example features for the probes: flattened values, or bag-of-ids for token inputs."""
    t = x.detach()
    n = int(t.shape[0])
    if t.is_floating_point():
        rows = t.reshape(n, -1)
        d = rows.shape[1]
        if d > 4 * MAX_FEATURES:  # strided subset, then averaged in groups: keeps image layout
            rows = rows[:, :: math.ceil(d / (4 * MAX_FEATURES))]
        a = rows.float().cpu().numpy().astype(np.float32)
        if a.shape[1] > MAX_FEATURES:
            groups = math.ceil(a.shape[1] / MAX_FEATURES)
            pad = groups * MAX_FEATURES - a.shape[1]
            a = np.pad(a, ((0, 0), (0, pad))).reshape(n, MAX_FEATURES, groups).mean(axis=2)
        return a
    if t.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8) and t.dim() >= 2:
        ids = t.reshape(n, -1).cpu().numpy().astype(np.int64)
        bag = np.zeros((n, 512), dtype=np.float32)
        np.add.at(bag, (np.repeat(np.arange(n), ids.shape[1]), (ids % 512).reshape(-1)), 1.0)
        return bag
    return None


@register
class DataCollector(Check):
    """Keeps the bounded sample of observed data; reports nothing itself."""

    code = "data.observed-sample"
    needs = ("model_input", "eval_input", "targets", "op")
    sampled_only = frozenset({"model_input"})  # training batches are sampled; evaluation ones all seen
    ops = INPUT_OPS  # the input of a network without nn.Module (nndoctor/monitor/loose_input.py)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.data = ObservedData()
        state.extra[KEY] = self.data
        self._fetches_seen = -1
        self._train_iteration = -1
        # a training loader's dataset length, counted once a backward pass follows its batches (a test
        # loader run through the model with gradients on, as in a script that never calls no_grad, trains nothing)
        self._pending_len: tuple[int, int] | None = None  # (dataset length, backward calls when noted)
        self._pass: EvalPass | None = None
        self._pass_step = -1
        # (step, rows, the batch whose probe features are kept once its targets pair with it)
        self._pending: tuple[int, int, torch.Tensor | None] | None = None
        self._step_data: tuple[int, list[tuple[int, int, torch.Tensor | None]]] = (-1, [])  # this step's data batches
        # this step's no-gradient forwards and its training forward: (model, batch tensor identity)
        self._step_inputs: tuple[int, list[tuple[str, tuple[Any, ...]]], list[tuple[str, tuple[Any, ...]]]] = (-1, [], [])

    def check(self, event: ModelInput | Targets | OpCall) -> Iterable[Finding]:
        if isinstance(event, OpCall):
            loose = loose_input(self.state, event)
            if loose is None:
                return ()
            event = loose
        self._confirm_len()
        kind = event.kind
        if kind == "eval_input":
            self._on_eval_input(event)  # type: ignore[arg-type]
        elif kind == "model_input":
            if event.grad_enabled:  # type: ignore[union-attr]
                self._pass = None
                loaders = self.state.loaders
                if loaders is not None and loaders.current is not None \
                        and loaders.current.iteration != self._train_iteration:
                    self._note_train_loader(loaders.current)
                self._on_train_input(event)  # type: ignore[arg-type]
        elif event.training:  # type: ignore[union-attr]
            self._on_train_targets(event)  # type: ignore[arg-type]
        else:
            self._on_eval_targets(event)  # type: ignore[arg-type]
        return ()

    # ------------------------------------------------------------------ training
    def _note_train_loader(self, info: Any) -> None:
        self._train_iteration = info.iteration
        self.data.train_loaders.add(info.loader_id)
        self.data.train_datasets.add(info.own_dataset_id)
        if info.dataset_len is not None:
            self._confirm_len()
            self._pending_len = (info.dataset_len, self.state.backward_calls)

    def _confirm_len(self) -> None:
        pending = self._pending_len
        if pending is not None and self.state.backward_calls > pending[1]:
            self.data.train_dataset_lens.add(pending[0])
            self._pending_len = None

    def _on_train_input(self, event: ModelInput) -> None:
        x = first_tensor(event.args, event.kwargs)
        if x is None or x.dim() == 0 or x.shape[0] < 1:
            return
        self._note_step_input(event.name, x, training=True)
        tensors = sum(isinstance(a, torch.Tensor) for a in list(event.args) + list(event.kwargs.values()))
        if tensors > 1:
            self.data.single_input = False
        d = self.data
        if len(d.train_hashes) < MAX_TRAIN_HASHES and x.grad_fn is None:
            # (an activation another trained module computed is no example: its values change with the weights)
            hashes, constant = example_hashes(x, event.args, event.kwargs)
            kept = [h for h, c in zip(hashes, constant) if not c]
            d.train_batch_duplicates += len(kept) - len(set(kept))
            d.train_hashes.update(set(kept))
            for h in set(kept):
                d.train_first_step.setdefault(h, self.state.step)
            if event.name in d.train_hashes_by_model or len(d.train_hashes_by_model) < MAX_MODELS_FINGERPRINTED:
                d.train_hashes_by_model.setdefault(event.name, set()).update(kept)
            d.train_rows_hashed += len(set(kept))
        rows = int(x.shape[0])
        if x.grad_fn is not None:
            # an activation another trained module computed (an RNN's state fed to a separate head): the
            # probes must see the data, not what the model (maybe still at chance) made of it; it is
            # known only when one data batch of as many rows entered a model in this step
            data = self._step_data if self._step_data[0] == event.step else (event.step, [])
            same = [p for p in data[1] if p[1] == rows]
            self._pending = same[0] if len(data[1]) == 1 and same else (event.step, rows, None)
            return
        # (its features are computed only once targets of as many rows pair with it: a full graph's
        # forward scored on a few of its nodes never pairs, and its 0.1-0.4 s would be spent each step)
        batch = x.detach() if d.pair_rows < MAX_PAIRS and d.single_input else None
        self._pending = (event.step, rows, batch)
        if self._step_data[0] != event.step:
            self._step_data = (event.step, [])
        self._step_data[1].append(self._pending)

    def _on_train_targets(self, event: Targets) -> None:
        if event.name == "compare":
            return  # the loss call of the same batch counts it
        got = class_targets(event)
        if got is None:
            return
        y, _, n_classes = got
        d = self.data
        if y.size == 0:
            return
        if event.kwargs.get("weight") is not None or event.kwargs.get("pos_weight") is not None:
            d.weighted_loss = True
            d.weights.note(event.name, event.kwargs)
        t, pending = event.target, self._pending
        if not (t.dim() == 1 or (t.dim() == 2 and t.shape[1] == 1)) or (
                pending is not None and pending[0] == event.step and y.size > pending[1]):
            d.element_targets = True  # (N, L) targets, or flattened ones: N * L for a batch of N
        d.n_classes = n_classes or d.n_classes
        d.train_counts = _add(d.train_counts, y, n_classes or 0)
        d.train_target_batches += 1
        d.target_losses.add(event.name)
        d.target_steps = d.target_steps[:1] + [event.step]
        loaders = self.state.loaders
        if loaders is not None and loaders.current is not None and len(d.target_iterations) < 1000:
            d.target_iterations.add(loaders.current.iteration)
        if y.size >= 8 and len(d.batch_purity) < 10_000:
            d.batch_purity.append(float(np.bincount(y).max() / y.size))
            d.batch_sizes.append(int(y.size))
            d.add_space(f"{event.name}:{n_classes}", y, n_classes or 0)
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == event.step and pending[1] == y.size and pending[2] is not None:
            if d.pair_loss and d.pair_loss != event.name:
                return
            feats = probe_features(pending[2])
            if feats is None:
                return
            if d.pairs_x and feats.shape[1:] != d.pairs_x[0].shape[1:]:
                return  # inputs of another size (progressive resizing, a new stage): one width per probe
            d.pair_loss = event.name
            room = MAX_PAIRS - d.pair_rows
            d.pairs_x.append(feats[:room])
            d.pairs_y.append(y[:room])
            d.pair_rows += min(room, y.size)

    # ------------------------------------------------------------------ evaluation
    def _note_step_input(self, name: str, x: torch.Tensor, *, training: bool) -> None:
        """Remember this step's batch tensors; a no-gradient forward of one model on the tensor another
        model trains on in the same step makes the first a companion (teacher, target network)."""
        step = self.state.step
        if self._step_inputs[0] != step:
            self._step_inputs = (step, [], [])
        _, evals, trains = self._step_inputs
        try:
            key = (x.data_ptr(), tuple(x.shape), x.dtype) if x.layout == torch.strided else None
        except Exception:  # a tensor without storage (meta, sparse, some subclasses): never a match
            key = None
        if key is None or not key[0]:
            return
        mine, other = (trains, evals) if training else (evals, trains)
        if len(mine) < 8:
            mine.append((name, key))
        for other_name, other_key in other:
            if other_key == key and other_name != name:
                companion = other_name if training else name
                if companion not in self.data.companions:
                    self.data.companions.add(companion)
                    self.data.passes = [p for p in self.data.passes if not (p.models and p.models <= self.data.companions)]
                    if self._pass is not None and self._pass.models and self._pass.models <= self.data.companions:
                        self._pass = None

    def _on_eval_input(self, event: ModelInput) -> None:
        x = first_tensor(event.args, event.kwargs)
        if x is None or x.dim() == 0:
            return
        name = getattr(event, "name", "")
        self._note_step_input(name, x, training=False)
        if name in self.data.companions:
            self._pass = None
            return  # part of the training step (a teacher, a target network), not an evaluation
        n = int(x.shape[0])
        loaders = self.state.loaders
        fetches = loaders.fetches if loaders is not None else 0
        if loaders is not None and loaders.last_ptr and fetches == loaders.train_mark \
                and _data_ptr(x) == loaders.last_ptr:
            # no batch fetched since the latest training forward, and this is (a view of) the batch
            # it trained on: a look at the step's own batch (a reconstruction preview, a training-
            # accuracy print), not an evaluation pass
            self._pass = None
            return
        # a batch was fetched since the latest forward (training or evaluation): it came from a loader
        from_loader = (loaders is not None and loaders.current is not None
                       and fetches > max(self._fetches_seen, loaders.train_mark))
        self._fetches_seen = fetches
        p = self._pass
        if from_loader:
            info = loaders.current
            if p is None or p.loader is None or p.loader.iteration != info.iteration:
                p = self._new_pass(info)
        else:
            continuing = (p is not None and p.loader is None and self._pass_step == self.state.step
                          and not p.smaller_seen and (n == p.last_batch or (n < p.last_batch and p.batches >= 2)))
            if not continuing:
                p = self._new_pass(None)
            elif n < p.last_batch:
                p.smaller_seen = True
        p.batches += 1
        p.last_batch = n
        p.forward = -1
        p.models.add(name)
        if p.capped or self.data.eval_rows >= MAX_EVAL_ROWS:
            p.capped = True
            return
        hashes, constant = example_hashes(x, event.args, event.kwargs)
        p.hashes.extend(h for h, c in zip(hashes, constant) if not c)
        if p.loader is None and len(p.batch_ends) < MAX_PASS_BATCHES:
            p.batch_ends.append(len(p.hashes))
        p.constant_rows += int(constant.sum())
        p.rows += n
        self.data.eval_rows += n
        if p.rows >= MAX_PASS_ROWS:
            p.capped = True

    def _new_pass(self, info: Any) -> EvalPass:
        p = EvalPass(step=self.state.step, loader=info)
        self.data.passes.append(p)
        if len(self.data.passes) > 64:  # keep the first passes and the latest ones
            del self.data.passes[8]
        self._pass, self._pass_step = p, self.state.step
        return p

    def _on_eval_targets(self, event: Targets) -> None:
        p = self._pass
        if p is None or p.forward == self.state.forward_calls:
            return
        got = class_targets(event)
        if got is None or got[0].size == 0:
            return
        p.forward = self.state.forward_calls
        y, pred, n_classes = got
        size = max(n_classes or 0, int(y.max()) + 1)
        p.counts = _add(p.counts, y, size)
        if pred is not None and pred.shape == y.shape:
            p.wrong = _add(p.wrong, y[pred != y], size)
            p.confusion = add_confusion(p.confusion, y, pred)


def _data_ptr(x: torch.Tensor) -> int:
    try:
        return x.data_ptr() if x.layout == torch.strided else 0
    except Exception:  # a tensor without storage (meta, some subclasses)
        return 0
