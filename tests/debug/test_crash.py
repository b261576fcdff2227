"""The crash explainer: torch's exception + module stack -> one finding about the user's code."""

from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import CORPUS, run_cli

from nndoctor.debug.crash import CrashExplainer
from nndoctor.monitor import Observer, Schedule


class Net(nn.Module):
    def __init__(self, n_in=784, n_hidden=100):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.fc2 = nn.Linear(n_hidden, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def _explain(fn, schedule=None):
    with pytest.raises(Exception):  # noqa: B017, PT011 - the user's crash propagates unchanged
        with Observer(checks=[CrashExplainer], schedule=schedule) as obs:
            fn()
    assert not obs.internal_errors, obs.internal_errors
    return obs.findings


def _train(model, X, y, loss=F.cross_entropy, steps=3, bs=16):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(steps):
        opt.zero_grad()
        loss(model(X[i * bs:(i + 1) * bs]), y[i * bs:(i + 1) * bs]).backward()
        opt.step()


torch.manual_seed(0)
IMG, LAB = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
FLAT = IMG.view(64, -1)


class ViewNet(Net):
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.view(16, 784))))


class HalfViewNet(Net):
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.view(-1, 392))))


def _detached():
    m = Net()
    F.cross_entropy(m(FLAT[:16]).detach(), LAB[:16]).backward()


def _frozen():
    m = Net()
    for p in m.parameters():
        p.requires_grad_(False)
    F.cross_entropy(m(FLAT[:16]), LAB[:16]).backward()


def _frozen_then_filtered_optimizer():
    model = Net()
    model.requires_grad_(False)
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)


def _eval_in_train_mode():
    m = nn.Sequential(nn.Linear(784, 32), nn.BatchNorm1d(32), nn.Linear(32, 10))
    _train(m, FLAT, LAB)
    with torch.no_grad():
        m(FLAT[:1])


def _rnn_hidden_not_detached():
    rnn = nn.GRU(4, 8, batch_first=True)
    opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
    h = torch.zeros(1, 2, 8)
    for _ in range(3):
        opt.zero_grad()
        out, h = rnn(torch.randn(2, 5, 4), h)
        out.pow(2).mean().backward()
        opt.step()


class ListModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(4, 4), nn.Linear(4, 2)]   # a plain list: nothing is registered

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def _resume_with_new_head():
    old, new = Net(), Net()
    new.fc2 = nn.Linear(100, 5)
    new.load_state_dict(old.state_dict())


CASES = {
    "no-flatten": (lambda: _train(Net(), IMG, LAB), "shape.crash-linear-input", "model.fc1",
                   ["(16, 1, 28, 28)", "784"], "nn.Flatten()"),
    "in-features": (lambda: _train(nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(100, 10)), FLAT, LAB),
                    "shape.crash-linear-input", "model.2", ["(16, 128)", "model.0"], "nn.Linear(128, 10)"),
    "conv-gray-into-rgb": (lambda: _train(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)),
                                          IMG, LAB), "shape.crash-conv-input", "model.0", ["3 input channels"],
                           "in_channels=1"),
    "conv-flat-input": (lambda: _train(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)),
                                       FLAT, LAB), "shape.crash-conv-input", "model.0", ["(16, 784)"],
                        "x.view(-1, 1, 28, 28)"),
    "batchnorm": (lambda: _train(nn.Sequential(nn.Linear(784, 64), nn.BatchNorm1d(32), nn.Linear(64, 10)), FLAT, LAB),
                  "shape.crash-norm-features", "model.1", ["32 features", "64"], "nn.BatchNorm1d(64)"),
    "batch-merged-by-view": (lambda: _train(HalfViewNet(392), IMG, LAB), "shape.crash-loss-shapes", None,
                             ["32 predictions and 16 targets"], "x.view(x.size(0), -1)"),
    "hard-coded-view": (lambda: _train(ViewNet(), IMG[:40], LAB[:40]), "shape.crash-view", "model",
                        ["batch of 16", "8 samples"], "x.view(x.size(0), -1)"),
    "target-column": (lambda: _train(Net(), FLAT, LAB.view(-1, 1)), "shape.crash-loss-shapes", None,
                      ["(16, 1)"], "y.squeeze(1)"),
    "bce-shapes": (lambda: _train(nn.Linear(784, 1), FLAT, (LAB > 4).float(), loss=F.binary_cross_entropy_with_logits),
                   "shape.crash-loss-shapes", None, ["(16, 1)", "(16,)"], "squeeze(1)"),
    "float64-input": (lambda: _train(Net(), FLAT.double(), LAB), "dtype.crash-input-dtype", "model.fc1",
                      ["float64", "float32"], "torch.from_numpy(X).float()"),
    "int-input": (lambda: _train(Net(), (FLAT * 50).long(), LAB), "dtype.crash-input-dtype", "model.fc1",
                  ["int64"], "x.float()"),
    "float-class-targets": (lambda: _train(Net(), FLAT, LAB.float()), "dtype.crash-target-dtype", None,
                            ["int64", "float32", "0..9"], "y.long()"),
    "int-bce-targets": (lambda: _train(nn.Linear(784, 1), FLAT, (LAB > 4).long().view(-1, 1),
                                       loss=F.binary_cross_entropy_with_logits),
                        "dtype.crash-target-dtype", None, ["int64"], "y.float()"),
    "one-based-labels": (lambda: _train(Net(), FLAT, LAB % 10 + 1), "preprocessing.crash-target-out-of-range", None,
                         ["labels 1..10", "model.fc2"], "y = y - 1"),
    "negative-labels": (lambda: _train(Net(), FLAT, torch.where(LAB > 7, -1, LAB)),
                        "preprocessing.crash-target-out-of-range", None, ["-1"], "ignore_index=-1"),
    "embedding-ids": (lambda: _train(nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(40, 10)),
                                     torch.arange(640).view(64, 10) % 60, LAB),
                      "preprocessing.crash-index-out-of-range", "model.0", ["up to 59"], "at least 60"),
    "detached-loss": (_detached, "grad-flow.crash-loss-without-grad", None, ["cut from the model's graph"],
                      ".detach()"),
    "frozen": (_frozen, "grad-flow.crash-loss-without-grad", None, ["requires_grad=False"], "requires_grad = True"),
    "one-hot-int-targets": (lambda: _train(Net(), FLAT, F.one_hot(LAB, 10)), "dtype.crash-target-dtype", None,
                            ["(16, 10)", "one-hot"], "y.argmax(1)"),
    "layernorm": (lambda: _train(nn.Sequential(nn.Linear(784, 128), nn.LayerNorm(64), nn.Linear(64, 10)), FLAT, LAB),
                  "shape.crash-norm-features", "model.1", ["(16, 128)"], "nn.LayerNorm(128)"),
    "rnn-hidden-not-detached": (_rnn_hidden_not_detached, "grad-flow.crash-backward-twice", None,
                                ["hidden state"], "h = h.detach()"),
    "modules-in-a-list": (lambda: torch.optim.Adam(ListModel().parameters()), "grad-flow.crash-empty-parameter-list",
                          None, ["no parameters"], "nn.ModuleList"),
    "frozen-filtered-optimizer": (_frozen_then_filtered_optimizer, "grad-flow.crash-empty-parameter-list", None,
                                  ["every parameter of model", "requires_grad=False"], "Freeze only"),
    "state-dict-new-head": (_resume_with_new_head, "shape.crash-state-dict", None, ["fc2.weight", "(10, 100)"],
                            "strict=False"),
    "bn-eval-in-train-mode": (_eval_in_train_mode, "train-mode.crash-batch-of-one-in-train-mode", "model.1",
                              ["train mode"], "model.eval()"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_crash_is_explained(name):
    fn, code, location, in_message, in_fix = CASES[name]
    [f] = _explain(fn)
    assert f.code == code, f.message
    if location is not None:
        assert f.location == location
    else:
        assert f.location.startswith("test_crash.py:"), f.location
    for text in in_message:
        assert text in f.message, (text, f.message)
    assert in_fix in f.fixes[0], f.fixes
    assert f.evidence["exception"] and f.evidence["step"] >= 1


def test_unsampled_step_still_explained_from_the_message():
    # dense=1, every=1000: step 3 is not sampled, so no module stack and no failed op are known
    def late():
        _train(ViewNet(), IMG[:40], LAB[:40], steps=3)

    [f] = _explain(late, schedule=Schedule(dense=1, every=1000))
    assert f.code == "shape.crash-view" and "hard-codes a batch of 16" in f.message


def test_unknown_exception_gives_no_finding():
    def user_error():
        raise KeyError("config['lr']")

    assert _explain(user_error) == []


def _script(tmp_path, body):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_cli_explains_and_keeps_exit_code_and_traceback(tmp_path):
    script = _script(tmp_path, """
        import torch, torch.nn as nn

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(784, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                return self.fc2(torch.relu(self.fc1(x)))

        def main():
            torch.manual_seed(0)
            x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
            net = MLP()
            opt = torch.optim.Adam(net.parameters())
            for i in range(0, 256, 64):
                opt.zero_grad()
                nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
                opt.step()

        main()
    """)
    result = run_cli("run", str(script))
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.stderr and "mat1 and mat2" in result.stderr
    [f] = result.findings("shape.crash")
    assert f["location"] == "net.fc1" and f["severity"] == "error"
    assert "(64, 1, 28, 28)" in f["message"] and "train.py:" in f["message"]


@pytest.mark.parametrize("name,category", [("preprocessing_labels_one_based", "preprocessing"),
                                           ("dtype_float64_input_crash", "dtype")])
def test_cli_crashing_corpus_scripts(name, category):
    result = run_cli("run", str(CORPUS / f"{name}.py"))
    assert result.code == 1 and result.report["facts"]["end"] == "crash"
    assert category in result.categories("error")
