"""Per-rank result files: each rank writes ``rank-NNNNN.json`` into the run folder when its script
ends (no process group needed, so it works after ``destroy_process_group``); the merging side waits
for them with a timeout and names the ranks that never wrote one."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from typing import Any

from nndoctor.distributed.rankinfo import RankInfo

__all__ = ["FILE_FORMAT", "collect", "read_results", "result_path", "write_result"]

logger = logging.getLogger("nndoctor")

FILE_FORMAT = "nndoctor-rank-result/1"


def result_path(run_dir: str, rank: int) -> str:
    return os.path.join(run_dir, f"rank-{rank:05d}.json")


def write_result(run_dir: str, info: RankInfo, report: dict[str, Any], *, exit_code: int, started: float,
                 crashed: bool) -> str:
    """Write this rank's result atomically (a temporary file renamed into place); returns its path."""
    os.makedirs(run_dir, exist_ok=True)
    payload = {"format": FILE_FORMAT, **info.to_dict(), "pid": os.getpid(), "started": started,
               "finished": time.time(), "exit_code": exit_code, "crashed": crashed, "report": report}
    path = result_path(run_dir, info.rank)
    fd, tmp = tempfile.mkstemp(prefix=".rank-", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_results(paths: list[str], *, since: float | None = None) -> dict[int, dict[str, Any]]:
    """``{rank: payload}`` from result files (unreadable, foreign or stale ones are skipped and logged)."""
    out: dict[int, dict[str, Any]] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                payload = json.load(fh)
        except (OSError, ValueError) as exc:
            logger.debug("nndoctor skips %s: %s", path, exc)
            continue
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT \
                or not isinstance(payload.get("rank"), int) or not isinstance(payload.get("report"), dict):
            logger.debug("nndoctor skips %s: not a rank result", path)
            continue
        if since is not None and float(payload.get("started", 0)) < since:
            continue  # a result of an earlier launch left in the same folder
        out.setdefault(payload["rank"], payload)
    return out


def _files(run_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(run_dir))
    except OSError:
        return []
    return [os.path.join(run_dir, n) for n in names if n.startswith("rank-") and n.endswith(".json")]


def collect(run_dir: str, ranks: list[int], *, timeout: float, since: float | None = None,
            poll: float = 0.2) -> tuple[dict[int, dict[str, Any]], list[int]]:
    """Wait up to ``timeout`` seconds for the results of ``ranks``; returns those read and the missing."""
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        found = read_results(_files(run_dir), since=since)
        missing = [r for r in ranks if r not in found]
        if not missing or time.monotonic() >= deadline:
            return found, missing
        time.sleep(poll)
