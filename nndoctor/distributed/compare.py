"""Cross-rank findings from the per-rank fingerprints (:mod:`nndoctor.distributed.fingerprints`):
replicas whose weights differ after the same optimizer step, every rank training on the same batches,
gradients summed (or never all-reduced) instead of averaged."""

from __future__ import annotations

import statistics
from typing import Any, Mapping

from nndoctor import catalogue
from nndoctor.distributed.fingerprints import RankFingerprints
from nndoctor.findings import Finding, Severity

__all__ = ["compare_ranks"]

CODES = (RankFingerprints.code, *RankFingerprints.extra_codes)  # declared in nndoctor/catalogue/codes/distributed.py

#: relative difference of two checksums above which two replicas differ (DDP keeps them bit-identical)
DIVERGED = 1e-6
#: used-gradient norm / mean local norm above which the gradients were not averaged (an average of
#: vectors is never longer than the mean of their lengths: an averaged gradient gives <= 1)
NOT_AVERAGED = 1.1


def _finding(code: str, severity: Severity, message: str, evidence: dict[str, Any], step: int | None) -> Finding:
    return catalogue.finding(code, message, evidence, severity=severity, location="", first_step=step)


def _step_of(key: str) -> int:
    try:
        return int(key.rpartition(":")[2])
    except ValueError:
        return 0


def _rel(a: float, b: float, scale: float) -> float:
    return abs(a - b) / scale if scale > 0 else (0.0 if a == b else float("inf"))


def compare_ranks(records: Mapping[int, Mapping[str, Any]]) -> list[Finding]:
    """Findings from ``{rank: facts["distributed"]}`` of two or more ranks."""
    records = {r: rec for r, rec in records.items() if isinstance(rec, Mapping)}
    if len(records) < 2:
        return []
    out: list[Finding] = []
    grads = _gradients(records)
    out += grads
    out += _replicas(records, reduced=not any(f.evidence.get("reduction") == "none" for f in grads))
    out += _same_data(records)
    return out


def _replicas(records: Mapping[int, Mapping[str, Any]], reduced: bool) -> list[Finding]:
    ranks = sorted(records)
    ref = ranks[0]
    keys = sorted(set.intersection(*(set(records[r].get("params", {})) for r in ranks)), key=_step_of)
    diverged: list[tuple[str, list[int], float]] = []
    for key in keys:
        s0, q0, _ = records[ref]["params"][key]
        differing, worst = [], 0.0
        for r in ranks[1:]:
            s, q, _ = records[r]["params"][key]
            scale = max(q, q0) ** 0.5
            rel = max(_rel(q, q0, max(q, q0)), _rel(s, s0, scale))
            if rel > DIVERGED:
                differing.append(r)
                worst = max(worst, rel)
        if differing:
            diverged.append((key, differing, worst))
    if not diverged or (len(diverged) < 2 and len(keys) > 1):
        return _buffers(records, ranks, keys)
    key, differing, rel = diverged[0]
    optimizer, _, _ = key.rpartition(":")
    names = records[ref].get("param_names", {}).get(optimizer, [])
    tensors = []
    for i, name in enumerate(names):
        sums = [records[r]["params"][key][2] for r in ranks]
        if all(i < len(s) for s in sums) and any(
                _rel(s[i], sums[0][i], max(abs(sums[0][i]), abs(s[i]), 1e-12)) > DIVERGED for s in sums[1:]):
            tensors.append(name)
    step = _step_of(key)
    how = "" if reduced else " (the gradients are not all-reduced: each rank steps with its own gradient)"
    shown = ", ".join(tensors[:3]) + (f" and {len(tensors) - 3} more" if len(tensors) > 3 else "")
    message = (f"the model replicas differ across ranks after optimizer step {step}: rank(s) "
               f"{', '.join(map(str, differing))} hold other weights than rank {ref}{how}"
               + (f"; first differing: {shown}" if shown else ""))
    evidence = {"optimizer": optimizer, "optimizer_step": step, "reference_rank": ref, "differing_ranks": differing,
                "relative_difference": rel, "steps_compared": len(keys), "steps_diverged": len(diverged),
                "last_relative_difference": diverged[-1][2], "differing_tensors": tensors[:16],
                "gradients_all_reduced": reduced}
    return [_finding("distributed.replicas-diverged", Severity.ERROR, message, evidence, step)]


def _buffers(records: Mapping[int, Mapping[str, Any]], ranks: list[int], keys: list[str]) -> list[Finding]:
    """Buffers constant on every rank over the run but different across ranks: never broadcast."""
    keys = [k for k in keys if all(k in records[r].get("buffers", {}) for r in ranks)]
    if len(keys) < 2:
        return []
    ref = ranks[0]
    names = sorted(set.intersection(*(set(records[r]["buffers"][k]) for r in ranks for k in keys)))
    differing = []
    for name in names:
        per_rank = {r: {records[r]["buffers"][k][name] for k in keys} for r in ranks}
        if all(len(v) == 1 for v in per_rank.values()):  # constant on each rank
            values = [next(iter(per_rank[r])) for r in ranks]
            if any(_rel(v, values[0], max(abs(v), abs(values[0]), 1e-12)) > DIVERGED for v in values[1:]):
                differing.append(name)
    if not differing:
        return []
    step = _step_of(keys[0])
    shown = ", ".join(differing[:3]) + (f" and {len(differing) - 3} more" if len(differing) > 3 else "")
    message = (f"the model replicas hold different buffers across ranks: {shown} stayed constant on every rank "
               f"but differs from rank {ref}'s (a buffer never broadcast: the model is not wrapped in DDP, or "
               "was changed per rank after wrapping)")
    evidence = {"reference_rank": ref, "differing_buffers": differing[:16], "steps_compared": len(keys),
                "optimizer_step": step}
    return [_finding("distributed.replicas-diverged", Severity.ERROR, message, evidence, step)]


def _same_data(records: Mapping[int, Mapping[str, Any]]) -> list[Finding]:
    ranks = sorted(records)
    keys = sorted(set.intersection(*(set(records[r].get("batches", {})) for r in ranks)), key=int)
    if len(keys) < 2:
        return []
    same = [k for k in keys if len({records[r]["batches"][k] for r in ranks}) == 1]
    if len(same) < len(keys):
        return []
    step = int(keys[0])
    message = (f"every rank trained on the same batches: at all {len(keys)} sampled steps the {len(ranks)} ranks "
               "saw identical inputs, so the ranks repeat each other's work (the data is not sharded)")
    evidence = {"steps_compared": len(keys), "ranks": ranks, "first_step": step,
                "fingerprint": records[ranks[0]]["batches"][keys[0]][:80]}
    return [_finding("distributed.same-data-every-rank", Severity.WARNING, message, evidence, step)]


def _gradients(records: Mapping[int, Mapping[str, Any]]) -> list[Finding]:
    ranks = sorted(records)
    keys = sorted(set.intersection(*(set(records[r].get("grads", {})) for r in ranks)), key=_step_of)
    if not keys:
        return []
    summed, unreduced, ratios = [], [], []
    for key in keys:
        local = [records[r]["grads"][key][0] for r in ranks]
        used = [records[r]["grads"][key][1] for r in ranks]
        top = max(used)
        if all(_rel(u, used[0], top) <= 1e-6 for u in used):  # one gradient on every rank: reduced
            ratio = used[0] / statistics.fmean(local) if statistics.fmean(local) > 0 else 0.0
            ratios.append(ratio)
            if ratio > NOT_AVERAGED:
                summed.append(key)
        elif all(_rel(u, lo, max(u, lo)) <= 1e-9 for u, lo in zip(used, local)) \
                and max(local) - min(local) > 1e-6 * max(local):
            unreduced.append(key)
    need = min(2, len(keys))
    optimizer = keys[0].rpartition(":")[0]
    which = {"optimizer": optimizer,  # (the class: Adam & co. normalise the gradient's scale away)
             "optimizer_class": str(records[ranks[0]].get("optimizer_classes", {}).get(optimizer, ""))}
    if len(summed) >= need and len(summed) * 2 > len(keys):
        step = _step_of(summed[0])
        ratio = statistics.median(ratios)
        message = (f"the gradients are summed across the {len(ranks)} ranks, not averaged: the gradient the "
                   f"optimizer uses is {ratio:.2f}x the mean length of the ranks' own gradients (an average "
                   "is never longer than 1x), so the effective lr is up to "
                   f"{len(ranks)}x the one set")
        evidence = {"reduction": "sum", "ratio": round(ratio, 3), "world_size": len(ranks),
                    "steps_compared": len(keys), "steps_summed": len(summed), **which}
        return [_finding("distributed.gradients-not-averaged", Severity.WARNING, message, evidence, step)]
    if len(unreduced) >= need and len(unreduced) * 2 > len(keys):
        step = _step_of(unreduced[0])
        message = (f"the gradients are never all-reduced: on each of the {len(ranks)} ranks the optimizer steps "
                   "with that rank's own gradient (no DDP wrapper and no all-reduce), so the replicas drift apart")
        evidence = {"reduction": "none", "world_size": len(ranks), "steps_compared": len(keys),
                    "steps_unreduced": len(unreduced), **which}
        return [_finding("distributed.gradients-not-averaged", Severity.WARNING, message, evidence, step)]
    return []
