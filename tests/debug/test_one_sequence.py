"""shape.batch-fed-as-one-sequence: (N, F) rows turned into one sequence of N steps (unsqueeze(0) into a batch_first
LSTM, unsqueeze(1) into a time-major GRU, x[None] into an RNN), named; one step per sample, real batches of
sequences and a single real sequence with per-step targets quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.one_sequence import BatchFedAsOneSequence
from nndoctor.monitor import Observer, Schedule
from tests.helpers import assert_script_headline, run_script

CODE = "shape.batch-fed-as-one-sequence"
_G = torch.Generator().manual_seed(0)
X = torch.randn(256, 6, generator=_G)
Y = (X[:, 0] * X[:, 1] > 0).long()


class _Rows(nn.Module):
    def __init__(self, rnn: nn.RNNBase, add_axis) -> None:
        super().__init__()
        self.rnn, self.add_axis = rnn, add_axis
        self.fc = nn.Linear(rnn.hidden_size, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.add_axis(x))
        out = out.reshape(-1, out.shape[-1]) if out.shape[0] * out.shape[1] == x.shape[0] else out[:, -1]
        return self.fc(out)


def _observe(model: nn.Module, inputs: torch.Tensor = X, targets: torch.Tensor = Y, batch: int = 32) -> list:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[BatchFedAsOneSequence], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(0, len(inputs), batch):
            opt.zero_grad()
            out = model(inputs[i:i + batch])
            F.cross_entropy(out.reshape(-1, out.shape[-1]), targets[i:i + batch].reshape(-1)).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _model(kind: type, batch_first: bool, add_axis) -> nn.Module:
    torch.manual_seed(0)
    return _Rows(kind(6, 16, batch_first=batch_first), add_axis)


@pytest.mark.parametrize("kind,batch_first,add_axis,fix", [
    (nn.LSTM, True, lambda x: x.unsqueeze(0), "x.unsqueeze(1)"),
    (nn.GRU, False, lambda x: x.unsqueeze(1), "x.unsqueeze(0)"),
    (nn.RNN, True, lambda x: x[None], "x.unsqueeze(1)"),
], ids=["lstm-unsqueeze0", "gru-time-major-unsqueeze1", "rnn-none-index"])
def test_a_batch_fed_as_one_sequence_is_named(kind, batch_first, add_axis, fix):
    found = _observe(_model(kind, batch_first, add_axis))
    assert len(found) == 1, found
    assert found[0].category == "shape" and found[0].evidence["batch_size"] == 32 and found[0].evidence["fix"] == fix


@pytest.mark.parametrize("kind,batch_first,add_axis", [
    (nn.LSTM, True, lambda x: x.unsqueeze(1)),
    (nn.GRU, False, lambda x: x.unsqueeze(0)),
], ids=["lstm-one-step-each", "gru-time-major-one-step-each"])
def test_one_time_step_per_sample_is_quiet(kind, batch_first, add_axis):
    assert _observe(_model(kind, batch_first, add_axis)) == []


def test_real_sequences_and_a_single_sequence_with_per_step_targets_are_quiet():
    torch.manual_seed(0)
    seqs = torch.randn(256, 10, 6, generator=_G)
    assert _observe(_Rows(nn.LSTM(6, 16, batch_first=True), lambda x: x), seqs, Y) == []

    class _CharRnn(nn.Module):                       # hello-rnn: one sequence (1, T, V), one target per step
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.RNN(6, 6, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]
    one = torch.randn(8, 1, 12, 6, generator=_G)
    steps = torch.randint(0, 6, (8, 12), generator=_G)
    model = _CharRnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[BatchFedAsOneSequence], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(8):
            opt.zero_grad()
            F.cross_entropy(model(one[i]).reshape(-1, 6), steps[i]).backward()
            opt.step()
    assert [f for f in obs.findings if f.code == CODE] == []


_SCRIPT = '''
import torch, torch.nn as nn
torch.manual_seed(0)
X = torch.randn(1200, 6); y = (X[:, 0] * X[:, 1] > 0).long()
class M(nn.Module):
    def __init__(self):
        super().__init__(); self.lstm = nn.LSTM(6, 32, batch_first=True); self.fc = nn.Linear(32, 2)
    def forward(self, x):
        out, _ = self.lstm(x.unsqueeze(AXIS))
        return self.fc(out.reshape(-1, 32))
model = M(); opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(3):
    perm = torch.randperm(1000)
    for i in range(0, 1000, 50):
        b = perm[i:i + 50]
        opt.zero_grad(); nn.functional.cross_entropy(model(X[b]), y[b]).backward(); opt.step()
'''


@pytest.mark.parametrize("axis,expected", [("0", True), ("1", False)], ids=["one-sequence", "one-step-each"])
def test_script_headline(tmp_path, axis, expected):
    result = run_script(tmp_path, _SCRIPT.replace("AXIS", axis))
    assert_script_headline(result, CODE, expected, "shape")
