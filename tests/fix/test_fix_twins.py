"""``nndoctor fix`` end to end on small faulty scripts of root causes given a remedy late (a
parameter group at lr 0, {0, 1} labels to a margin loss): the diagnosis finds the bug in its own
process, the remedy's re-run is verified and reaches the fixed twin's accuracy; the twin gets no
remedy to try."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nndoctor.fix.session import run_fix

HEAD = """import torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
"""
GROUP_LR = HEAD + """X = torch.randn(1200, 20, generator=g); W = torch.randn(20, 4, generator=g)
Y = (X @ W + 0.5 * torch.randn(1200, 4, generator=g)).argmax(1)
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
base_lr, body_mult = 3e-3, 1 // 10
opt = torch.optim.Adam([{"params": model[0].parameters(), "lr": BODY_LR},
                        {"params": model[2].parameters()}], lr=base_lr)
for epoch in range(4):
    for i in range(0, 1000, 32):
        opt.zero_grad()
        F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32]).backward()
        opt.step()
with torch.no_grad():
    acc = (model(X[1000:]).argmax(1) == Y[1000:]).float().mean().item()
print(f"final: acc={acc:.4f}")
"""
MARGIN = HEAD + """X = torch.randn(1200, 6, generator=g)
y = (X[:, 0] + 0.5 * X[:, 1] - 0.3 * X[:, 2] > 0).float()
model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
crit = nn.SoftMarginLoss()
for epoch in range(4):
    for i in range(0, 1000, 32):
        opt.zero_grad()
        crit(model(X[i:i + 32]).squeeze(1), LABELS).backward()
        opt.step()
with torch.no_grad():
    acc = ((model(X[1000:]).squeeze(1) > 0).float() == y[1000:]).float().mean().item()
print(f"final: acc={acc:.4f}")
"""
CASES = {  # name: (faulty, fixed twin, remedy)
    "group_lr": (GROUP_LR.replace("BODY_LR", "base_lr * body_mult"), GROUP_LR.replace("BODY_LR", "base_lr"),
                 "group-learning-rate"),
    "margin": (MARGIN.replace("LABELS", "y[i:i + 32]"), MARGIN.replace("LABELS", "2 * y[i:i + 32] - 1"),
               "signed-margin-labels"),
}


def _acc(stdout: str) -> float:
    return float(stdout.strip().splitlines()[-1].split("acc=")[1])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_fix_repairs_the_faulty_script_like_its_twin(name, tmp_path: Path):
    faulty, twin, remedy = CASES[name]
    (tmp_path / "faulty.py").write_text(faulty)
    (tmp_path / "twin.py").write_text(twin)
    twin_acc = _acc(subprocess.run([sys.executable, str(tmp_path / "twin.py")], capture_output=True, text=True,
                                   check=True).stdout)
    s = run_fix(str(tmp_path / "faulty.py"), [])
    before = s.before.figures.script["acc"]
    assert [a.remedy for a in s.attempts] == [remedy]
    a = s.attempts[0]
    assert a.verdict.verdict == "verified" and a.finding_gone
    assert a.after.script["acc"] - before >= 0.9 * (twin_acc - before), (before, a.after.script, twin_acc)
    assert run_fix(str(tmp_path / "twin.py"), []).attempts == []
