"""Data-parallel training (``torchrun``, DistributedDataParallel): one observer per rank, per-rank
result files, cross-rank fingerprints compared at the end, one merged report.

Modules: rankinfo (which rank this process is, where results go), fingerprints (the cheap per-rank
records compared across ranks), checks (per-rank distributed checks), compare (the cross-rank
findings), results (writing and collecting per-rank result files), merge (many rank reports ->
one), launch (``nndoctor run --nproc N``), cli (``nndoctor merge``).
"""

from __future__ import annotations

from nndoctor.distributed.rankinfo import RankInfo, current_rank

__all__ = ["RankInfo", "current_rank"]
