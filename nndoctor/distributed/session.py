"""``nndoctor.watch()`` and the Lightning callback on one rank of a data-parallel job.

Each rank watches its own training, as under ``nndoctor run``; when its session ends it writes its
result file (:func:`nndoctor.distributed.rankrun.merge_rank`, the same files and merge as
``nndoctor run``) and rank 0 waits for the other ranks' files and keeps the merged report. The
files of the N-th session of a process go to ``<run folder>/watch-N`` (every rank opens its
sessions in the same order), so two ``fit`` calls in one script are not mixed up.

A script may watch on rank 0 only (``if rank == 0: nndoctor.watch(...)``): every session writes a
``started-NNNNN`` marker when it starts, and rank 0 waits only for the ranks that left one (a
rank that watches but never ends its session is waited for and named as missing).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time

from nndoctor.distributed.merge import rank_label
from nndoctor.distributed.rankinfo import RUN_DIR_ENV, RankInfo, current_rank
from nndoctor.distributed.rankrun import merge_rank
from nndoctor.findings import Report

__all__ = ["RankSession", "claim_rank", "rank_claimed", "rank_session"]

logger = logging.getLogger("nndoctor")

#: seconds rank 0 waits for the start markers of ranks that have none yet when its session ends
MARKER_GRACE = 2.0
#: markers older than this many seconds before our own start belong to an earlier launch
_START_SLACK = 600.0

_sessions = itertools.count(1)
_claimed: list[str] = []


def claim_rank(owner: str) -> None:
    """``nndoctor run`` writes this rank's result itself: sessions opened inside the script do not."""
    if owner not in _claimed:
        _claimed.append(owner)


def rank_claimed() -> bool:
    return bool(_claimed)


def _marker(run_dir: str, rank: int) -> str:
    return os.path.join(run_dir, f"started-{rank:05d}")


class RankSession:
    """One watch session on one rank: a start marker, then the result file (and on rank 0 the merge)."""

    def __init__(self, info: RankInfo) -> None:
        self.info = info
        self.index = next(_sessions)
        self.base = info.run_dir()
        self.run_dir = os.path.join(self.base, f"watch-{self.index}")
        # a folder of our own making is removed once merged; a given one (shared, multi-node) stays
        self.owned = not info.multi_node and not os.environ.get(RUN_DIR_ENV)
        self.started = time.time()

    def start(self) -> None:
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            with open(_marker(self.run_dir, self.info.rank), "w", encoding="utf-8") as fh:
                json.dump({"started": self.started}, fh)
        except OSError as exc:
            logger.warning("nndoctor: rank %d could not write to %s: %s", self.info.rank, self.run_dir, exc)

    def _watching(self, ranks: list[int]) -> set[int]:
        found = {self.info.rank}
        for rank in ranks:
            try:
                with open(_marker(self.run_dir, rank), encoding="utf-8") as fh:
                    if float(json.load(fh).get("started", 0)) >= self.started - _START_SLACK:
                        found.add(rank)
            except (OSError, ValueError, AttributeError):
                continue
        return found

    def finish(self, report: Report, *, crashed: bool) -> Report | None:
        """Write this rank's result; on rank 0 return the merged report of the ranks that watched."""
        info = self.info
        wanted: list[int] | None = None
        unwatched: list[int] = []
        if info.is_main:
            # without a shared folder rank 0 sees its own node's files only (as under ``nndoctor run``)
            alone = info.multi_node and not os.environ.get(RUN_DIR_ENV)
            ranks = list(range(info.local_world_size if alone else info.world_size))
            deadline = time.monotonic() + MARKER_GRACE
            watching = self._watching(ranks)
            while len(watching) < len(ranks) and time.monotonic() < deadline:
                time.sleep(0.1)
                watching = self._watching(ranks)
            wanted = sorted(watching)
            unwatched = [r for r in ranks if r not in watching]
        merged = merge_rank(info, report, exit_code=1 if crashed else 0, crashed=crashed, started=self.started,
                            run_dir=self.run_dir, owned=self.owned, wanted=wanted, unwatched=unwatched)
        if merged is None:
            return None
        if self.owned:
            try:
                os.rmdir(self.base)  # the launch's folder, once its last session is merged
            except OSError:
                pass
        dist = merged.report.facts.get("distributed", {})
        missing = dist.get("ranks_missing", [])
        logger.info("nndoctor: merged the results of %s (world size %d)",
                    rank_label(dist.get("ranks_reported", []), info.world_size), info.world_size)
        if missing:
            logger.warning("nndoctor: %s wrote no result within %.0f s; the report covers the other ranks "
                           "(per-rank results in %s)", rank_label(missing, info.world_size),
                           merged.waited or 0.0, self.run_dir)
        return merged.report


def rank_session(info: RankInfo | None = None) -> RankSession | None:
    """A session for this rank of a data-parallel job of 2 or more ranks, else None (one process,
    or ``nndoctor run`` handles this rank's result)."""
    info = info if info is not None else current_rank()
    if info is None or info.world_size < 2 or rank_claimed():
        return None
    return RankSession(info)
