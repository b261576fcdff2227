"""Networks written without nn.Module: their input feeds the data checks (one shared notion,
nndoctor/monitor/loose_input.py), so a linear one on data that need a non-linear model is
fit.underfitting, and healthy module-less networks stay quiet."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from nndoctor.findings import Report
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.linear import LinearModelUnderfits
from nndoctor.monitor.checks.data.probe import LabelsUnrelated
from nndoctor.monitor.checks.data.sample import DataCollector, ObservedData
from nndoctor.monitor.loose_input import linear_graph
from tests.monitor.test_linear_model import _blobs, _circles, _moons, _xor

CHECKS = [DataCollector, LinearModelUnderfits]


def _observe(train: Callable[[], None], checks: list[type] | None = None) -> tuple[Report, Observer]:
    torch.manual_seed(0)
    with Observer(checks=checks or CHECKS) as obs:
        train()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report(), obs


def _batches(x: torch.Tensor, y: torch.Tensor, epochs: int, size: int = 50):
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), size):
            b = perm[i:i + size]
            yield x[b], y[b]


def _fit(params: list[torch.Tensor], forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
         y: torch.Tensor, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam(params, lr=lr)
    for xb, yb in _batches(x, y, 6):
        loss = F.cross_entropy(forward(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()


# -- linear module-less networks on data that need a non-linear model ------------------------------
def _matmul_adam_on_xor() -> None:
    x, y = _xor()
    w = torch.randn(4, 2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    _fit([w, b], lambda xb: xb @ w + b, x, y)


def _f_linear_bce_sgd_on_circles() -> None:
    x, y = _circles()
    params = [torch.nn.Parameter(torch.randn(1, 2) * 0.1), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for xb, yb in _batches(x, y, 6, size=40):
        out = F.linear(xb, *params).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(out, yb.float())
        opt.zero_grad()
        loss.backward()
        opt.step()


def _two_matrices_no_activation_by_hand_on_moons() -> None:
    x, y = _moons()
    w1 = (torch.randn(2, 16) * 0.5).requires_grad_()
    w2 = (torch.randn(16, 2) * 0.5).requires_grad_()
    b2 = torch.zeros(2, requires_grad=True)
    for xb, yb in _batches(x, y, 6):
        logits = torch.addmm(b2, torch.mm(xb, w1), w2)           # a hidden layer whose activation was forgotten
        loss = F.nll_loss(F.log_softmax(logits, dim=1), yb)
        loss.backward()
        with torch.no_grad():                                      # manual SGD, no optimizer object
            for p in (w1, w2, b2):
                p -= 0.1 * p.grad
                p.grad = None


@pytest.mark.parametrize("train", [_matmul_adam_on_xor, _f_linear_bce_sgd_on_circles,
                                   _two_matrices_no_activation_by_hand_on_moons], ids=lambda f: f.__name__[1:])
def test_a_linear_network_without_modules_underfits(train: Callable[[], None]) -> None:
    report, _ = _observe(train)
    (f,) = report.by_code("fit.underfitting")
    assert f.severity.name == "WARNING" and f.evidence["model_is_linear"] is True
    assert f.location == "network" and f.evidence["linear_layers"] == 0
    assert f.evidence["linear_probe_accuracy"] + 0.1 <= max(f.evidence["knn_probe_accuracy"],
                                                            f.evidence["mlp_probe_accuracy"])


def test_the_label_probes_see_a_module_less_network_input() -> None:
    """The observed (input, label) pairs behind the label probes come from the module-less input."""
    _, obs = _observe(_matmul_adam_on_xor, [DataCollector, LabelsUnrelated])
    data = ObservedData.of(obs.state)
    assert data is not None and data.pair_rows >= 200 and data.pairs_x[0].shape[1] == 4


# -- healthy module-less networks, and linear ones on linear data ---------------------------------
def _tanh_mlp_by_hand_on_xor() -> None:
    x, y = _xor()
    w1 = (torch.randn(4, 32) * 0.5).requires_grad_()
    b1 = torch.zeros(32, requires_grad=True)
    w2 = (torch.randn(32, 2) * 0.2).requires_grad_()
    _fit([w1, b1, w2], lambda xb: torch.tanh(xb @ w1 + b1) @ w2, x, y)


def _makemore_style_embedding_mlp() -> None:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 20, (1200, 3), generator=g)
    y = ids[:, 0] % 5 + 5 * (ids[:, 1] < 10)                      # a function of two of the tokens
    emb = torch.randn(20, 8, generator=g, requires_grad=True)
    w1 = (torch.randn(24, 64, generator=g) * 0.2).requires_grad_()
    w2 = (torch.randn(64, 10, generator=g) * 0.1).requires_grad_()
    opt = torch.optim.SGD([emb, w1, w2], lr=0.1)
    for xb, yb in _batches(ids, y, 6):
        h = torch.relu(emb[xb].view(len(xb), -1) @ w1)
        loss = F.cross_entropy(h @ w2, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _linear_by_hand_on_blobs() -> None:
    x, y = _blobs()
    w = torch.zeros(2, 3, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    _fit([w, b], lambda xb: xb @ w + b, x, y, lr=5e-2)


def _functional_relu_f_linear_on_circles() -> None:
    x, y = _circles()
    w1 = torch.nn.Parameter(torch.randn(32, 2) * 0.7)
    w2 = torch.nn.Parameter(torch.randn(2, 32) * 0.2)
    _fit([w1, w2], lambda xb: F.linear(F.relu(F.linear(xb, w1)), w2), x, y)


@pytest.mark.parametrize("train", [_tanh_mlp_by_hand_on_xor, _makemore_style_embedding_mlp, _linear_by_hand_on_blobs,
                                   _functional_relu_f_linear_on_circles], ids=lambda f: f.__name__[1:])
def test_healthy_module_less_networks_stay_quiet(train: Callable[[], None]) -> None:
    report, _ = _observe(train, [DataCollector, LinearModelUnderfits, LabelsUnrelated])
    assert not [f for f in report.findings if f.severity.name != "INFO"], report.findings


def test_linear_graph_reads_the_map_behind_an_output() -> None:
    x = torch.randn(8, 3)
    w1, w2 = torch.randn(3, 4, requires_grad=True), torch.randn(4, 2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    assert linear_graph((x @ w1) @ w2 + b) is True
    assert linear_graph(2.0 * (x @ w1).view(8, 2, 2).sum(2)) is True
    assert linear_graph(torch.tanh(x @ w1) @ w2) is False
    q = x @ w1
    assert linear_graph(q @ q.t()) is False                      # attention-like: a product of two activations
    assert linear_graph(b * b) is False
    assert linear_graph(F.log_softmax(x @ w1, dim=1)) is True     # the output link of a linear classifier
    assert linear_graph(F.log_softmax(torch.relu(x @ w1), dim=1)) is False


# -- the other checks that read a model's input -----------------------------------------------------
def _regression_by_hand(make_input: Callable[[torch.Tensor], torch.Tensor], checks: list[type]) -> Report:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, 5, generator=g) * 2
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.3, 1.5])
    torch.manual_seed(0)
    with Observer(checks=checks) as obs:
        X = make_input(x)
        w = torch.zeros(5, 1, requires_grad=True)
        opt = torch.optim.Adam([w], lr=3e-2)
        for _ in range(3):
            for i in range(0, 400, 50):
                loss = F.mse_loss((X[i:i + 50] @ w).squeeze(1), y[i:i + 50])
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def test_truncated_inputs_of_a_module_less_network_are_caught() -> None:
    from nndoctor.debug.truncation import ContinuousValuesTruncated

    code = "dtype.continuous-values-truncated"
    hits = _regression_by_hand(lambda x: (x * 3).long().float(), [ContinuousValuesTruncated]).by_code(code)
    assert hits and hits[0].evidence["used_as"] == "input", hits
    assert not _regression_by_hand(lambda x: (x * 3).round(), [ContinuousValuesTruncated]).by_code(code)


def _noisy_batches(scale: float) -> Report:
    from nndoctor.monitor.checks.input_noise import InputNoiseDrownsSignal

    x, y = _xor(640)
    w1 = (torch.randn(4, 32) * 0.5).requires_grad_()
    w2 = (torch.randn(32, 2) * 0.2).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=1e-2)
    torch.manual_seed(0)
    with Observer(checks=[InputNoiseDrownsSignal]) as obs:
        for xb, yb in _batches(x, y, 1, size=40):
            xb = xb + scale * torch.randn_like(xb)                 # noise augmentation, drawn per batch
            loss = F.cross_entropy(torch.relu(xb @ w1) @ w2, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def test_input_noise_on_a_module_less_network() -> None:
    code = "regularization.input-noise-too-strong"
    assert _noisy_batches(5.0).by_code(code)
    assert not _noisy_batches(0.1).by_code(code)


_SCRIPT = '''
import torch
torch.manual_seed(0)
X = torch.randn(1024, 2)
y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).long()
W1 = (torch.randn(2, HIDDEN) * 0.7).requires_grad_()
W2 = (torch.randn(HIDDEN, 2) * 0.3).requires_grad_()
b2 = torch.zeros(2, requires_grad=True)
opt = torch.optim.Adam([W1, W2, b2], lr=0.02)
for step in range(300):
    idx = torch.randint(0, 1024, (64,))
    h = X[idx] @ W1
    logits = ACT(h) @ W2 + b2
    loss = torch.nn.functional.cross_entropy(logits, y[idx])
    opt.zero_grad(); loss.backward(); opt.step()
'''


@pytest.mark.parametrize("act,expected", [("", True), ("torch.relu", False)], ids=["no-activation", "relu"])
def test_script_headline(tmp_path, act: str, expected: bool) -> None:
    """Under `nndoctor run`, a module-less network without an activation on XOR headlines
    fit.underfitting (not only a loss-curve plateau); its twin with a ReLU reports no fit finding."""
    from tests.helpers import assert_script_headline, run_script

    result = run_script(tmp_path, _SCRIPT.replace("HIDDEN", "16").replace("ACT", act))
    assert_script_headline(result, "fit.underfitting", expected, "fit")


def test_the_end_of_run_probes_are_fitted_once_for_both_checks(monkeypatch) -> None:
    """The label check and the linear-model check read the same probes: fitted once (a second fit
    did not fit the end-of-run budget on a loaded machine, and the underfitting went unreported)."""
    import nndoctor.monitor.checks.data.probe as probes

    calls = []
    real = probes.probe
    monkeypatch.setattr(probes, "probe", lambda *a, **k: calls.append(1) or real(*a, **k))
    report, _ = _observe(_matmul_adam_on_xor, [DataCollector, LabelsUnrelated, LinearModelUnderfits])
    assert report.by_code("fit.underfitting") and report.by_code("fit.model-at-chance")
    assert len(calls) == 1
