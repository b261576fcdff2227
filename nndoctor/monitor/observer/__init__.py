"""The observer: installs PyTorch's global hooks, turns what it sees into events for checks.

Cheap probes are always on: a global optimizer step post hook, a thin wrapper around
``torch.autograd.backward`` (loss history, backward counting) and one forward pre-hook
per discovered root model. Heavy probes (a torch function mode that sees functional
calls such as ``F.cross_entropy``, global per-module forward hooks, parameter grad
hooks and the optimizer step pre hook) are switched on only for sampled steps (see
:class:`Schedule`).

Everything is installed in :meth:`Observer.__enter__` and removed in ``finally``. An
exception inside a check is caught, reported as an internal error and that check is
switched off; an exception in the observer's own code (every entry point PyTorch calls
into is guarded) is reported once and switches nndoctor off (:meth:`Observer._fail`).
Either way the user's training carries on, with unchanged results; the user's own
exceptions, ``KeyboardInterrupt`` and :class:`StopTraining` pass through untouched.

The package, one concept a module: :mod:`.core` (the :class:`Observer`: its state, installing
and removing everything), :mod:`.forward` (the module forward hooks), :mod:`.backward` (the
backward / ``autograd.grad`` wrappers), :mod:`.steps` (the optimizer step hooks, step counting
and the end of each step), :mod:`.probes` (the heavy probes of sampled steps), :mod:`.loads` (``load_state_dict`` of root
models), :mod:`.dispatch` (events to checks, fault isolation) and :mod:`.report` (crash, report,
facts). The function
mode's events and the discovery of models and optimizers are mixed in from
:mod:`nndoctor.monitor.functions` and :mod:`nndoctor.monitor.discovery`.
"""

from __future__ import annotations

from nndoctor.monitor.functions import LOSS_FUNCTIONS, op_name, user_site
from nndoctor.monitor.observer.core import Observer
from nndoctor.monitor.observer.steps import StopTraining

__all__ = ["LOSS_FUNCTIONS", "Observer", "StopTraining", "op_name", "user_site"]
