"""The lr-finder benchmark runs end to end (slow: it trains a grid of models)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow
def test_lr_find_benchmark_quick_run(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lr_find.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=1800, cwd=str(ROOT),
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "share within 3x of grid-best" in proc.stdout
    data = json.loads(out.read_text())
    shares = data["share_within_3x"]
    assert set(shares) == {"nndoctor", "lightning", "fastai", "torch-lr-finder"}
    assert shares["nndoctor"] >= 0.5
    for task in data["tasks"].values():
        assert len(task["grid_scores"]) == len(data["grid"]) >= 12
