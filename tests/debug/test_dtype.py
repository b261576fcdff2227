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
