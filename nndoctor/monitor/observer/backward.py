"""The wrappers of ``torch.autograd.backward``, ``Tensor.backward`` and ``torch.autograd.grad``:
the loss history and backward counting, always on; the short path of a finite CPU loss between
samples (mixed into :class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import functools
from typing import Any

import torch

from nndoctor.monitor.evalrec import recipe_of
from nndoctor.monitor.events import BackwardCall
from nndoctor.monitor.functions import _FORKS
from nndoctor.monitor.observer.steps import StopTraining

__all__ = ["BackwardHooks"]

_Tensor = torch.Tensor


class BackwardHooks:
    """Observer methods that wrap, restore and serve the backward entry points."""

    def _patch_backward(self) -> None:
        original = torch.autograd.backward
        self._orig_backward = original
        observer = self

        def backward(tensors, *args, **kwargs):  # type: ignore[no-untyped-def]
            if observer._in_backward:  # (a mode pushed by this call's tick hands it back once more)
                return original(tensors, *args, **kwargs)
            if observer._active and not observer._busy and _FORKS[0] == observer._pid:
                try:  # (the guard inlined: this runs on every backward)
                    # the common case, kept short: a finite CPU loss between samples (all else,
                    # a non-finite loss included: _on_backward)
                    if observer._fast_backward and not observer._heavy and type(tensors) is _Tensor \
                            and tensors.is_cpu and tensors.numel() == 1 \
                            and type(value := tensors.item()) is float and value - value == 0.0:
                        state = observer.state
                        state.backward_calls += 1
                        state.forwards_at_backward = state.forward_calls
                        state.losses.record_float(state.step, value)
                    else:
                        observer._on_backward(tensors)
                except Exception as exc:
                    observer._fail("backward", exc)
                    observer._switch_off()
            elif observer._failed:  # nndoctor failed: take the hooks off, keep only max_steps
                observer._switch_off()
                observer._count_after_failure(False)
            observer._in_backward = True
            try:
                return original(tensors, *args, **kwargs)
            finally:
                observer._in_backward = False

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        backward.__doc__ = original.__doc__
        torch.autograd.backward = backward  # type: ignore[assignment]
        self._patch_tensor_backward()
        self._patch_grad()

    def _patch_tensor_backward(self) -> None:
        """``loss.backward()`` of a script without optimizer (nor model) ticks inside the function
        mode, which cannot be popped there: it would stay on the stack, disabled, a Python call on
        every torch call of the run. Back from ``Tensor.backward`` the mode is on top: popped here."""
        original = torch.Tensor.backward
        self._orig_tensor_backward = original
        observer = self

        @functools.wraps(original)
        def backward(tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
            result = original(tensor, *args, **kwargs)
            if observer._mode is not None and not (observer._heavy or observer._light or observer._busy) \
                    and _FORKS[0] == observer._pid:
                try:
                    observer._pop_mode()
                except Exception as exc:
                    observer._fail("Tensor.backward", exc)
            return result

        torch.Tensor.backward = backward  # type: ignore[method-assign]

    def _patch_grad(self) -> None:  # (torch.func.grad's own call: see _functorch_grad)
        """``torch.autograd.grad(loss, params)`` of a scalar loss in a script without optimizer is a
        step of a hand-written update (``p -= lr * g``): counted like a backward (``--max-steps``, the
        step of findings, the loss history). With an optimizer (gradient penalties, MAML inner loops)
        the optimizer counts the steps and this call is left alone."""
        original = torch.autograd.grad
        self._orig_grad = original
        observer = self

        def grad(outputs, *args, **kwargs):  # type: ignore[no-untyped-def]
            # (a torch function mode hands the call back to this wrapper once more: counted once)
            if observer._active and not observer._busy and not observer._in_grad \
                    and _FORKS[0] == observer._pid and not observer.state.optimizers \
                    and ((not kwargs.get("create_graph") and kwargs.get("grad_outputs") is None and len(args) < 2)
                         or _functorch_grad(outputs, args, kwargs)):
                try:
                    loss = outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
                    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.requires_grad:
                        if kwargs.get("create_graph"):  # (torch.func.grad: the weights are a dict of the script's)
                            extra = observer.state.extra
                            extra[FUNCTIONAL_STEPS] = extra.get(FUNCTIONAL_STEPS, 0) + 1
                        observer._on_backward(loss)
                except Exception as exc:
                    observer._fail("autograd.grad", exc)
                    observer._switch_off()
            if observer._in_grad:
                return original(outputs, *args, **kwargs)
            observer._in_grad = True
            try:
                return original(outputs, *args, **kwargs)
            finally:
                observer._in_grad = False

        grad.__wrapped__ = original  # type: ignore[attr-defined]
        grad.__doc__ = original.__doc__
        torch.autograd.grad = grad  # type: ignore[assignment]

    def _on_backward(self, tensors: Any) -> None:
        # runs on every backward: locals instead of repeated attribute look-ups
        state = self.state
        if self._prep_paused:
            self._resume_after_preparation()  # (a network without modules: its first backward)
        tensor = tensors if isinstance(tensors, torch.Tensor) else (
            tensors[0] if isinstance(tensors, (list, tuple)) and tensors else None)
        if self._heavy and self._loss_recipe is None and self._recipe_tries < 8 and isinstance(tensor, torch.Tensor):
            self._recipe_tries += 1  # a hand-written training loss: its recipe finds it in evaluation loops
            self._loss_recipe = recipe_of(tensor) if tensor.numel() == 1 else None
            self._residuals.on_recipe(self._loss_recipe)
        index = state.backward_calls
        if not state.optimizers:
            # no optimizer (yet): every backward is a step (a hand-written update follows it)
            if self.max_steps is not None and index >= self.max_steps:
                self.end_reason = "max-steps"
                raise StopTraining(self.max_steps)
            state.step = index + 1
        state.backward_calls = index + 1
        state.forwards_at_backward = state.forward_calls
        if isinstance(tensor, torch.Tensor):
            # without an optimizer every backward is a step: the checks get them all
            unsampled = not self._heavy and bool(state.optimizers)
            finite = True
            if tensor.numel() == 1:
                if self._reads_loss_here(tensor):
                    # a CPU scalar: reading it costs no sync, and keeps no tensor
                    value = tensor.item()
                    finite = value - value == 0.0  # (math.isfinite without the call)
                    state.losses.record_float(state.step, value)
                else:
                    state.losses.record(state.step, tensor)  # read in batches (no sync)
                    finite = False  # unknown here: an accelerator's check keeps a device-side flag
            by_kind = self._by_kind_unsampled if unsampled else self._by_kind
            if by_kind.get("backward"):
                self._dispatch(BackwardCall(tensor=tensor, step=state.step, index=index,
                                            sampled=self._heavy), checks=by_kind["backward"])
            if not finite and unsampled and "loss_check" in self._by_kind:
                # unsampled: only a non-finite CPU loss (or any accelerator loss) becomes an event
                self._dispatch(BackwardCall(tensor=tensor, step=state.step, index=index,
                                            sampled=False), kind="loss_check")
        if not state.optimizers:
            state.step = index + 2  # the step in progress (until an optimizer steps: _register_optimizer)
            self._tick()

    def _refresh_fast_backward(self) -> None:
        """Whether the backward wrapper may take its short path: the run has an optimizer (else
        every backward is a step), no check wants unsampled backward events, the probe is on and
        CPU losses are read on every backward (see :meth:`_reads_loss_here`)."""
        from nndoctor.monitor.observer.core import Observer  # (the class mixing this in: a cycle at import)

        self._fast_backward = (bool(self.state.optimizers) and "backward" not in self._disabled
                               and not self._by_kind_unsampled.get("backward")
                               and type(self)._reads_loss_here is Observer._reads_loss_here)

    @staticmethod
    def _reads_loss_here(tensor: torch.Tensor) -> bool:
        """Whether the loss is read on every backward: a CPU float costs no sync (an accelerator's
        losses are read in batches, and its non-finite check keeps a device-side flag)."""
        return tensor.is_cpu and tensor.is_floating_point()

    def _restore_backward(self) -> None:
        if self._orig_backward is not None:
            torch.autograd.backward = self._orig_backward  # type: ignore[assignment]
            self._orig_backward = None
        if self._orig_grad is not None:
            torch.autograd.grad = self._orig_grad  # type: ignore[assignment]
            self._orig_grad = None
        if self._orig_tensor_backward is not None:
            torch.Tensor.backward = self._orig_tensor_backward  # type: ignore[method-assign]
            self._orig_tensor_backward = None


#: ``state.extra`` key: steps counted from torch.func.grad (weights outside the model's parameters)
FUNCTIONAL_STEPS = "nndoctor.functional_steps"


def _functorch_grad(outputs: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """``torch.func.grad``/``grad_and_value`` of a scalar loss, at the outermost transform: its call of
    ``torch.autograd.grad(outputs, inputs, None, create_graph=True)`` is a step of a hand-written
    update (``params = {k: p - lr * g[k]}``), like the user's own ``torch.autograd.grad(loss, params)``.
    ``create_graph=True`` is functorch's default there, not a gradient penalty; a grad nested in
    another transform (vmap for per-example gradients, a grad of a grad) and vector-Jacobian products
    (``grad_outputs`` given: jacrev, vjp) are not steps."""
    if kwargs.get("grad_outputs") is not None or len(args) > 2 or (len(args) == 2 and args[1] is not None):
        return False
    loss = outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
    if not isinstance(loss, torch.Tensor):
        return False
    try:
        from torch._C import _functorch

        return bool(_functorch.is_gradtrackingtensor(loss)) and _functorch.maybe_current_level() == 1
    except Exception:  # (a torch without functorch's internals: not a functorch call)
        return False
