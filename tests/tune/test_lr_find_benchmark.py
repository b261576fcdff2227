"""The lr-finder benchmark runs end to end (slow: it trains a grid of models)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lr_find.py"), *args],
                          capture_output=True, text=True, timeout=1800, cwd=str(ROOT),
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})


@pytest.mark.slow
def test_lr_find_benchmark_quick_run(tmp_path):
    out, cache = tmp_path / "bench.json", tmp_path / "cache"
    proc = _run("--quick", "--json", str(out), "--cache", str(cache))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "share within 3x of grid-best" in proc.stdout
    data = json.loads(out.read_text())
    shares = data["share_within_3x"]
    assert set(shares) == {"nndoctor", "nndoctor-1", "lightning", "lightning-2", "fastai", "fastai-2",
                           "torch-lr-finder"}
    assert shares["nndoctor"] >= 0.5
    for task in data["tasks"].values():
        assert len(task["grid_scores"]) == len(data["grid"]) >= 12
    # the cache holds every measurement: a second run trains nothing and scores the same
    assert len(list(cache.glob("*.json"))) == len(data["tasks"])
    again = tmp_path / "again.json"
    proc2 = _run("--quick", "--json", str(again), "--cache", str(cache))
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    data2 = json.loads(again.read_text())
    assert data2["share_within_3x"] == shares
    assert [t["grid_scores"] for t in data2["tasks"].values()] == [t["grid_scores"] for t in data["tasks"].values()]
