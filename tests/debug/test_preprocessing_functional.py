"""preprocessing: networks written without modules (``X @ w + b``, ``F.linear`` on weight tensors) have
their inputs judged where data first meets a trainable weight; sound inputs and one-hot rows stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_digits

from nndoctor.debug.preprocessing import InputPreprocessing
from nndoctor.monitor import Observer


def _codes(obs: Observer) -> list[str]:
    assert not obs.internal_errors, obs.internal_errors
    return [f.code for f in obs.findings if f.severity.value != "info"]


def _logreg(x: torch.Tensor, y: torch.Tensor, steps: int = 12) -> Observer:
    torch.manual_seed(0)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=1e-3)
    with Observer(checks=[InputPreprocessing]) as obs:
        for i in range(steps):
            j = (i * 32) % (len(x) - 32)
            p = torch.sigmoid(x[j:j + 32] @ w + b).clamp(1e-6, 1 - 1e-6)
            loss = -(y[j:j + 32] * p.log() + (1 - y[j:j + 32]) * (1 - p).log()).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


def _mlp(x: torch.Tensor, y: torch.Tensor, steps: int = 12) -> Observer:
    torch.manual_seed(0)
    w1 = (torch.randn(32, x.shape[1]) * 0.05).requires_grad_()
    w2 = (torch.randn(10, 32) * 0.1).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=1e-3)
    with Observer(checks=[InputPreprocessing]) as obs:
        for i in range(steps):
            j = (i * 32) % (len(x) - 32)
            loss = F.cross_entropy(F.linear(F.relu(F.linear(x[j:j + 32], w1)), w2), y[j:j + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


def _cancer() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_breast_cancer(return_X_y=True)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    return torch.tensor(d.images * 16, dtype=torch.float32).reshape(len(d.target), -1), torch.tensor(d.target)


def test_raw_tabular_features_of_a_hand_written_logistic_regression_are_caught():
    x, y = _cancer()
    assert "preprocessing.unnormalised-features" in _codes(_logreg(x, y))


def test_raw_pixels_of_an_mlp_on_weight_tensors_are_caught():
    x, y = _digits()
    codes = _codes(_mlp(x, y))
    assert {"preprocessing.unnormalised-pixels", "preprocessing.unnormalised-features"} & set(codes), codes


@pytest.mark.parametrize("style", ["standardised_logreg", "scaled_pixels_mlp", "one_hot_rows"])
def test_sound_inputs_of_module_less_networks_stay_quiet(style):
    if style == "standardised_logreg":
        x, y = _cancer()
        obs = _logreg((x - x.mean(0)) / x.std(0), y)
    elif style == "scaled_pixels_mlp":
        x, y = _digits()
        obs = _mlp(x / 255.0, y)
    else:  # makemore's bigram: one-hot rows of 27 characters times a weight matrix
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, 27, (600,), generator=g)
        obs = _mlp(F.one_hot(ids, 27).float(), (ids + 1) % 10)
    assert _codes(obs) == []


def test_raw_data_times_a_fixed_matrix_is_not_a_model_input():
    # raw features projected by a matrix that does not train (logging a random projection) while the
    # module-less model itself is fed standardised features
    x, y = _cancer()
    xs = (x - x.mean(0)) / x.std(0)
    proj = torch.randn(30, 4)
    w = torch.zeros(30, requires_grad=True)
    opt = torch.optim.SGD([w], lr=1e-2)
    with Observer(checks=[InputPreprocessing]) as obs:
        for i in range(12):
            j = i * 32
            _ = x[j:j + 32] @ proj
            loss = F.binary_cross_entropy_with_logits(xs[j:j + 32] @ w, y[j:j + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _codes(obs) == []
