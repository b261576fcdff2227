"""`diagnose --tune N`: its tuning stage reports the best trial under the code that fits its parameters."""

from __future__ import annotations

import pytest
from rich.console import Console

from nndoctor.diagnose import diagnose
from nndoctor.findings import Severity

EXPERIMENT = '''
import torch
from torch import nn

import nndoctor


def experiment(lr: float = 3e-2, hidden: int = 16, epochs: int = 1) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                               optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                               train=batches, train_val=batches[:1])
'''


@pytest.mark.parametrize("space, code", [
    ("", "lr.tuned-configuration"),  # the derived space includes the learning rate
    ("SPACE = {'hidden': nndoctor.choice([4, 8, 16])}", "optimizer.tuned-configuration"),
])
def test_tuning_stage_reports_the_best_trial(tmp_path, space, code):
    path = tmp_path / "exp.py"
    path.write_text(EXPERIMENT + "\n" + space + "\n")
    result = diagnose(str(path), epochs=1, tune_trials=3, console=Console(quiet=True))
    assert result.stopped_at is None, [s.__dict__ for s in result.stages]
    tuned = [f for f in result.report.findings if f.code.endswith(".tuned-configuration")]
    assert [f.code for f in tuned] == [code]
    f = tuned[0]
    assert f.severity is Severity.INFO and f.location == "tune"
    history = result.report.facts["tune"]["history"]
    assert len(history) == 3 and f"value {min(history):.4g}" in f.message
    params = result.report.facts["tune"]["best_params"]
    assert f.evidence["set"].startswith("--set ") and all(f"--set {k}=" in f.evidence["set"] for k in params)
    assert ("lr" in params) == (code == "lr.tuned-configuration")
    assert f.fixes == (f"Re-run with {f.evidence['set']}",)
