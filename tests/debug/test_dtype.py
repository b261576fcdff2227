"""dtype: float64 models, half-precision weights without master copies, fp16 autocast without GradScaler."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.dtype import AutocastWithoutGradScaler, Float64Model, HalfPrecisionWeights
from nndoctor.monitor import Observer

CHECKS = [Float64Model, HalfPrecisionWeights, AutocastWithoutGradScaler]


def _data(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 10, generator=g, dtype=torch.float64).to(dtype)
    y = (X[:, 0] > 0).long()
    return X, y


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))


def _train(model, X, y, opt_cls=torch.optim.SGD, steps=6, autocast=None, scaler=None, **opt_kw):
    opt = opt_cls(model.parameters(), lr=1e-2, **opt_kw)
    with Observer(checks=CHECKS) as obs:
        for i in range(steps):
            xb, yb = X[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
            opt.zero_grad()
            if autocast is not None:
                with torch.autocast("cpu", dtype=autocast):
                    loss = F.cross_entropy(model(xb), yb)
            else:
                loss = F.cross_entropy(model(xb).float(), yb)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def test_float64_model_on_numpy_data_warns():
    X, y = _data(torch.float64)
    report = _train(_mlp().double(), X, y, opt_cls=torch.optim.Adam)
    [f] = report.by_code("dtype.float64-model")
    assert f.severity.value == "warning" and f.location == "model"
    assert f.evidence["input_dtype"] == "float64" and f.evidence["float64_parameters"] == 10 * 16 + 16 + 16 * 2 + 2
    assert "torch.from_numpy(X).float()" in f.fixes[0]


def test_float32_model_is_quiet_and_default_float64_is_only_info():
    X, y = _data()
    assert not _train(_mlp(), X, y).findings
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        X64, y64 = _data(torch.float64)
        report = _train(_mlp(), X64, y64)
    finally:
        torch.set_default_dtype(old)
    [f] = report.by_code("dtype.float64-model")
    assert f.severity.value == "info"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, torch.optim.Adam])
def test_half_weights_with_plain_optimizer(dtype, opt_cls):
    X, y = _data()
    report = _train(_mlp().to(dtype), X.to(dtype), y, opt_cls=opt_cls)
    [f] = report.by_code("dtype.half-precision-weights")
    assert f.evidence["dtype"] == str(dtype).replace("torch.", "") and f.evidence["half_tensors"] == 4
    assert "torch.autocast" in f.fixes[0]
    if dtype == torch.float16 and opt_cls is torch.optim.Adam:
        assert "eps" in f.message


def test_fp16_autocast_without_scaler_warns_with_scaler_quiet():
    X, y = _data()
    report = _train(_mlp(), X, y, autocast=torch.float16)
    [f] = report.by_code("dtype.autocast-fp16-without-grad-scaler")
    assert f.evidence["device"] == "cpu" and "GradScaler" in f.fixes[0]
    scaler = torch.amp.GradScaler("cpu")
    assert not _train(_mlp(), X, y, autocast=torch.float16, scaler=scaler).findings
    assert not _train(_mlp(), X, y, autocast=torch.bfloat16).findings


class _SineRNN(nn.Module):
    """A float64 recurrent regressor fitted by L-BFGS on float64 sines (the classic sine-wave example)."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(1, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        h = x.new_zeros(x.size(0), 16)
        c = x.new_zeros(x.size(0), 16)
        outs = []
        for t in range(x.size(1)):
            h, c = self.cell(x[:, t:t + 1], (h, c))
            outs.append(self.out(h))
        return torch.cat(outs, dim=1)


def _lbfgs_sines(steps=3):
    import numpy as np

    torch.manual_seed(0)
    t = np.arange(40)[None, :] + np.random.default_rng(0).integers(-20, 20, size=(8, 1))
    data = torch.from_numpy(np.sin(t / 5.0))  # numpy float64, on purpose
    x, y = data[:, :-1], data[:, 1:]
    model = _SineRNN().double()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.8, max_iter=5)
    with Observer(checks=CHECKS) as obs:
        for _ in range(steps):
            def closure():
                opt.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                return loss
            opt.step(closure)
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def test_float64_model_optimised_by_lbfgs_is_only_info():
    [f] = _lbfgs_sines().by_code("dtype.float64-model")
    assert f.severity.value == "info" and f.evidence["optimizer"] == "LBFGS"
    assert "LBFGS" in f.message


def test_float64_model_with_a_first_order_optimizer_still_warns_whatever_the_step_order():
    # the verdict waits for the optimizer: an Adam model and a plain SGD loop both still warn
    X, y = _data(torch.float64)
    for opt_cls in (torch.optim.Adam, torch.optim.SGD):
        [f] = _train(_mlp().double(), X, y, opt_cls=opt_cls, steps=3).by_code("dtype.float64-model")
        assert f.severity.value == "warning" and f.evidence["optimizer"] is None
    model = _mlp().double()
    with Observer(checks=CHECKS) as obs:  # forwards only (no optimizer step at all): judged at the end
        model(X[:8])
    [f] = obs.report().by_code("dtype.float64-model")
    assert f.severity.value == "warning"
