"""data: a DataLoader iterated while it has no batch to give.

``DataLoader(ds, batch_size=128, drop_last=True)`` over 120 rows yields nothing: ``for xb, yb in
loader`` ends at once, every epoch, without an error. The model is never trained (or never
evaluated) and the script still prints its final metrics. The same happens with an empty split
(a slice or a filter that keeps no row).

``data.loader-yields-no-batches`` reads what the loader tracker (:mod:`nndoctor.monitor.loaders`)
noted when a DataLoader was iterated with ``len(loader) == 0`` (loaders whose length is unknown,
iterable datasets, are not judged). At the end of the run: an error when no optimizer step ran at
all (nothing was trained), a warning otherwise (another loop ran; this loader's loop never did).

The same code covers a loader whose iterator is made once, outside the epoch loop (``it =
iter(loader)`` then ``for epoch ...: for xb, yb in it``): the first pass exhausts it and every later
``for`` over it ends at once, so only the first epoch trains. The tracker notes an iterator iterated
again after its batches ran out (StopIteration); reported as a warning.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import RunEnd, Targets

__all__ = ["LoaderYieldsNoBatches"]


@register
class LoaderYieldsNoBatches(Check):
    """A DataLoader iterated with no batch in it."""

    code = "data.loader-yields-no-batches"
    #: "targets" only so that the observer installs the loader tracker (the events are ignored)
    needs = ("targets", "end")

    def check(self, event: RunEnd | Targets) -> Iterable[Finding]:
        if not isinstance(event, RunEnd):
            return ()
        tracker = self.state.loaders
        empty = getattr(tracker, "empty", None) or {}
        reused = getattr(tracker, "reused_exhausted", None) or {}
        if not empty and not reused:
            return ()
        trained = self.state.step > 1  # (1-based: the step in progress is 1 until an optimizer step ran)
        out = [self._reused(name, times) for name, times in list(reused.values())[:4]]
        for name, size, batch, drop_last, times in list(empty.values())[:4]:
            label = name or "a DataLoader"
            cause = (f"drop_last=True drops its only, incomplete batch ({size} rows < batch_size={batch})"
                     if drop_last and size and batch and size < batch else f"its dataset has {size} rows")
            ev = {"loader": label, "dataset_rows": size, "batch_size": batch, "drop_last": drop_last,
                  "iterations": times, "optimizer_steps": self.state.step - 1}
            tail = ("no optimizer step ran in the whole run: the model was never trained" if not trained else
                    "the loop over it never ran (its metrics are never computed)")
            out.append(self.finding(
                f"{label} was iterated {times} time(s) but yields no batch: {cause}; {tail}", ev,
                location=label, severity=None if trained else Severity.ERROR))
        return out

    def _reused(self, name: str, times: int) -> Finding:
        label = name or "a DataLoader"
        steps = self.state.step - 1
        ev = {"loader": label, "passes_after_exhausted": times, "optimizer_steps": steps, "reused_iterator": True}
        found = self.finding(
            f"the iterator of {label} was iterated {times} more time(s) after its batches ran out: an "
            f"iterator made once (it = iter({name or 'loader'})) outside the epoch loop is exhausted by the "
            f"first pass, so every later pass over it yields no batch and trains on nothing "
            f"({steps} optimizer steps in the whole run)", ev, location=label)
        loader = name or "loader"
        return dataclasses.replace(found, fixes=(
            f"Iterate {loader} itself in each epoch (for xb, yb in {loader}: ...), or call iter({loader}) "
            "again at the start of every epoch.",
            f"For a fixed number of steps, make a new iterator when the old one runs out (except "
            f"StopIteration: it = iter({loader})).",
        ))
