"""A model that mixes the samples of its batch (shape.samples-mixed-across-batch) or reads one time step of its
sequences (shape.prediction-from-one-time-step) has no runtime remedy: ``nndoctor fix`` re-runs nothing and says
"no runtime remedy: edit file:line" at the model's line that does it (the reshape, the indexing, the recurrent
layer's construction), with the probe's evidence. Three styles each, found by the probe on the script itself."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch
from rich.console import Console

from nndoctor.cli.fix import render
from nndoctor.debug.input_dependence import InputDependence
from nndoctor.fix.metrics import figures_of
from nndoctor.fix.session import FixSession, RunOutput, candidates, without_remedy
from nndoctor.monitor import Observer, Schedule

_LOOP = """
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for i in range(6):
    x, y = X[i * 32:(i + 1) * 32], Y[i * 32:(i + 1) * 32]
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
"""
_HEAD = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
_IMG = "X = torch.rand(256, 1, 8, 8, generator=torch.Generator().manual_seed(0)); Y = (X.mean((1, 2, 3)) > 0.5).long()\n"
_SEQ = ("X = torch.randn(256, 12, 3, generator=torch.Generator().manual_seed(0))\n"
        "Y = (X[:, -3:, 0].sum(1) > 0).long()\n")

MIXED = {
    "cnn-reshape-t": (_HEAD + _IMG + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.pool, self.fc = nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.reshape(8 * 4 * 4, -1).t()
        return self.fc(x)


model = Net()
""", "x = x.reshape(8 * 4 * 4, -1).t()"),
    "keras-lambda-view": (_HEAD + _IMG + """
class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                      Lambda(lambda t: t.view(256, -1).t().reshape(-1, 256)), nn.Linear(256, 10))
""", "Lambda(lambda t: t.view(256, -1).t().reshape(-1, 256)), nn.Linear(256, 10))"),
    "cell-loop-time-major-flatten": (_HEAD + _SEQ + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell, self.fc = nn.GRUCell(3, 8), nn.Linear(12 * 8, 2)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], 8)
        states = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            states.append(h)
        hs = torch.stack(states)
        flat = hs.reshape(x.shape[0], -1)
        return self.fc(flat)


model = Net()
""", "flat = hs.reshape(x.shape[0], -1)"),
}

ONE_STEP = {
    "gru-out-first": (_HEAD + _SEQ + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru, self.fc = nn.GRU(3, 8, batch_first=True), nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, 0])


model = Net()
""", "return self.fc(out[:, 0])"),
    "cell-loop-reads-x0": (_HEAD + _SEQ + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell, self.fc = nn.LSTMCell(3, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = c = x.new_zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, 0], (h, c))
        return self.fc(h)


model = Net()
""", "h, c = self.cell(x[:, 0], (h, c))"),
    "time-major-lstm-out0": (_HEAD + _SEQ + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[0])


model = Net()
X = X.transpose(0, 1).contiguous()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for i in range(6):
    x, y = X[:, i * 32:(i + 1) * 32], Y[i * 32:(i + 1) * 32]
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
""", "return self.fc(out[0])"),
}


def _finding(script: Path, code: str) -> dict:
    with Observer(checks=[InputDependence], schedule=Schedule(dense=4, every=2)) as obs:
        runpy.run_path(str(script), run_name="__main__")
    hits = [f.to_dict() for f in obs.findings if f.code == code]
    assert hits, [f.code for f in obs.findings]
    return hits[0]


@pytest.mark.parametrize("code,style", [("shape.samples-mixed-across-batch", s) for s in MIXED]
                         + [("shape.prediction-from-one-time-step", s) for s in ONE_STEP])
def test_the_edit_is_located_at_the_models_line_with_the_evidence(tmp_path: Path, code: str, style: str) -> None:
    text, expected = (MIXED if code.startswith("shape.samples") else ONE_STEP)[style]
    script = tmp_path / "train.py"
    script.write_text(text if "opt.step()" in text else text + _LOOP)
    torch.manual_seed(0)
    f = _finding(script, code)
    assert candidates([f]) == []                                   # nothing to re-run
    u = without_remedy([f], str(script))[0]
    assert u["file"] == str(script) and u["source_line"] == expected, u
    assert "probes=" in u["evidence"] or "rows_probed=" in u["evidence"] or "leak_share=" in u["evidence"]
    result = {"exit_code": 0, "report": {"findings": [f]}}
    session = FixSession(str(script), [], before=RunOutput(result, "acc=0.5\n", 1.0, figures_of(result, "acc=0.5\n")))
    console = Console(record=True, width=400)
    render(session, console)
    out = console.export_text()
    assert f"no runtime remedy: edit {script}:{u['line']}" in out and session.runs == 1


def test_a_step_other_than_the_first_points_at_the_recurrent_layer(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(_HEAD + "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                      "        self.rnn = nn.GRU(3, 8)\n\n    def forward(self, x):\n        return self.rnn(x)[0][-1]\n")
    f = {"code": "shape.prediction-from-one-time-step", "severity": "warning", "location": "model",
         "evidence": {"time_step": 11, "seq_len": 12}, "fixes": ["Read the last step."], "caused_by": []}
    assert without_remedy([f], str(script))[0]["source_line"] == "self.rnn = nn.GRU(3, 8)"


def test_without_a_matching_line_the_edit_stays_unplaced(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("import torch\nmodel = torch.nn.Linear(3, 2)\n")
    f = {"code": "shape.samples-mixed-across-batch", "severity": "warning", "location": "model",
         "evidence": {"leak_share": 0.9}, "fixes": ["Transpose before flattening."], "caused_by": []}
    assert without_remedy([f], str(script))[0]["file"] is None
