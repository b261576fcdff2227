"""Runtime remedy for randomly wrong training labels: the small-loss trick. Same contract as
:mod:`nndoctor.fix.remedies` (``install(finding, stack)`` changes the re-run through hooks; the
stack undoes it).

A network fits clean labels before it memorises wrong ones, so within a training batch the
examples whose loss is highest are mostly the mislabelled ones (Han et al. 2018, co-teaching;
the truncated loss of Jiang et al. 2018, MentorNet). In the re-run every training call of
cross-entropy / NLL with class-index targets and a mean reduction leaves out of its mean the
examples with the highest per-example loss that the model gets wrong (argmax != label): at most
a share that rises linearly from 0 to the noise share the finding estimated over the first
tenth of the run's steps, then stays. On clean labels the model soon gets almost every training
example right, so little is left out (clean training loses nothing, measured). Calls
without gradient (evaluation passes) and any other loss are unchanged, so what the script
prints about held-out data stays its own measure.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import torch
import torch.nn.functional as F

from nndoctor.fix.remedies import Remedy, _patch

__all__ = ["LABEL_REMEDIES", "drop_share", "noise_share"]

Finding = dict[str, Any]

MAX_SHARE = 0.5     # never leave out more than half a batch


def noise_share(f: Finding) -> float:
    """The share of wrong labels the finding estimated (the lower of its two estimates; 0: none)."""
    ev = f.get("evidence") or {}
    values = [ev.get(k) for k in ("confident_disagreement", "noise_rate")]
    values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return min(min(values), MAX_SHARE) if values else 0.0


def drop_share(share: float, call: int, ramp: int) -> float:
    """The share of a batch left out at training call ``call`` (0-based): 0 -> ``share`` over ``ramp`` calls."""
    return share * min(1.0, call / max(1, ramp))


def _ramp(f: Finding) -> int:
    steps = f.get("first_step")
    return max(1, steps // 10) if isinstance(steps, int) and not isinstance(steps, bool) else 50


def _install_small_loss(f: Finding, stack: contextlib.ExitStack) -> None:
    share, ramp = noise_share(f), _ramp(f)
    if share <= 0:
        raise ValueError("the finding estimates no share of wrong labels")
    calls = [0]

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs.get("reduction", "mean") != "mean" or kwargs.get("weight") is not None \
                    or kwargs.get("size_average") is not None or kwargs.get("reduce") is not None \
                    or not torch.is_grad_enabled() or not isinstance(input, torch.Tensor) \
                    or not input.requires_grad or input.dim() != 2 or not isinstance(target, torch.Tensor) \
                    or target.dim() != 1 or target.is_floating_point() or target.shape[0] != input.shape[0]:
                return original(input, target, *args, **kwargs)
            drop = drop_share(share, calls[0], ramp)
            calls[0] += 1
            kwargs["reduction"] = "none"
            losses = original(input, target, **kwargs)
            valid = target != kwargs.get("ignore_index", -100)
            n = int(valid.sum())
            keep = n - int(drop * n)
            if n == 0 or keep >= n:
                return losses[valid].mean() if n else losses.sum() * 0.0
            # only examples the model gets wrong are left out: on clean labels late in training few are
            ranked = losses.detach().masked_fill(~valid, -float("inf"))
            wrong = input.detach().argmax(1) != target
            out = torch.topk(ranked, n - keep).indices
            out = out[wrong[out]]
            kept = valid.clone()
            kept[out] = False
            return losses[kept].mean()

        return call

    _patch(stack, F, "cross_entropy", wrap)
    _patch(stack, F, "nll_loss", wrap)


LABEL_REMEDIES: tuple[Remedy, ...] = (
    Remedy("drop-high-loss-examples", ("labels.noisy",),
           lambda f: f"each training batch's loss averaged over its {1 - noise_share(f):.0%} smallest per-example "
                     "losses (the small-loss trick: the left-out examples are mostly the wrong labels)",
           lambda f: "Find and fix the wrong labels (`nndoctor evaluate` or cleanlab lists them); meanwhile train "
                     f"on the {1 - noise_share(f):.0%} of each batch with the smallest loss (co-teaching / "
                     "truncated loss) or use nn.CrossEntropyLoss(label_smoothing=0.1).",
           _install_small_loss, changes_loss=True, applies=lambda f: noise_share(f) > 0),
)
