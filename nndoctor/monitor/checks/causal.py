"""data: a next-token model that sees the token it must predict (no causal mask).

A language model is trained on targets that are its own input shifted by one position
(``y[:, t] == x[:, t + 1]``). Its output at position ``t`` must then depend on ``x[:, :t+1]`` only:
self-attention without a causal mask (``nn.TransformerEncoderLayer`` called without ``src_mask`` /
``is_causal``, a hand-written attention without ``masked_fill`` of the future), a bidirectional RNN
or a "same"-padded convolution let position ``t`` read ``x[:, t + 1]``, the answer. The training
loss collapses and generation is garbage.

Evidence: on sampled training steps, a cross-entropy / NLL loss whose integer targets have as many
elements as an integer ``(N, T)`` input of the model (``T >= 4``) and equal that input shifted by
one at >= ``SHIFTED`` of the positions not ignored, in >= ``MIN_BATCHES`` batches (a copy without
shift is :mod:`nndoctor.monitor.checks.data.target_leak`'s). After the next optimizer step (at the end
of a run without one) the model is re-run on a copy of up to 4 rows of the last such batch, in
eval mode, under
``no_grad`` and ``fork_rng`` (the same seed for each call): twice as is (a forward that is not
deterministic is not judged), once with the LAST token of every row replaced. A causal
model's outputs at every earlier position are unchanged; when they move by more than ``TOL`` of the
output's scale, future tokens reach the predictions (warning). A model whose forward cannot be
re-run this way (other tensor arguments than ``(N, ...)`` batches, an output without the positions)
is not judged. Whatever the probe's forwards change in the model (mode, attributes such as a kept hidden
state, buffers and tensor attributes changed in place) is restored afterwards.

The same probe names a sequence-to-sequence decoder fed the targets unshifted (``data.target-in-inputs``):
a second integer argument of the forward (the decoder input) that equals the targets at the SAME
positions (>= ``SHIFTED``), whose output at the middle position moves when only that position's input
token is changed: the decoder reads the token it must predict (teacher forcing without the shift). A
decoder that shifts its input itself (``cat([BOS], tgt[:, :-1])`` inside ``forward``) reads earlier
tokens only, and a model computing its loss from ``model(x, y)`` has outputs that do not move with ``y``.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks.data.target_leak import REMOVE_DECODER
from nndoctor.monitor.events import LossCall, ModelInput
from nndoctor.monitor.model_state import kept_state
from nndoctor.monitor.tensors import ForwardInputs, is_integer

__all__ = ["FutureTokensVisible", "SHIFTED", "TOL"]

SHIFTED = 0.9  # share of (non-ignored) positions where target[t] == input[t + 1]
MIN_BATCHES = 2
TOL = 1e-3  # output change at earlier positions, relative to the output's largest magnitude
ROWS = 4
MAX_T = 4096
_TOKEN_LOSSES = frozenset({"cross_entropy", "nll_loss"})


def _output(out: Any, n: int, t: int) -> torch.Tensor | None:
    """The first floating tensor of the forward's result with the batch and the positions."""
    items = [out] if isinstance(out, torch.Tensor) else (
        list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [])
    for o in items:
        if isinstance(o, torch.Tensor) and o.is_floating_point():
            if o.dim() >= 2 and tuple(o.shape[:2]) == (n, t):
                return o.float()
            if o.dim() >= 1 and o.shape[0] == n * t:
                return o.reshape(n, t, -1).float()
    return None


def _run(model: Any, args: tuple[Any, ...], n: int, t: int, cpu: torch.Tensor, devices: list[int]) -> torch.Tensor | None:
    """One forward on the kept rows from the same CPU RNG state every time; every RNG state the
    forward could draw from (CPU, the model's accelerators) is the user's again afterwards."""
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.set_rng_state(cpu)
        return _output(model(*args), n, t)


@register
class FutureTokensVisible(Check):
    """A next-token model whose earlier outputs change when the last input token changes."""

    code = "data.future-tokens-visible"
    extra_codes = ("data.target-in-inputs",)
    needs = ("model_input", "loss", "step", "end")
    sampled_only = frozenset({"model_input", "loss", "step.post"})
    step_phases = frozenset({"post"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._inputs = ForwardInputs()
        self._model: weakref.ReferenceType[Any] | None = None
        self._args: tuple[Any, ...] | None = None
        self._index = 0
        self._name = ""
        self._batches = 0
        self._first_step = 0
        self._share = 0.0
        self._done = False
        self._mode = "next"  # targets = input shifted by one ("next"), or = a decoder input unshifted ("copy")

    def check(self, event: Any) -> Iterable[Finding]:
        if self._done:
            return ()
        if event.kind == "model_input":
            self._on_input(event)
        elif event.kind == "loss":
            self._on_loss(event)
        elif event.kind == "step" and self._batches >= MIN_BATCHES:
            # the step that follows the evidence: forward and backward done, the model surely alive
            # (a model local to main() is gone by the end of the run)
            self._done = True
            self.retire()  # (its verdict is given: nothing more to hear but the end)
            return self._probe()
        elif event.kind == "end":
            self._done = True
            self.retire()  # (its verdict is given: nothing more to hear but the end)
            return self._probe()
        return ()

    def _on_input(self, event: ModelInput) -> None:
        if not event.grad_enabled or not event.training or event.kwargs:
            return
        tensors = [a for a in event.args if isinstance(a, torch.Tensor)]
        if not tensors or len(tensors) != len(event.args):
            return
        self._inputs.keep(event.step, event.name, tensors, extra=(weakref.ref(event.model), len(tensors)))

    def _on_loss(self, event: LossCall) -> None:
        inputs = self._inputs.at(event.step)
        target = event.target
        if (inputs is None or event.name not in _TOKEN_LOSSES or not event.grad_enabled
                or not isinstance(target, torch.Tensor) or not is_integer(target)):
            return
        model_ref, count = self._inputs.extra
        if len(inputs) != count or any(x is None for x in inputs):
            return
        for i, x in enumerate(inputs):
            if x is None or not is_integer(x) or x.dim() != 2 or x.numel() != target.numel():
                continue
            n, t = x.shape
            if not 4 <= t <= MAX_T:
                continue
            y = target.reshape(n, t)
            valid = y[:, :-1] != int(event.kwargs.get("ignore_index", -100))
            counted = int(valid.sum())
            if counted < 3 * n or int(torch.unique(y[:, :-1][valid]).numel()) < 3:
                continue
            share, mode = int(((y[:, :-1] == x[:, 1:]) & valid).sum()) / counted, "next"
            if share < SHIFTED and i > 0:
                # a second argument (a decoder's input) equal to the targets at the SAME positions: teacher
                # forcing without the shift, if the model reads position t to predict position t (probed)
                same = y != int(event.kwargs.get("ignore_index", -100))
                share, mode = int(((y == x) & same).sum()) / max(int(same.sum()), 1), "copy"
            if share < SHIFTED or self._batches and mode != self._mode:
                continue
            if any(not isinstance(a, torch.Tensor) or a.dim() == 0 or a.shape[0] != n for a in inputs):
                return  # another argument is not a batch of the same rows: not re-run
            self._mode = mode
            self._batches += 1
            self._first_step = self._first_step or event.step
            self._share = share
            self._model = model_ref
            self._name = self._inputs.model
            self._index = i
            self._args = tuple(a[:ROWS].detach().clone() for a in inputs)
            return

    def _probe(self) -> list[Finding]:
        model = self._model() if self._model is not None else None
        if model is None or self._args is None or self._batches < MIN_BATCHES:
            return []
        args = self._args
        x = args[self._index]
        n, t = x.shape
        at = t - 1 if self._mode == "next" else t // 2  # the position whose token is changed
        last = x[:, at]
        other = torch.where(last == x.min(), x.max(), x.min())  # a token of the batch, never the same
        if bool((other == last).any()):
            return []
        changed = list(args)
        changed[self._index] = torch.cat([x[:, :at], other[:, None], x[:, at + 1:]], dim=1)
        try:
            with kept_state(model):
                for m in model.modules():
                    m.training = False
                cpu = torch.get_rng_state()
                devices = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
                before, again, after = (_run(model, a, n, t, cpu, devices) for a in (args, args, changed))
        except Exception:  # (a forward that cannot be re-run on a slice: not judged)
            return []
        if before is None or after is None or again is None or before.shape != after.shape:
            return []
        if not torch.equal(before, again):
            return []  # a forward that is not deterministic in eval mode (sampling): not judged
        scale = float(before.abs().max())
        name = self._name or type(model).__name__
        if self._mode == "copy":
            return self._copy_finding(name, before, after, at, scale)
        moved = float((after[:, :-1] - before[:, :-1]).abs().max())
        if not scale > 0 or not moved > TOL * scale:
            return []
        msg = (f"{name} is trained to predict the next token (the targets equal its input shifted by one at "
               f"{self._share:.0%} of the positions), but its output at earlier positions depends on later "
               f"tokens: changing only the last input token moved the outputs at positions 0..{t - 2} by up to "
               f"{moved:.3g} (output scale {scale:.3g}); each position can read the token it must predict "
               f"(attention without a causal mask, a bidirectional RNN, or a convolution padded on both sides)")
        evidence = {"model": name, "shifted_share": round(self._share, 4), "batches": self._batches,
                    "seq_len": int(t), "max_change_earlier": moved, "output_scale": scale}
        return [self.finding(msg, evidence, location=name, step=self._first_step)]

    def _copy_finding(self, name: str, before: torch.Tensor, after: torch.Tensor, at: int, scale: float) -> list[Finding]:
        """The decoder input is the targets unshifted, and the output at a position moves with that
        position's own input token: the model is shown the token it must predict."""
        moved = float((after[:, at] - before[:, at]).abs().max())
        if not scale > 0 or not moved > TOL * scale:
            return []  # (the model shifts its decoder input itself: position t reads tokens before t only)
        arg = self._index + 1
        msg = (f"{name} is fed the targets as its input: argument {arg} of its forward equals the loss's targets at "
               f"the same positions ({self._share:.0%}), and its output at position {at} moved by {moved:.3g} (output "
               f"scale {scale:.3g}) when only that position's input token changed: each position reads the token it "
               f"must predict, so the loss falls while generation fails (teacher forcing without the shift: feed "
               f"[BOS] + targets[:-1] and compare with targets)")
        evidence = {"model": name, "what": f"the targets (argument {arg}, the decoder input)", "argument": arg,
                    "same_position_share": round(self._share, 4),
                    "batches": self._batches, "seq_len": int(before.shape[1]), "probed_position": at,
                    "output_change_there": moved, "output_scale": scale}
        return [self.finding(msg, evidence, location=name, step=self._first_step, code="data.target-in-inputs",
                             fill={"remove": REMOVE_DECODER})]
