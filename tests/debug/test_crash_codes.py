"""More crashes the explainer turns into a catalogue code with its fixes (in-process, tiny models)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nndoctor.debug.crash import CrashExplainer
from nndoctor.monitor import Observer


def _explain(fn):
    with pytest.raises(Exception):  # noqa: B017, PT011 - the user's crash propagates unchanged
        with Observer(checks=[CrashExplainer]) as obs:
            fn()
    assert not obs.internal_errors, obs.internal_errors
    return obs.findings


def _one(findings, code):
    assert [f.code for f in findings] == [code], [(f.code, f.message) for f in findings]
    f = findings[0]
    assert f.fixes and "{" not in f.fixes[0], f.fixes  # the computed repair is filled in
    return f


def test_rnn_input_size():
    rnn = nn.LSTM(input_size=8, hidden_size=4, batch_first=True)
    opt = torch.optim.SGD(rnn.parameters(), lr=0.1)

    def train():
        x = torch.randn(5, 8, 3)  # (N, features, T): the layout swapped
        out, _ = rnn(x)
        out.sum().backward()
        opt.step()

    _one(_explain(train), "shape.crash-rnn-input")


def test_size_mismatch_in_an_elementwise_op():
    a, b = nn.Linear(4, 6), nn.Linear(4, 5)
    opt = torch.optim.SGD([*a.parameters(), *b.parameters()], lr=0.1)

    def train():
        x = torch.randn(8, 4)
        (a(x) + b(x)).sum().backward()
        opt.step()

    _one(_explain(train), "shape.crash-size-mismatch")


def test_batch_of_one_into_batchnorm_in_training():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(17, 4), torch.randint(0, 2, (17,))

    def train():
        for i in range(0, 17, 8):  # the last batch holds one sample
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[i:i + 8]), y[i:i + 8]).backward()
            opt.step()

    _one(_explain(train), "shape.crash-batch-of-one")
