"""regularization: input-noise augmentation so strong that it drowns the signal.

``xb = x + 3.0 * torch.randn_like(x)`` on inputs standardised to std 1 buries every example
under noise three times its own spread: the model sees mostly noise and underfits. Ordinary
noise augmentation is a fraction of the spread (std 0.1 of a standardised input).

Followed by the function mode on sampled training steps, outside the model's own modules:
random tensors (``randn``/``randn_like``/``rand``/``rand_like``/``normal``, in-place
``normal_``/``uniform_``), scaled by numbers (``mul``/``div``/``sub``, ``alpha=``), added to another
tensor of the same shape (``add``/``sub``/``add_``; ``torch.normal(x, std)``), then carried through
``to``/``float``/``clamp``/views to the model's forward. When such a sum is the model's training
input, the ratio ``||noise - mean(noise)|| / ||x - mean_over_batch(x)||`` is recorded. Noise added
to each example on its own (in a ``Dataset.__getitem__`` or a transform) is followed through the
``torch.stack`` that collates the batch: when every stacked example is such a sum, the batch's ratio
is measured on the stacked clean examples and noises.

Reported over at least 3 sampled steps at the end of the run (a median ratio >= 2 is a warning,
>= 1.5 info), or during the run once 5 sampled steps give a warning's median; with several
optimizers (a GAN's discriminator trained with instance noise, on purpose) it is info only. A loss whose target has the noised input's shape (a denoising autoencoder, a diffusion
model predicting the noise or the clean input) makes the noise the task: quiet. Noise on a tensor
that requires grad (a latent, an embedding) is not data augmentation; noise scaled per example by a
tensor (diffusion schedules, VAE reparameterisation) is not followed; dropout on the
inputs, mixup, crops and flips add no random tensor: quiet. Noise must be drawn in the step whose
input it noises: a synthetic data set made once as signal plus noise is the data, not augmentation.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.dataset_noise import TRAIN_DATASET_KEY, numpy_noise
from nndoctor.monitor.events import LossCall, ModelInput, OpCall, RunEnd
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.loose_input import INPUT_OPS, loose_input
from nndoctor.monitor.noise_targets import RANDOM_OPS, is_number

__all__ = ["EARLY_SAMPLES", "InputNoiseDrownsSignal", "MIN_SAMPLES", "TRACKED_OPS", "noise_ratio"]

WARN_RATIO = 2.0
INFO_RATIO = 1.5
MIN_SAMPLES = 3  # sampled steps judged at the end of the run...
EARLY_SAMPLES = 5  # ...or as soon as this many show a warning's ratio
_SCALE = frozenset({"mul", "div", "sub", "mul_", "div_", "sub_"})
_ADD = frozenset({"add", "sub", "add_", "sub_"})
_PASS = frozenset({"to", "float", "clamp", "clamp_", "view", "reshape", "contiguous", "detach", "clone"})
_COLLATE = frozenset({"stack"})
#: the ops the noise tracking follows (shared with monitor/checks/target_noise.py)
TRACKED_OPS = RANDOM_OPS | _SCALE | _ADD | _PASS | _COLLATE
MAX_EXAMPLE = 1 << 12  # values of one example whose clean part and noise are kept for collation (bounded memory)



def noise_ratio(clean: torch.Tensor, noise: torch.Tensor) -> float | None:
    """``||noise - mean(noise)|| / ||clean - mean over the batch(clean)||`` (None when the clean
    tensor has no spread)."""
    c = clean.detach().float()
    n = noise.detach().float()
    c = c - (c.mean(0, keepdim=True) if c.dim() >= 1 and c.shape[0] >= 2 else c.mean())
    spread = float(torch.linalg.vector_norm(c))
    if not spread > 0:
        return None
    return float(torch.linalg.vector_norm(n - n.mean())) / spread


@dataclass
class _Noised:
    ratio: float
    site: str
    shape: tuple[int, ...]
    drawn_at: str = ""  # the line that drew the random tensor (the sum may be made elsewhere)
    made: int = -1  # the step the noised tensor was made in (views of it made later keep it)
    parts: tuple[torch.Tensor, torch.Tensor] | None = None  # (clean, noise) of one example, for stack


@register
class InputNoiseDrownsSignal(Check):
    """Noise added to the training inputs, far larger than the inputs' own spread."""

    code = "regularization.input-noise-too-strong"
    needs = ("op", "model_input", "loss", "end")
    sampled_only = frozenset({"model_input"})
    ops = TRACKED_OPS | INPUT_OPS  # (INPUT_OPS: a network without nn.Module)
    warn_ratio = WARN_RATIO
    info_ratio = INFO_RATIO
    dataset_part = 0  # the element of a dataset item that numpy noise is looked for in (the input)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._noise: dict[int, tuple[weakref.ReferenceType[torch.Tensor], int]] = {}  # id -> (ref, step)
        self._noised: dict[int, tuple[weakref.ReferenceType[torch.Tensor], _Noised, int]] = {}
        self._input: tuple[int, _Noised] | None = None  # (step, what) of this step's noised model input
        self._samples: list[_Noised] = []
        self._denoising = False
        self._reported = False

    # -- labels ------------------------------------------------------------------------
    def _get(self, table: dict[int, Any], t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return None
        entry = table.get(id(t))
        return entry if entry is not None and entry[0]() is t else None

    def _put(self, table: dict[int, Any], t: torch.Tensor, *rest: Any) -> None:
        step = self.state.step
        if len(table) > 512:
            for k in [k for k, v in table.items() if v[-1] != step or v[0]() is None]:
                del table[k]
        table[id(t)] = (weakref.ref(t), *rest, step)

    def check(self, event: OpCall | ModelInput | LossCall | RunEnd) -> Iterable[Finding]:
        if self._denoising or self._reported:
            self.retire()  # (denoising is the task, or the finding is made: nothing more to hear)
            return ()
        if isinstance(event, OpCall):
            if event.name in INPUT_OPS:
                loose = loose_input(self.state, event)
                if loose is not None:
                    self._on_input(loose)
            elif not event.module:
                self._on_op(event)
            return ()
        if isinstance(event, ModelInput):
            self._on_input(event)
            return ()
        if isinstance(event, LossCall):
            if self._on_loss(event) and len(self._samples) >= EARLY_SAMPLES:
                return self._judge(early=True)
            return ()
        return self._judge()

    def _on_op(self, event: OpCall) -> None:
        name, args, result = event.name, event.args, event.result
        if not isinstance(result, torch.Tensor) or not result.is_floating_point():
            return
        if name in RANDOM_OPS:
            mean = args[0] if args else event.kwargs.get("mean")
            if name == "normal" and isinstance(mean, torch.Tensor) and mean.shape == result.shape \
                    and mean.dim() >= 1:
                ratio = noise_ratio(mean, result - mean)  # torch.normal(x, std): x plus noise
                if ratio is not None:
                    site = user_site()
                    self._put(self._noised, result, _Noised(ratio, site, tuple(result.shape), site, self.state.step))
                return
            self._put(self._noise, result, user_site())
            return
        first = args[0] if args else None
        if name in _COLLATE:
            self._on_stack(first, result)
            return
        noised = self._get(self._noised, first)
        if name in _PASS:
            if noised is not None:
                self._put(self._noised, result, noised[1])
            return
        drawn = self._get(self._noise, first)
        noise_first = drawn is not None
        second = args[1] if len(args) > 1 else event.kwargs.get("other")
        if name in _SCALE and noise_first and is_number(second):
            self._put(self._noise, result, drawn[1])  # noise scaled by a number (or shifted: rand - 0.5)
            return
        if name not in _ADD or not isinstance(first, torch.Tensor) or not isinstance(second, torch.Tensor):
            return
        drawn = drawn or self._get(self._noise, second)
        noise_second = self._get(self._noise, second) is not None
        if noise_first == noise_second or result.shape != first.shape or second.shape != first.shape:
            return  # noise plus noise, nothing random, or a broadcast
        alpha = event.kwargs.get("alpha", 1)
        if noise_second:
            noise = second * alpha if is_number(alpha) else second
            clean = first if not name.endswith("_") else (result - noise if name.startswith("add") else result + noise)
        else:
            if name.startswith("sub") or name.endswith("_"):
                return  # noise minus the batch, or noise updated in place: not an augmentation
            noise, clean = first, second
        if clean.requires_grad:
            return  # noise on a computed tensor (a latent, an embedding), not on the data
        ratio = noise_ratio(clean, noise)
        small = clean.numel() <= MAX_EXAMPLE
        if ratio is not None or small:
            # (no ratio: one value, a single example's target; its batch's ratio is measured once stacked)
            parts = (clean.detach(), noise.detach()) if small else None
            self._put(self._noised, result, _Noised(math.nan if ratio is None else ratio, user_site(),
                                                    tuple(result.shape), drawn[1] if drawn else "",
                                                    self.state.step, parts))

    def _on_stack(self, items: Any, result: torch.Tensor) -> None:
        """A batch collated from examples that each got their own noise: the batch's ratio."""
        if not isinstance(items, (list, tuple)) or len(items) < 2:
            return
        entries = [self._get(self._noised, t) for t in items]
        if not all(e is not None and e[1].parts is not None for e in entries):
            return
        try:
            clean = torch.stack([e[1].parts[0] for e in entries])
            noise = torch.stack([e[1].parts[1] for e in entries])
        except RuntimeError:  # examples of different shapes
            return
        ratio = noise_ratio(clean, noise)
        if ratio is not None:
            first = entries[0][1]
            made = min(e[1].made for e in entries)  # (an example noised in an earlier step: the data's own)
            self._put(self._noised, result, _Noised(ratio, first.site, tuple(result.shape), first.drawn_at, made))

    def _on_input(self, event: ModelInput) -> None:
        if not (event.sampled and event.grad_enabled and event.training):
            return
        x = next((a for a in (*event.args, *event.kwargs.values()) if isinstance(a, torch.Tensor)), None)
        noised = self._get(self._noised, x)
        if noised is not None and (noised[1].made != event.step or not math.isfinite(noised[1].ratio)):
            return  # noise drawn once, in an earlier step or before training: a synthetic data set's
            # own noise (``x = signal + torch.randn(n, d)``), not an augmentation drawn for each batch
        if noised is not None and (self._input is None or self._input[0] != event.step):
            self._input = (event.step, noised[1])

    def _on_loss(self, event: LossCall) -> bool:
        """Whether a sample was added."""
        if self._reported or not event.grad_enabled or self._input is None or self._input[0] != event.step:
            return False
        step, noised = self._input
        self._input = (-1, noised)  # one sample per step
        target = event.target
        if isinstance(target, torch.Tensor) and tuple(target.shape) == noised.shape:
            self._denoising = True  # the target has the input's shape: denoising is the task
            return False
        if len(self._samples) >= 1024:
            return False
        self._samples.append(noised)
        return True

    def _judge(self, early: bool = False) -> list[Finding]:
        if self._reported or self._denoising:
            return []
        if len(self._samples) < MIN_SAMPLES:
            return [] if early else self._dataset_noise()
        ratios = sorted(s.ratio for s in self._samples)
        median = ratios[len(ratios) // 2]
        if median < (self.warn_ratio if early else self.info_ratio):
            return []
        self._reported = True
        site = self._samples[-1].site
        drawn_at = sorted({s.drawn_at for s in self._samples if s.drawn_at})
        ev = {"noise_ratio": round(median, 3), "sampled_steps": len(ratios), "site": site, "drawn_at": drawn_at,
              "ratio_min": round(ratios[0], 3), "ratio_max": round(ratios[-1], 3),
              "suggested_scale": round(0.3 / median, 3)}
        # several optimizers (a GAN's discriminator with instance noise, annealed on purpose): info
        several = len(self.state.optimizers) > 1
        ev["optimizers"] = len(self.state.optimizers)
        sev = Severity.WARNING if median >= self.warn_ratio and not several else Severity.INFO
        return [self.finding(self._message(site, median, len(ratios), ev), ev, location=site, severity=sev)]

    def _dataset_noise(self) -> list[Finding]:
        """At the end of the run: noise the training dataset's ``__getitem__`` draws with numpy
        (:mod:`nndoctor.monitor.dataset_noise`; torch draws are followed during the run)."""
        dataset = self.state.extra.get(TRAIN_DATASET_KEY)
        found = numpy_noise(dataset, self.dataset_part, noise_ratio) if dataset is not None else None
        if found is None or found[0] < self.info_ratio:
            return []
        ratio, reads, scale = found
        self._reported = True
        name = f"{type(dataset).__name__}.__getitem__"
        ev = {"noise_ratio": round(ratio, 3), "examples_read": reads, "site": "", "drawn_at": [],
              "drawn_with": "numpy", "dataset": type(dataset).__name__, "fitted_noise_scale": round(scale, 4),
              "suggested_scale": round(min(1.0, 0.3 / ratio), 3), "optimizers": len(self.state.optimizers)}
        sev = Severity.WARNING if ratio >= self.warn_ratio and len(self.state.optimizers) <= 1 else Severity.INFO
        return [self.finding(self._message(f"{name} (numpy, {reads} examples read at the end of the run)", ratio,
                                           0, ev), ev, location=name, severity=sev)]

    def _message(self, site: str, median: float, steps: int, evidence: dict[str, Any]) -> str:
        over = f" (median over {steps} sampled steps)" if steps else ""
        return (f"the noise added to the training inputs at {site or 'an unknown line'} is {median:.2g}x the "
                f"inputs' own spread{over}: the examples are buried under noise and the model can barely see "
                f"the signal")
