"""One re-run of ``nndoctor fix``: apply remedies, run the script under nndoctor, write JSON.

``python -m nndoctor.fix.child SPEC.json``: SPEC names the script, its arguments, the step
budget, the findings whose remedies to apply, the output path and, for the noise run, the
diagnosis's first backward values (``repeat_of``: the run stops once it repeats them exactly). The script's own stdout
passes through untouched (the parent reads its last lines); the JSON holds the report, the
exit code and any remedy that could not be installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Any

__all__ = ["FIX_END_BUDGET_S", "main", "raised_in_remedy"]

#: seconds every run of ``nndoctor fix`` gives its end-of-run analysis at least (a normal run: 0.2 s or
#: 5% of the run): the diagnosis and the re-runs are compared finding by finding, and a probe left out
#: under load would be a root cause missing from one of them
FIX_END_BUDGET_S = 20.0

_REMEDY_DIR = os.path.dirname(os.path.abspath(__file__))


def raised_in_remedy(exc: BaseException | None) -> str:
    """``Type: message`` when the innermost frame of a crash is nndoctor's remedy code
    (nndoctor/fix: a remedy's own bug, not the script's), else ''."""
    if exc is None or isinstance(exc, KeyboardInterrupt):
        return ""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or not os.path.abspath(frames[-1].filename).startswith(_REMEDY_DIR + os.sep):
        return ""
    return f"{type(exc).__name__}: {exc} (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    from nndoctor.fix.remedies import remedy_for
    from nndoctor.fix.repeat import RepeatWatch, stop_as_repeat, watch_backward
    from nndoctor.monitor.ending import ample_end_budget
    from nndoctor.monitor.runner import run_script
    from nndoctor.monitor.sampling import Schedule

    failed: list[str] = []
    # every run notes its first backward values; the noise run (``repeat_of``: the diagnosis's) stops once
    # they repeat the diagnosis bit for bit (nndoctor.fix.repeat)
    watch = RepeatWatch(spec.get("repeat_of"), lambda: stop_as_repeat(spec["out"]))
    with contextlib.ExitStack() as stack:
        watch_backward(stack, watch)
        for finding in spec.get("remedies", []):
            remedy = remedy_for(finding)
            if remedy is None:
                failed.append(f"{finding.get('code')}: no remedy")
                continue
            try:
                remedy.install(finding, stack)
            except Exception as exc:  # a remedy that cannot apply is reported, never half-applied
                failed.append(f"{remedy.name}: {type(exc).__name__}: {exc}")
        if failed:
            result: dict[str, Any] = {"exit_code": None, "report": None, "remedy_errors": failed}
        else:
            def outcome(run: Any) -> dict[str, Any]:
                sys.stdout.flush()
                raised = raised_in_remedy(run.exception)
                return {"exit_code": run.exit_code, "report": run.report.to_dict(),
                        "remedy_errors": [f"a remedy raised during the run: {raised}"] if raised else [],
                        "crashed": run.traceback_text[-2000:] if run.traceback_text else "",
                        "loss_prefix": watch.seen}

            def hard_exit(run: Any) -> int:  # the script ends with os._exit: write the result first
                _write(spec["out"], outcome(run))
                return int(run.exit_code)

            with ample_end_budget(FIX_END_BUDGET_S):
                run = run_script(spec["script"], spec.get("args", []), max_steps=spec.get("max_steps"),
                                 schedule=Schedule(), on_hard_exit=hard_exit)
            result = outcome(run)
    _write(spec["out"], result)
    return 0


def _write(out: str, result: dict[str, Any]) -> None:
    from nndoctor.fix.repeat import cpu_seconds

    result["cpu_seconds"] = cpu_seconds()
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    raise SystemExit(main())
