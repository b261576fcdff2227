"""DataLoader worker processes (fork, spawn) under ``nndoctor run``: the script runs as it does
plain (same printed losses), every optimizer step is counted, nothing is reported as an internal
error, and a fault in the data the workers prepare is still found from the batches they deliver."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import run_cli

SCRIPT = '''
import sys
import torch, torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class Points(Dataset):
    def __init__(self, scale: float, n: int = 512) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 10, generator=g)
        self.y = (self.x[:, 0] > 0).long()
        self.scale = scale

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        x = (self.x[i] - self.x[i].mean()) * self.scale + 30.0 * (self.scale != 1.0)
        return x, self.y[i]


def main() -> None:
    ctx, scale = sys.argv[1], float(sys.argv[2])
    torch.manual_seed(0)
    loader = DataLoader(Points(scale), batch_size=32, shuffle=True, num_workers=2,
                        multiprocessing_context=ctx, persistent_workers=True)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(3):
        total = 0.0
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch} loss {total / len(loader):.6f}")


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_loader_workers_run_unchanged_and_are_observed(context: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "workers.py"
        script.write_text(SCRIPT)
        plain = subprocess.run([sys.executable, str(script), context, "1"], capture_output=True, text=True,
                               timeout=180, cwd=tmp)
        assert plain.returncode == 0, plain.stderr
        res = run_cli("run", str(script), context, "1", cwd=Path(tmp))
        assert res.code == 0, res.stderr
        assert res.stdout.splitlines()[-3:] == plain.stdout.splitlines()[-3:]
        assert res.report["internal_errors"] == [], res.report["internal_errors"]
        assert res.report["facts"]["steps"] == 48
        assert not res.codes("warning"), res.report["findings"]
        raw = run_cli("run", str(script), context, "1000", cwd=Path(tmp))
        assert raw.code == 0, raw.stderr
        assert "preprocessing" in raw.categories("warning"), raw.report["findings"]
