"""A small noisy regression that over-fits, scored OUTSIDE torch (numpy, scikit-learn, ``.tolist()``):
fit.overfitting sees the held-out errors (monitor/outside.py, monitor/metric_calls.py) and names
the best validation step; the early-stopping remedy's re-run then ends like the fixed twin (trained
only that long). Healthy lookalikes (no over-fitting; a prediction converted beside its input for
a plot; a training-set metric) stay quiet, and scikit-learn's functions come back unchanged."""

from __future__ import annotations

import subprocess
import sys
from typing import Callable

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import assert_early_stopping_trains_like_the_twin, remedied
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit

Score = Callable[[nn.Module, np.ndarray, np.ndarray], float]


def _rows(m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-3, 3, size=(m, 3)).astype(np.float32)
    return x, (np.sin(x[:, :1]) + 0.3 * x[:, 1:2] + 0.8 * rng.standard_normal((m, 1))).astype(np.float32)


def _sklearn_train_mode(model: nn.Module, xv: np.ndarray, yv: np.ndarray) -> float:
    # no no_grad, no eval(): the forward looks like training; the targets never become a tensor
    return float(skm.mean_squared_error(yv, model(torch.from_numpy(xv)).detach().numpy()))


def _numpy_no_grad(model: nn.Module, xv: np.ndarray, yv: np.ndarray) -> float:
    xt, yt = torch.from_numpy(xv), torch.from_numpy(yv)
    with torch.no_grad():
        pred = model(xt).numpy()
    return float(np.mean((pred - yt.numpy()) ** 2))   # (the target converted after the no_grad block)


def _tolist_loader(model: nn.Module, xv: np.ndarray, yv: np.ndarray) -> float:
    model.eval()
    preds: list[float] = []
    ys: list[float] = []
    with torch.no_grad():
        for xb, yb in DataLoader(TensorDataset(torch.from_numpy(xv), torch.from_numpy(yv)), batch_size=50):
            preds.extend(model(xb).view(-1).tolist())
            ys.extend(yb.view(-1).tolist())
    model.train()
    return sum(abs(p - y) for p, y in zip(preds, ys)) / len(ys)


def _sklearn_tensors(model: nn.Module, xv: np.ndarray, yv: np.ndarray) -> float:
    model.eval()  # gradients on: tensors straight into scikit-learn (its np.asarray of them)
    r2 = skm.r2_score(torch.from_numpy(yv), model(torch.from_numpy(xv)).detach())
    model.train()
    return float(r2)


def _script(score: Score, rows: int = 24, hidden: int = 128) -> Callable[[int], float]:
    def run(steps: int) -> float:
        rng = np.random.default_rng(0)
        (x, y), (xv, yv), (xt, yt) = _rows(rows, rng), _rows(200, rng), _rows(400, rng)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                              nn.Linear(hidden, 1))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)
        for i in range(steps):
            opt.zero_grad()
            F.mse_loss(model(xs), ys).backward()
            opt.step()
            if i % 10 == 9:
                score(model, xv, yv)
        pred = model(torch.from_numpy(xt)).detach().numpy()  # the test error: numpy, as the script prints it
        return float(np.mean((pred - yt) ** 2))
    return run


STYLES = {"sklearn-train-mode": _sklearn_train_mode, "numpy-no-grad": _numpy_no_grad,
          "tolist-eval-loader": _tolist_loader, "sklearn-tensors": _sklearn_tensors}


@pytest.mark.parametrize("style", list(STYLES))
def test_overfitting_scored_outside_torch_is_found_and_early_stopping_trains_like_the_twin(style: str) -> None:
    script = _script(STYLES[style])
    assert_early_stopping_trains_like_the_twin(script)


@pytest.mark.parametrize("style", ["sklearn-train-mode", "numpy-no-grad", "tolist-eval-loader"])
def test_a_regression_that_does_not_overfit_stays_quiet(style: str) -> None:
    script = _script(STYLES[style], rows=2000, hidden=16)   # many rows, a small model: no over-fitting
    with Observer(checks=[Fit]) as obs:
        script(300)
    assert len(obs.state.eval_losses) >= 20               # the held-out errors were read ...
    assert not [f for f in obs.findings if f.code == "fit.overfitting"]   # ... and do not rise


def test_a_prediction_converted_beside_its_input_or_a_training_metric_is_no_evaluation() -> None:
    torch.manual_seed(0)
    x = torch.linspace(-3, 3, 64)[:, None]
    y = torch.sin(x)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[Fit]) as obs:
        for i in range(60):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
            if i % 10 == 9:
                with torch.no_grad():
                    xs = torch.linspace(-4, 4, 64)[:, None]
                    curve = (xs.numpy(), model(xs).numpy())          # a plot: the input and the prediction
                    fit_mse = skm.mean_squared_error(y.numpy(), model(x).numpy())  # the training rows' error
                assert curve[0].shape == curve[1].shape and fit_mse >= 0
    assert len(obs.state.eval_losses) == 0


def test_scikit_learn_metrics_return_the_same_and_are_restored() -> None:
    original = skm.mean_squared_error
    a, b = np.arange(5.0), np.arange(5.0) + 1
    with Observer(checks=[Fit]):
        wrapped = skm.mean_squared_error
        assert wrapped is not original and wrapped(a, b) == original(a, b) == 1.0
    assert skm.mean_squared_error is original
    assert wrapped(a, b) == 1.0                                  # a wrapper kept past the run passes through


def test_a_script_importing_the_metric_after_the_observer_started_is_seen() -> None:
    """``from sklearn.metrics import ...`` in the script itself (imported while observed)."""
    code = (
        "import numpy as np, torch, torch.nn as nn\n"
        "from nndoctor.monitor import Observer\n"
        "from nndoctor.monitor.checks.fit import Fit\n"
        "torch.manual_seed(0)\n"
        "x, y = torch.randn(24, 3), torch.randn(24, 1)\n"
        "xv, yv = torch.randn(50, 3), np.random.default_rng(0).standard_normal((50, 1))\n"
        "model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
        "with Observer(checks=[Fit]) as obs:\n"
        "    from sklearn.metrics import mean_squared_error\n"
        "    for i in range(20):\n"
        "        opt.zero_grad(); nn.functional.mse_loss(model(x), y).backward(); opt.step()\n"
        "        mean_squared_error(yv, model(xv).detach().numpy())\n"
        "import sklearn.metrics\n"
        "assert not hasattr(sklearn.metrics.mean_squared_error, '__nndoctor_original__')\n"
        "print(len(obs.state.eval_losses))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 19


def _end_only(score: Score) -> Callable[[int], float]:
    """100 noisy rows, a wide MLP trained long, scored once at the end (no validation curve)."""
    def run(steps: int) -> float:
        rng = np.random.default_rng(0)
        (x, y), (xt, yt) = _rows(100, rng), _rows(400, rng)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(model(xs), ys).backward()
            opt.step()
        return score(model, xt, yt) if score is not _sklearn_tensors else float(
            skm.mean_squared_error(yt, model(torch.from_numpy(xt)).detach().numpy()))
    return run


@pytest.mark.parametrize("style", ["sklearn-train-mode", "numpy-no-grad", "tolist-eval-loader"])
def test_a_memorised_regression_scored_once_outside_torch_gets_weight_decay_that_trains_like_the_twin(
        style: str) -> None:
    script = _end_only(STYLES[style])
    with Observer(checks=[Fit]) as obs:
        bug = script(600)
    hits = [f.to_dict() for f in obs.findings if f.code == "fit.overfitting"]
    assert hits and hits[0]["evidence"].get("memorised") is True, [f.to_dict() for f in obs.findings]
    from nndoctor.fix.remedies import remedy_for
    assert remedy_for(hits[0]).name == "weight-decay"          # no best step: early stopping cannot apply
    twin = script(100)                                         # the fixed twin: trained a sixth as long
    assert twin < 0.95 * bug, (bug, twin)
    with remedied(hits[0]):
        fixed = script(600)
    assert bug - fixed >= 0.9 * (bug - twin), (bug, fixed, twin)


def _raw_units_sklearn(pred_raw: torch.Tensor, y_raw: torch.Tensor) -> float:
    return float(skm.mean_squared_error(y_raw.numpy(), pred_raw.numpy()))


def _raw_units_numpy(pred_raw: torch.Tensor, y_raw: torch.Tensor) -> float:
    return float(np.abs(pred_raw.numpy() - y_raw.numpy()).mean())


@pytest.mark.parametrize("score", [_raw_units_sklearn, _raw_units_numpy])
def test_a_good_fit_scored_outside_torch_in_raw_units_is_quiet(score: Callable[[torch.Tensor, torch.Tensor], float]) -> None:
    # targets standardised for training, the predictions mapped back to raw units (prices: std ~300) and scored
    # once at the end: a held-out error 1e4x the training loss measures the units, not a memorised training set
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, size=(600, 3)).astype(np.float32)
    raw = (2000 + 300 * (np.sin(x[:, :1]) + 0.3 * x[:, 1:2]) + 5 * rng.standard_normal((600, 1))).astype(np.float32)
    mean, std = raw[:400].mean(), raw[:400].std()
    xs, ys = torch.from_numpy(x[:400]), torch.from_numpy((raw[:400] - mean) / std)
    xv, yv = torch.from_numpy(x[400:]), torch.from_numpy(raw[400:])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=[Fit]) as obs:
        for _ in range(300):
            opt.zero_grad()
            F.mse_loss(model(xs), ys).backward()
            opt.step()
        with torch.no_grad():
            score(model(xv) * std + mean, yv)
    assert len(obs.state.eval_losses) >= 1  # (the held-out error was read)
    assert not [f for f in obs.findings if f.code == "fit.overfitting"]


@pytest.mark.parametrize("first", ["curve-numpy", "curve-tolist", "curve-2d"])
def test_a_pair_found_behind_an_unpaired_conversion_of_another_size_is_taken_out_safely(first: str) -> None:
    """A plotted curve of another length leaves torch first (it waits, unpaired), then the held-out
    prediction and its target: the pair is taken out of the waiting list by identity. (Taken out
    with list.remove, each waiting tensor was compared with ``==``: elementwise, a RuntimeError of
    nndoctor's on the mismatched lengths, and nndoctor switched itself off. Seen on a Monte-Carlo
    dropout notebook that plots its mean curve beside its training points.)"""
    torch.manual_seed(0)
    x = torch.rand(40, 1) * 6 - 3
    y = torch.sin(x) + 0.05 * torch.randn(40, 1)
    xv = torch.rand(20, 1) * 6 - 3
    yv = torch.sin(xv)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[Fit]) as obs:
        for i in range(60):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
            if i % 10 == 9:
                model.eval()
                with torch.no_grad():
                    grid = torch.linspace(-6, 6, 100)[:, None]
                    curve = model(grid) if first == "curve-2d" else model(grid).squeeze()
                    plotted = curve.tolist() if first == "curve-tolist" else curve.numpy()
                    pred = model(xv).squeeze().numpy()
                model.train()
                err = float(np.mean((pred - yv.squeeze().numpy()) ** 2))  # the target converted last
                assert err >= 0 and plotted is not None
    assert obs.internal_errors == []
    assert len(set(obs.state.eval_losses.series()[0])) == 6  # the held-out pair, at every evaluation
