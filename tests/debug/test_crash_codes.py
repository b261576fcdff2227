"""More crashes the explainer turns into a catalogue code with its fixes (in-process, tiny models)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.crash import CrashExplainer
from nndoctor.findings import Severity
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


def test_inplace_modification_of_a_tensor_backward_needs():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 6)
            self.out = nn.Linear(6, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.sigmoid(self.fc(x))  # sigmoid's backward needs its output ...
            h += 1.0  # ... which this in-place add overwrites
            return self.out(h)

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def train():
        x, y = torch.randn(8, 4), torch.randn(8, 1)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()  # PyTorch raises here, for real
        opt.step()

    f = _one(_explain(train), "grad-flow.crash-inplace-modified")
    assert f.severity is Severity.INFO  # an explanation of the crash, not a training diagnosis
    assert "[8, 6]" in f.evidence["tensor"] and "Sigmoid" in f.evidence["tensor"], f.evidence
    assert "out-of-place" in f.fixes[0]


def test_device_mismatch():
    # a CPU-only machine cannot put two tensors on different real devices, so a layer raises the exact
    # RuntimeError PyTorch raises for a CUDA weight and a CPU input, through the observer's crash path
    class CudaLinear(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                               "cuda:0 and cpu! (when checking argument for argument mat1 in method "
                               "wrapper_CUDA_addmm)")

    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), CudaLinear(5, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train():
        x, y = torch.randn(4, 3), torch.randint(0, 2, (4,))
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    f = _one(_explain(train), "dtype.crash-device-mismatch")
    assert f.severity is Severity.INFO
    assert f.evidence["devices"] == "cpu, cuda:0"
    assert f.evidence["input_shape"] == (4, 5) and f.evidence["module"].endswith(".2"), f.evidence
    assert ".to(device)" in f.fixes[0]


def test_out_of_memory_names_the_batch_size():
    class Hungry(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 32:  # what the allocator raises when a batch does not fit
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB "
                                             "total capacity; 6.10 GiB already allocated)")
            return self.fc(x)

    model = Hungry()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def train():
        for batch in (16, 64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(torch.randn(batch, 16)), torch.randint(0, 2, (batch,))).backward()
            opt.step()

    f = _one(_explain(train), "shape.crash-out-of-memory")
    assert f.severity is Severity.INFO
    assert f.evidence["batch_size"] == 64 and f.evidence["input_shape"] == (64, 16), f.evidence
    assert "try 32" in f.fixes[0]


# ---------------------------------------------------------------- BCELoss range crashes (crash_bce.py)
def _bce_train(model, x, y, loss):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(3):
        opt.zero_grad()
        loss(model(x[i * 8:(i + 1) * 8]), y[i * 8:(i + 1) * 8]).backward()
        opt.step()


class _SigmoidNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


_X = torch.randn(32, 4)


@pytest.mark.parametrize(("make", "labels", "words", "fix"), [
    # iris-style class ids 0, 1, 2 into one sigmoid output (nn.BCELoss module)
    (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid()),
     torch.arange(32).remainder(3).float().view(-1, 1), ["class ids 0..2", "3-class"], "nn.CrossEntropyLoss"),
    # labels 1/2 read from a file (functional loss, hand-written sigmoid in a class)
    (_SigmoidNet, torch.arange(32).remainder(2).float().add(1).view(-1, 1), ["1-based"], "y = y - 1"),
    # a 0/255 mask
    (_SigmoidNet, torch.arange(32).remainder(2).float().mul(255).view(-1, 1), ["0/255"], "y > 0"),
    # -1/+1 labels of a margin loss
    (_SigmoidNet, torch.arange(32).remainder(2).float().mul(2).sub(1).view(-1, 1), ["-1/+1"], "(y + 1) / 2"),
])
def test_bce_targets_outside_unit_interval(make, labels, words, fix):
    torch.manual_seed(0)
    loss = nn.BCELoss() if isinstance(make(), nn.Sequential) else F.binary_cross_entropy
    f = _one(_explain(lambda: _bce_train(make(), _X, labels, loss)), "preprocessing.crash-target-out-of-range")
    assert f.severity == Severity.ERROR
    for w in words:
        assert w in f.message, f.message
    assert fix in f.fixes[0], f.fixes


class _KerasStyle(nn.Module):
    """A Keras port: Dense(1) with no activation, loss='binary_crossentropy'."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


@pytest.mark.parametrize(("make", "loss"), [
    (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), nn.BCELoss()),
    (_KerasStyle, F.binary_cross_entropy),
    (lambda: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Tanh()),  # tanh output: -1..1
     lambda p, t: F.binary_cross_entropy(p, t, reduction="sum")),
])
def test_bce_on_raw_scores(make, loss):
    torch.manual_seed(0)
    y = torch.arange(32).remainder(2).float().view(-1, 1)
    f = _one(_explain(lambda: _bce_train(make(), _X * 3, y, loss)), "loss-input.crash-bce-input-not-probabilities")
    assert "raw scores" in f.message and "BCEWithLogitsLoss" in f.fixes[0]


def test_bce_healthy_and_nan_lookalikes_are_not_explained_as_range_bugs():
    torch.manual_seed(0)
    y = torch.arange(32).remainder(2).float().view(-1, 1)
    soft = torch.rand(32, 1)  # soft targets in [0, 1]: legal
    with Observer(checks=[CrashExplainer]) as obs:
        _bce_train(nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()), _X, y, nn.BCELoss())
        _bce_train(_SigmoidNet(), _X, soft, F.binary_cross_entropy)
    assert obs.findings == []
    nan_model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    with torch.no_grad():
        nan_model[0].weight.fill_(float("nan"))  # a diverged model: NaN, not logits, broke the loss
    findings = _explain(lambda: _bce_train(nan_model, _X, y, nn.BCELoss()))
    assert "loss-input.crash-bce-input-not-probabilities" not in [f.code for f in findings]
