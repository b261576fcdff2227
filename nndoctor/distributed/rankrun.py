"""The end of ``nndoctor run`` on one rank: write this rank's result; on rank 0 wait for the others,
merge, and print the one summary (and the merged JSON/HTML). Other ranks print nothing of nndoctor's."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from nndoctor.distributed.merge import merge_results, rank_label
from nndoctor.distributed.rankinfo import MERGE_BY_LAUNCHER, RUN_DIR_ENV, RankInfo
from nndoctor.distributed.results import collect, write_result
from nndoctor.findings import Report

if TYPE_CHECKING:  # rich is imported where a summary is printed (``nndoctor.watch`` does not need it)
    from rich.console import Console

__all__ = ["MERGE_TIMEOUT_ENV", "Merged", "finish_rank", "merge_rank", "show_merged"]

logger = logging.getLogger("nndoctor")

#: seconds rank 0 waits for the other ranks' results after its own script ended
MERGE_TIMEOUT_ENV = "NNDOCTOR_MERGE_TIMEOUT"
#: ranks start within this many seconds of each other: older results in the folder are a former launch
_START_SLACK = 600.0


def _timeout() -> float:
    try:
        return max(0.0, float(os.environ.get(MERGE_TIMEOUT_ENV, "120")))
    except ValueError:
        return 120.0


@dataclass(frozen=True)
class Merged:
    """Rank 0's merged report, and what :func:`show_merged` says about it."""

    report: Report
    waited: float | None  # the seconds waited in vain for some rank's result, else None
    multi_node_hint: bool  # ranks on other nodes wrote to a folder of their own


def merge_rank(info: RankInfo, report: Report, *, exit_code: int, crashed: bool, started: float,
               run_dir: str | None = None, owned: bool | None = None, wanted: list[int] | None = None,
               unwatched: list[int] | None = None) -> Merged | None:
    """Write this rank's result into ``run_dir`` (default: :meth:`RankInfo.run_dir`); on rank 0 (unless
    the launcher merges) wait for the results of ``wanted`` ranks (default: all, or this node's
    without a shared folder) and return them merged, else None. ``owned``: the folder is removed
    once every wanted rank is merged (default: a folder of our own making on one node)."""
    run_dir = run_dir or info.run_dir()
    try:
        write_result(run_dir, info, report.to_dict(), exit_code=exit_code, started=started, crashed=crashed)
    except OSError as exc:
        logger.warning("nndoctor: rank %d could not write its result to %s: %s", info.rank, run_dir, exc)
        if not info.is_main:
            return None
    if not info.is_main or os.environ.get(MERGE_BY_LAUNCHER):
        return None
    hint = info.multi_node and not os.environ.get(RUN_DIR_ENV)
    if wanted is None:
        # without a shared folder rank 0 sees its own node's results only
        wanted = list(range(info.local_world_size)) if hint else list(range(info.world_size))
    # a rank 0 that crashed or was stopped most likely took the job down with it (or a peer's death
    # did): the others will not finish, so do not wait long for them
    timeout = _timeout() if not crashed else min(_timeout(), 5.0)
    payloads, missing = collect(run_dir, wanted, timeout=timeout, since=started - _START_SLACK)
    if info.rank not in payloads:  # our own file could not be written: merge what we have in memory
        payloads[info.rank] = {"rank": info.rank, "world_size": info.world_size, "exit_code": exit_code,
                               "report": report.to_dict(), "host": info.host}
    skipped = sorted(set(unwatched or ()) - set(payloads))
    absent = sorted(set(range(info.world_size)) - set(payloads) - set(skipped))
    # a folder of our own making is removed once every rank is merged (a shared or given one stays)
    owned = (not info.multi_node and not os.environ.get(RUN_DIR_ENV)) if owned is None else owned
    tidy = owned and not absent
    merged = merge_results(payloads, world_size=info.world_size, missing=absent, run_dir="" if tidy else run_dir)
    if skipped:
        merged.facts["distributed"]["ranks_unwatched"] = skipped
    if tidy:
        shutil.rmtree(run_dir, ignore_errors=True)
    return Merged(merged, timeout if missing else None, hint)


def finish_rank(info: RankInfo, result: Any, ns: Any, console: Console, started: float,
                render: Callable[[Report], None]) -> Report | None:
    """Write this rank's result; on rank 0 (unless the launcher merges) return the merged report
    (printed with ``render``), else None. A fault here costs the merge, never the script's exit code."""
    merged = merge_rank(info, result.report, exit_code=result.exit_code, crashed=result.exception is not None,
                        started=started)
    if merged is None:
        return None
    show_merged(merged.report, console, render, waited=merged.waited, multi_node_hint=merged.multi_node_hint)
    return merged.report


def show_merged(report: Report, console: Console, render: Callable[[Report], None], *,
                waited: float | None = None, multi_node_hint: bool = False) -> None:
    """Print the merged summary with a line on the ranks it covers and the ones missing."""
    from rich.text import Text

    dist = report.facts.get("distributed", {})
    world = int(dist.get("world_size") or 1)
    reported, missing = dist.get("ranks_reported", []), dist.get("ranks_missing", [])
    where = f"; per-rank results in {dist['run_dir']}" if dist.get("run_dir") else ""
    console.print(Text(f"nndoctor: merged the results of {rank_label(reported, world)} (world size {world}){where}",
                       style="dim"))
    if missing:
        why = f" within {waited:.0f} s" if waited else ""
        console.print(Text(f"nndoctor: {rank_label(missing, world)} wrote no result{why}: it died, was killed, "
                           "or is still running; this report covers the other ranks", style="bold yellow"))
        if multi_node_hint:
            console.print(Text("nndoctor: ranks on other nodes write to their own folder: copy their rank-*.json "
                               "files into one folder and run 'nndoctor merge FOLDER' (or set "
                               f"{RUN_DIR_ENV} to a shared folder)", style="yellow"))
    render(report)
