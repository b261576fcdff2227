"""Many rank reports -> one: one finding per (code, location) saying on which ranks it was seen,
the cross-rank findings of :mod:`nndoctor.distributed.compare`, and the facts of the whole job."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from nndoctor.distributed.compare import compare_ranks
from nndoctor.findings import Finding, InternalError, Report, Severity

__all__ = ["merge_results", "rank_label"]


def rank_label(ranks: list[int], world_size: int) -> str:
    """``all 4 ranks``, ``rank 1``, ``ranks 0-2``, ``ranks 0, 3``."""
    ranks = sorted(set(ranks))
    if world_size > 1 and ranks == list(range(world_size)):
        return f"all {world_size} ranks"
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    if ranks == list(range(ranks[0], ranks[-1] + 1)):
        return f"ranks {ranks[0]}-{ranks[-1]}"
    return "ranks " + ", ".join(map(str, ranks))


def merge_results(payloads: Mapping[int, Mapping[str, Any]], *, world_size: int | None = None,
                  missing: list[int] | None = None, run_dir: str = "") -> Report:
    """One report from ``{rank: result payload}`` (see :mod:`nndoctor.distributed.results`)."""
    ranks = sorted(payloads)
    world = world_size or max([int(p.get("world_size") or 0) for p in payloads.values()] + [len(ranks)])
    missing = sorted(missing if missing is not None else set(range(world)) - set(ranks))
    merged: dict[tuple[str, str], tuple[Finding, list[int], int, int | None, Severity]] = {}
    errors: list[InternalError] = []
    seen_errors: set[tuple[str, str]] = set()
    for rank in ranks:
        report = payloads[rank]["report"]
        for d in report.get("findings", []):
            try:
                f = Finding.from_dict(d)
            except (KeyError, ValueError, TypeError):
                continue
            if f.key in merged:
                first, where, count, step, sev = merged[f.key]
                steps = [s for s in (step, f.first_step) if s is not None]
                worst = f.severity if f.severity.rank > sev.rank else sev
                merged[f.key] = (first, where + [rank], count + f.count, min(steps) if steps else None, worst)
            else:
                merged[f.key] = (f, [rank], f.count, f.first_step, f.severity)
        for e in report.get("internal_errors", []):
            key = (str(e.get("probe")), str(e.get("error")))
            if key not in seen_errors:
                seen_errors.add(key)
                errors.append(InternalError(probe=f"rank {rank}: {key[0]}", error=key[1], step=e.get("step")))
    findings = []
    for f, where, count, step, sev in merged.values():
        findings.append(_with_ranks(f, where, world, count=count, first_step=step, severity=sev))
    records = {r: payloads[r]["report"].get("facts", {}).get("distributed") for r in ranks}
    for f in compare_ranks({r: rec for r, rec in records.items() if rec}):
        findings.append(_with_ranks(f, [r for r in ranks if records[r]], world, across=True))
    base = payloads[ranks[0]]["report"].get("facts", {}) if ranks else {}
    facts = {k: v for k, v in base.items() if k != "distributed"}
    facts["distributed"] = {
        "world_size": world, "ranks_reported": ranks, "ranks_missing": missing,
        "exit_codes": {str(r): payloads[r].get("exit_code") for r in ranks},
        "steps": {str(r): payloads[r]["report"].get("facts", {}).get("steps") for r in ranks},
        "hosts": sorted({str(payloads[r].get("host", "")) for r in ranks}),
        "run_dir": run_dir,
    }
    return Report(findings=findings, facts=facts, internal_errors=errors)


def _with_ranks(f: Finding, ranks: list[int], world: int, *, count: int | None = None,
                first_step: int | None = None, severity: Severity | None = None, across: bool = False) -> Finding:
    label = f"compared across {rank_label(ranks, world)}" if across else f"seen on {rank_label(ranks, world)}"
    evidence = {**f.evidence, "ranks": sorted(ranks)}
    return dataclasses.replace(f, severity=severity or f.severity, message=f"{f.message} [{label}]",
                               evidence=evidence, first_step=f.first_step if first_step is None else first_step,
                               count=f.count if count is None else count, caused_by=())
