"""Gradient clipping as the observer sees it: ``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_`` wrapped while a run is observed (mixed into nothing: :class:`ClipWatch` is
owned by the Observer, installed with its other patches and removed with them).

On a sampled step each call is recorded in ``state.extra[CLIPS_KEY]`` (a bounded deque of
:class:`ClipCall`): the threshold, the gradient's size before clipping (the total norm that
``clip_grad_norm_`` returns; for ``clip_grad_value_`` the largest ``|grad|``, read before the call),
the number of gradient elements, the user's line, and whether a backward ran since the latest
step of the optimizer holding the parameters (a clip before ``backward()`` or after ``step()``
touches no gradient that is ever applied). On other steps the wrapper only passes the call
through. The user's call runs once, outside nndoctor's guards; a fault in the recording
switches nndoctor off (``Observer._fail``), never the clipping.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Callable

import torch

from nndoctor.monitor.functions import _FORKS, user_site
from nndoctor.monitor.tensors import is_sharded, local

__all__ = ["CLIPS_KEY", "ClipCall", "ClipWatch"]

CLIPS_KEY = "nndoctor.clip_calls"
MAX_CALLS = 256


@dataclass(frozen=True)
class ClipCall:
    step: int
    method: str  # "clip_grad_norm_" or "clip_grad_value_"
    threshold: float  # max_norm / clip_value
    measured: float  # the gradient's total norm / largest |element| before clipping
    numel: int  # gradient elements clipped together
    site: str
    #: no backward since the latest step of the optimizer holding the clipped parameters: the clip
    #: acts on gradients already applied (after ``step()``) or about to be replaced (before
    #: ``backward()``); None when no optimizer holding them has stepped yet
    stale: bool | None = None


def _params(parameters: Any) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        return [parameters]
    return list(parameters)


class ClipWatch:
    """Wraps the two clipping functions of ``torch.nn.utils`` (and of its ``clip_grad`` module)."""

    NAMES = ("clip_grad_norm_", "clip_grad_value_")

    def __init__(self, observer: Any) -> None:
        self.observer = observer
        self._originals: list[tuple[Any, str, Callable[..., Any], Callable[..., Any]]] = []

    def _recording(self) -> bool:
        obs = self.observer
        return obs._heavy and obs._active and not obs._busy and _FORKS[0] == obs._pid

    def _record(self, method: str, threshold: Any, params: list[torch.Tensor], measured: Any) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        numel = sum(g.numel() for g in grads)
        # a sharded (DTensor) norm cannot be read without a collective: not recorded
        readable = isinstance(measured, (int, float)) or (isinstance(measured, torch.Tensor) and not is_sharded(measured))
        value = float(measured) if readable else float("nan")
        calls = self.observer.state.extra.setdefault(CLIPS_KEY, collections.deque(maxlen=MAX_CALLS))
        calls.append(ClipCall(step=self.observer.state.step, method=method, threshold=float(threshold),
                              measured=value, numel=int(numel), site=user_site(), stale=self._stale(params)))

    def _stale(self, params: list[torch.Tensor]) -> bool | None:
        """Whether no backward ran since the latest step of the optimizer holding ``params[0]``."""
        state = self.observer.state
        first = params[0] if params else None
        if first is None:
            return None
        for info, opt in state.live_optimizers():
            if any(q is first for group in opt.param_groups for q in group["params"]):
                if info.backwards_at_post is None:
                    return None
                return state.backward_calls == info.backwards_at_post
        return None

    def _wrap_norm(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watch = self

        def clip_grad_norm_(parameters, max_norm, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not watch._recording():
                return original(parameters, max_norm, *args, **kwargs)
            try:
                params = _params(parameters)
            except Exception as exc:  # (not iterable: the user's call reports it)
                watch.observer._fail("clip_grad_norm_", exc)
                return original(parameters, max_norm, *args, **kwargs)
            total = original(params, max_norm, *args, **kwargs)
            try:
                with watch.observer.busy:
                    watch._record("clip_grad_norm_", max_norm, params, total)
            except Exception as exc:
                watch.observer._fail("clip_grad_norm_", exc)
            return total

        clip_grad_norm_.__wrapped__ = original  # type: ignore[attr-defined]
        clip_grad_norm_._nndoctor_clip = True  # type: ignore[attr-defined]
        clip_grad_norm_.__doc__ = original.__doc__
        return clip_grad_norm_

    def _wrap_value(self, original: Callable[..., Any]) -> Callable[..., Any]:
        watch = self

        def clip_grad_value_(parameters, clip_value, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not watch._recording():
                return original(parameters, clip_value, *args, **kwargs)
            try:
                params = _params(parameters)
                with watch.observer.busy, torch.no_grad():
                    grads = [local(p.grad) for p in params if p.grad is not None]  # this rank's shard
                    peaks = [g.detach().abs().max() for g in grads if g.numel() and not g.is_sparse]
                    measured = (torch.stack([t.float().to(peaks[0].device) for t in peaks]).max()
                                if peaks else None)
            except Exception as exc:
                watch.observer._fail("clip_grad_value_", exc)
                return original(parameters, clip_value, *args, **kwargs)
            result = original(params, clip_value, *args, **kwargs)
            if measured is not None:
                try:
                    watch._record("clip_grad_value_", clip_value, params, measured)
                except Exception as exc:
                    watch.observer._fail("clip_grad_value_", exc)
            return result

        clip_grad_value_.__wrapped__ = original  # type: ignore[attr-defined]
        clip_grad_value_._nndoctor_clip = True  # type: ignore[attr-defined]
        clip_grad_value_.__doc__ = original.__doc__
        return clip_grad_value_

    def install(self) -> None:
        import torch.nn.utils as utils
        import torch.nn.utils.clip_grad as clip_grad

        for module in (utils, clip_grad):
            for name in self.NAMES:
                original = getattr(module, name, None)
                if original is None or getattr(original, "_nndoctor_clip", False):
                    continue
                wrapper = self._wrap_norm(original) if name == "clip_grad_norm_" else self._wrap_value(original)
                setattr(module, name, wrapper)
                self._originals.append((module, name, original, wrapper))

    def remove(self) -> None:
        originals, self._originals = self._originals, []
        for module, name, original, wrapper in originals:
            if getattr(module, name, None) is wrapper:
                setattr(module, name, original)
