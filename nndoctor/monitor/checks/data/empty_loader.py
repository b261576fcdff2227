"""data: a DataLoader iterated while it has no batch to give.

``DataLoader(ds, batch_size=128, drop_last=True)`` over 120 rows yields nothing: ``for xb, yb in
loader`` ends at once, every epoch, without an error. The model is never trained (or never
evaluated) and the script still prints its final metrics. The same happens with an empty split
(a slice or a filter that keeps no row).

``data.loader-yields-no-batches`` reads what the loader tracker (:mod:`nndoctor.monitor.loaders`)
noted when a DataLoader was iterated with ``len(loader) == 0`` (loaders whose length is unknown,
iterable datasets, are not judged). At the end of the run: an error when no optimizer step ran at
all (nothing was trained), a warning otherwise (another loop ran; this loader's loop never did).
"""

from __future__ import annotations

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
        empty = getattr(tracker, "empty", None)
        if not empty:
            return ()
        trained = self.state.step > 1  # (1-based: the step in progress is 1 until an optimizer step ran)
        out = []
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
