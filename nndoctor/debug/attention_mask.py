"""data: an attention padding mask that hides the real tokens and shows the padding (inverted mask).

Sequences padded to one length need a mask so that attention skips the padded keys. The two
conventions of PyTorch disagree: ``nn.MultiheadAttention`` / ``nn.TransformerEncoder``'s
``key_padding_mask`` / ``src_key_padding_mask`` is True where a key is IGNORED, while a boolean
``attn_mask`` of ``F.scaled_dot_product_attention`` (and Hugging Face's ``attention_mask``) is True
where a key TAKES PART. Passing one where the other is expected (``mask = x != PAD`` as a
``key_padding_mask``, ``x == PAD`` as an SDPA mask), or ``scores.masked_fill(mask == 0, -inf)`` with
a mask that is already True on padding, inverts it: every query attends to the padding only. The
model still trains (the positions' embeddings leak through the residual path) but attention is
useless, and a row without padding has every key masked.

Evidence: on sampled training steps, the model's integer ``(N, T)`` token input gives the padded
positions (the ``padding_idx`` of one of its ``nn.Embedding`` layers, or a value that only fills a
trailing / leading run of varying length in >= 20% of the rows, as for ``labels.padding-not-ignored``),
when >= ``MIN_PAD`` of the positions are padding. The keys an attention call masks are read from
``F.multi_head_attention_forward``'s ``key_padding_mask`` (True or a large negative number: masked),
``F.scaled_dot_product_attention``'s ``attn_mask`` (False or a large negative number: masked) and a
``masked_fill`` of attention scores with a large negative value; a key counts as masked when it is
masked for every query (a causal mask hides a key from the earlier queries only). A call whose
``(N, T)`` keys line up with the tokens is judged: inverted when >= ``INVERTED`` of the padded keys
are attended AND >= ``INVERTED`` of the real keys are masked. Two such sampled calls, and at least half
of the calls judged, make a warning at the end of the run. Masks that agree with the padding, masks
of other shapes (causal, per-head), and inputs without padding are quiet.

``data.padding-mask-as-float`` (same evidence of the padding): a ``key_padding_mask`` or SDPA
``attn_mask`` that is a FLOAT tensor of 0s and 1s, the same for every query, whose 1s are the padded
positions (or the real ones) at >= ``MATCH`` of the positions: PyTorch ADDS a float mask to the
scores, so it hides nothing (``(tokens == PAD).float()`` meant as a boolean mask). Two such calls make
a warning.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.debug.padding import _embedding_pads, _run_mask
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput, OpCall, RunEnd
from nndoctor.monitor.functions import user_site
from nndoctor.monitor.tensors import is_integer

__all__ = ["INVERTED", "InvertedPaddingMask", "MATCH", "MIN_PAD", "binary_float_keys", "masked_keys"]

MIN_PAD = 0.05  # share of the positions that are padding for a batch to be judged
INVERTED = 0.9  # share of padded keys attended and of real keys masked
MATCH = 0.95  # share of the positions where a 0/1 float mask's 1s are the padding (or the real tokens)
NEG = -1e4  # an additive mask value at or below this hides a key
MIN_CALLS = 2
MIN_T = 3
_FILLS = frozenset({"masked_fill", "masked_fill_"})


def _hidden(mask: torch.Tensor, true_hides: bool) -> torch.Tensor | None:
    """Which entries of a boolean or additive (float) mask hide their key."""
    if mask.dtype == torch.bool:
        return mask if true_hides else ~mask
    if mask.is_floating_point():
        return mask <= NEG
    return None


def binary_float_keys(mask: torch.Tensor, n: int, s: int) -> torch.Tensor | None:
    """``(n, s)`` True where a float 0/1 mask (the same for every query) holds 1, else None."""
    if not mask.is_floating_point() or mask.dim() < 2 or mask.shape[0] != n or mask.shape[-1] != s:
        return None
    rows = mask.reshape(n, -1, s)
    ones = rows == 1
    if not bool((ones | (rows == 0)).all()) or not bool(ones.any()) or bool(ones.all()):
        return None  # not a 0/1 mask, or a constant one
    if rows.shape[1] > 1 and not bool((rows == rows[:, :1]).all()):
        return None  # differs between queries: not a padding mask
    return ones[:, 0]


def masked_keys(hidden: torch.Tensor, n: int, s: int) -> torch.Tensor | None:
    """``(n, s)``: keys hidden from every query, from a mask broadcastable to ``(n, ..., s)``."""
    if hidden.dim() < 2 or hidden.shape[-1] != s or hidden.shape[0] != n:
        return None
    if hidden.dim() == 2:
        return hidden
    return hidden.reshape(n, -1, s).all(dim=1)


@register
class InvertedPaddingMask(Check):
    """Attention masks the real tokens and attends to the padding."""

    code = "data.padding-mask-inverted"
    extra_codes = ("data.padding-mask-as-float",)
    needs = ("model_input", "op", "end")
    ops = frozenset({"multi_head_attention_forward", "scaled_dot_product_attention", *_FILLS})
    sampled_only = frozenset({"model_input", "op"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._pad: tuple[int, str, torch.Tensor, int, str] | None = None  # step, model, pad mask, value, how
        self._pads: dict[int, tuple[weakref.ReferenceType[nn.Module], list[int]]] = {}
        self._judged = 0
        self._hits: list[dict[str, Any]] = []
        self._float_hits: list[dict[str, Any]] = []

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "model_input":
            self._on_input(event)
        elif event.kind == "op":
            self._on_op(event)
        elif event.kind == "end":
            return self._on_end(event)
        return ()

    def _on_input(self, event: ModelInput) -> None:
        self._pad = None
        if not event.grad_enabled:
            return
        tokens = [v for v in list(event.args) + list(event.kwargs.values())
                  if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] >= MIN_T and is_integer(v)]
        if not tokens:
            return
        x = tokens[0].detach()
        cached = self._pads.get(id(event.model))
        if cached is None or cached[0]() is not event.model:
            cached = self._pads[id(event.model)] = (weakref.ref(event.model), _embedding_pads(event.model))
        found: tuple[int, torch.Tensor] | None = None
        how = "padding_idx"
        for p in cached[1]:
            m = x == p
            if bool(m.any()):
                found = (p, m)
                break
        if found is None:
            how, found = "trailing run", _run_mask(x, trailing=True)
            if found is None:
                how, found = "leading run", _run_mask(x, trailing=False)
        if found is None:
            return
        value, pad = found
        share = float(pad.float().mean())
        if share < MIN_PAD or bool(pad.all(dim=1).any()):
            return  # little padding, or a row of padding only (its mask is anybody's guess)
        self._pad = (event.step, event.name, pad.cpu(), value, how)

    def _on_op(self, event: OpCall) -> None:
        if self._pad is None or self._pad[0] != event.step:
            return
        _, model, pad, value, how = self._pad
        n, s = pad.shape
        hidden: torch.Tensor | None = None
        if event.name == "multi_head_attention_forward":
            kpm = event.kwargs.get("key_padding_mask")
            if not isinstance(kpm, torch.Tensor) and len(event.args) > 14:
                kpm = event.args[14]
            if isinstance(kpm, torch.Tensor):
                self._float_mask(event, kpm.detach(), "key_padding_mask of nn.MultiheadAttention")
                h = _hidden(kpm.detach(), true_hides=True)
                hidden = h if h is not None and tuple(h.shape) == (n, s) else None
            where = "key_padding_mask of nn.MultiheadAttention"
        elif event.name == "scaled_dot_product_attention":
            mask = event.kwargs.get("attn_mask", event.args[3] if len(event.args) > 3 else None)
            if isinstance(mask, torch.Tensor):
                self._float_mask(event, mask.detach(), "attn_mask of F.scaled_dot_product_attention")
                h = _hidden(mask.detach(), true_hides=False)
                hidden = masked_keys(h, n, s) if h is not None else None
            where = "attn_mask of F.scaled_dot_product_attention (True = attend)"
        else:
            if len(event.args) < 3:
                return
            scores, mask, fill = event.args[0], event.args[1], event.args[2]
            fill = float(fill) if isinstance(fill, (int, float)) else (
                float(fill) if isinstance(fill, torch.Tensor) and fill.numel() == 1 else 0.0)
            if not (isinstance(scores, torch.Tensor) and isinstance(mask, torch.Tensor)
                    and scores.is_floating_point() and scores.dim() >= 3 and fill <= NEG
                    and mask.dtype == torch.bool and scores.shape[0] == n and scores.shape[-1] == s):
                return
            try:
                full = mask.detach().expand(scores.shape)
            except RuntimeError:
                return
            hidden = masked_keys(full, n, s)
            where = "masked_fill of the attention scores"
        if hidden is None:
            return
        hidden = hidden.to(pad.device)
        self._judged += 1
        real = ~pad
        attended_pad = float((~hidden & pad).sum()) / max(float(pad.sum()), 1.0)
        hidden_real = float((hidden & real).sum()) / max(float(real.sum()), 1.0)
        if attended_pad >= INVERTED and hidden_real >= INVERTED:
            site = user_site()
            self._hits.append({"model": model, "module": event.module, "where": where, "op": event.name,
                               "pad_value": value, "how": how, "attended_pad": round(attended_pad, 4),
                               "hidden_real": round(hidden_real, 4), "step": event.step, "site": site})

    def _float_mask(self, event: OpCall, mask: torch.Tensor, where: str) -> None:
        """A 0/1 float mask on the padding (or on the real tokens) is ADDED to the scores: it hides nothing."""
        assert self._pad is not None
        _, model, pad, value, how = self._pad
        ones = binary_float_keys(mask, *pad.shape)
        if ones is None:
            return
        ones = ones.to(pad.device)
        agree = float((ones == pad).float().mean())
        if max(agree, 1.0 - agree) < MATCH:
            return
        self._float_hits.append({"model": model, "module": event.module, "where": where, "op": event.name,
                                 "pad_value": value, "how": how, "ones_on": "padding" if agree >= MATCH else
                                 "real tokens", "dtype": str(mask.dtype).replace("torch.", ""),
                                 "step": event.step, "site": user_site()})

    def _on_end(self, event: RunEnd) -> list[Finding]:
        out = self._float_finding()
        if len(self._hits) < MIN_CALLS or len(self._hits) < 0.5 * self._judged:
            return out
        hit = self._hits[0]
        source = (f"padding_idx={hit['pad_value']} of {hit['model']}'s embedding" if hit["how"] == "padding_idx"
                  else f"token {hit['pad_value']}, which fills the {hit['how'].split()[0]} positions")
        evidence = {**hit, "calls": len(self._hits), "judged": self._judged}
        return out + [self.finding(
            f"the attention mask is inverted: in {len(self._hits)} of {self._judged} sampled attention calls "
            f"({hit['where']}) {hit['hidden_real']:.0%} of the real tokens are masked and {hit['attended_pad']:.0%} "
            f"of the padded positions ({source}) are attended: every query looks at the padding only",
            evidence, location=hit["module"] or hit["model"], step=hit["step"])]

    def _float_finding(self) -> list[Finding]:
        if len(self._float_hits) < MIN_CALLS:
            return []
        hit = self._float_hits[0]
        evidence = {**hit, "calls": len(self._float_hits)}
        return [self.finding(
            f"the padding mask ({hit['where']}) is a {hit['dtype']} tensor of 0s and 1s (1 on the "
            f"{hit['ones_on']}) in {len(self._float_hits)} sampled attention calls: a float mask is ADDED to the "
            f"attention scores, so +1 on some keys masks nothing and the padding is attended",
            evidence, location=hit["module"] or hit["model"], step=hit["step"], code="data.padding-mask-as-float")]
