"""shape checks: silent broadcasting in built-in and hand-written losses, soft targets; healthy quiet."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.shape import BroadcastInElementwiseOp, BroadcastInLoss, SoftTargetNotDistribution
from nndoctor.monitor import Observer

CHECKS = [BroadcastInLoss, BroadcastInElementwiseOp, SoftTargetNotDistribution]
N, D = 32, 5


def _regression(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4 * N, D, generator=g)
    return x, x[:, 0] - 2 * x[:, 1]  # targets (4N,)


def _train(model: nn.Module, loss_of, x: torch.Tensor, y: torch.Tensor, steps: int = 6,
           adam: bool = False) -> list:
    opt = (torch.optim.Adam if adam else torch.optim.SGD)(model.parameters(), lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Observer(checks=CHECKS) as obs:
            for i in range(steps):
                xb, yb = x[(i * N) % len(x):][:N], y[(i * N) % len(y):][:N]
                loss = loss_of(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.findings


def _one(findings, code):
    hits = [f for f in findings if f.code == code]
    assert hits, [(f.code, f.message) for f in findings]
    return hits[0]


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 1))


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(D, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


# -- built-in losses ------------------------------------------------------------------------------------
def test_mse_module_on_column_prediction_and_flat_target():
    torch.manual_seed(0)
    f = _one(_train(_mlp(), nn.MSELoss(), *_regression()), "shape.broadcast-in-loss")
    assert f.severity.value == "error"
    assert (f.evidence["input_shape"], f.evidence["target_shape"], f.evidence["broadcast_shape"]) == (
        (N, 1), (N,), (N, N))
    assert f.location.startswith("test_shape.py:") and "squeeze(-1)" in f.fixes[0]


def test_functional_l1_with_target_given_a_stray_dimension():
    torch.manual_seed(0)
    found = _train(Regressor(), lambda out, t: F.smooth_l1_loss(out.squeeze(), t.unsqueeze(1)),
                   *_regression(), adam=True)
    f = _one(found, "shape.broadcast-in-loss")
    assert f.evidence["input_shape"] == (N,) and f.evidence["target_shape"] == (N, 1)
    assert "squeeze the target" in f.fixes[0]


# -- hand-written losses ----------------------------------------------------------------------------------
def test_hand_written_mse_in_function():
    def my_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((pred - target) ** 2).mean()

    torch.manual_seed(0)
    f = _one(_train(_mlp(), my_mse, *_regression()), "shape.broadcast-in-elementwise-op")
    assert f.evidence["prediction_shape"] == (N, 1) and f.evidence["target_shape"] == (N,)
    assert f.evidence["broadcast_shape"] == (N, N) and f.location.startswith("test_shape.py:")


def test_hand_written_mae_loss_module_with_target_first():
    class MAE(nn.Module):
        def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return torch.abs(target - pred).mean()

    torch.manual_seed(0)
    found = _train(Regressor(), MAE(), *_regression(), adam=True)
    f = _one(found, "shape.broadcast-in-elementwise-op")
    assert f.evidence["op"] in ("sub (-)", "rsub (-)")


def test_weighted_per_sample_loss_broadcasts():
    torch.manual_seed(0)
    x, y = _regression()
    w = torch.rand(len(x)).unsqueeze(1)  # (4N, 1) weights against (N,) per-sample losses

    def weighted(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_sample = (pred.squeeze(1) - target) ** 2
        return (per_sample * w[:N]).mean()

    assert _one(_train(_mlp(), weighted, x, y), "shape.broadcast-in-elementwise-op")


def test_time_major_rnn_hand_written_loss():
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(D, 8)
            self.out = nn.Linear(8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (T, N, D)
            return self.out(self.rnn(x)[0][-1])

    torch.manual_seed(0)
    x, y = _regression()
    seq = x.unsqueeze(0).repeat(3, 1, 1)  # (T=3, 4N, D)
    model = Seq()
    opt = torch.optim.Adam(model.parameters())
    with Observer(checks=CHECKS) as obs:
        for i in range(3):
            pred = model(seq[:, i * N:(i + 1) * N])
            loss = (pred - y[i * N:(i + 1) * N]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _one(obs.findings, "shape.broadcast-in-elementwise-op").evidence["batch_size"] == N


# -- healthy broadcasting -----------------------------------------------------------------------------------
def test_matching_shapes_are_quiet():
    torch.manual_seed(0)
    x, y = _regression()
    assert not _train(_mlp(), lambda out, t: F.mse_loss(out.squeeze(-1), t), x, y)
    assert not _train(Regressor(), lambda out, t: ((out - t.view(-1, 1)) ** 2).mean(), x, y, adam=True)


def test_legitimate_broadcasting_is_quiet():
    class Fancy(nn.Module):
        """Bias adds, (N, 1) statistics of the same tensor, pairwise differences, attention mask, RBF."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(D, 8)
            self.bias = nn.Parameter(torch.zeros(8))
            self.centers = nn.Parameter(torch.linspace(-1, 1, N))
            self.head = nn.Linear(8 + N, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x) + self.bias
            h = (h - h.mean(1, keepdim=True)) / (h.std(1, keepdim=True) + 1e-5)
            s = h[:, 0]
            pair = s[:, None] - s  # (N, N) pairwise, both sides from the same tensor
            mask = torch.triu(torch.ones(len(x), len(x)), 1).bool()
            att = torch.softmax(pair.masked_fill(mask, float("-inf")), dim=-1)
            rbf = torch.exp(-(s[:, None] - self.centers) ** 2)  # (N, 1) vs a parameter (N,)
            return self.head(torch.cat([att @ h, rbf], 1))

    torch.manual_seed(0)
    x, y = _regression()
    assert not _train(Fancy(), lambda out, t: F.mse_loss(out, t.unsqueeze(1)), x, y)


def test_no_grad_metric_with_matching_shapes_and_eval_loop_quiet():
    torch.manual_seed(0)
    x, y = _regression()
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Observer(checks=CHECKS) as obs:
        for _ in range(3):
            loss = F.mse_loss(model(x[:N]), y[:N, None])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                _ = (model(x[N:]).squeeze(1) - y[N:]).abs().mean()
    assert not obs.findings and not obs.internal_errors


# -- soft targets for cross_entropy ----------------------------------------------------------------------------
def _cls(k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4 * N, D, generator=g)
    return x, torch.randint(0, k, (4 * N,), generator=g)


def test_multi_hot_float_targets_into_cross_entropy():
    torch.manual_seed(0)
    x, y = _cls()
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 3))

    def multi_hot(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(t, 3).float()
        target[:, 0] = 1.0  # class 0 is always "present": rows sum to 2
        return nn.CrossEntropyLoss()(out, target)

    f = _one(_train(model, multi_hot, x, y), "shape.soft-target-not-distribution")
    assert f.severity.value == "warning" and f.evidence["target_shape"] == (N, 3)


def test_teacher_logits_as_targets():
    torch.manual_seed(0)
    x, y = _cls()
    teacher = nn.Linear(D, 3)
    model = nn.Linear(D, 3)
    found = _train(model, lambda out, t: F.cross_entropy(out, teacher(x[:N]).detach()), x, y, adam=True)
    assert _one(found, "shape.soft-target-not-distribution")


def test_one_hot_and_mixup_targets_are_quiet():
    torch.manual_seed(0)
    x, y = _cls()
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 3))
    assert not _train(model, lambda out, t: F.cross_entropy(out, F.one_hot(t, 3).float()), x, y)
    mix = lambda out, t: F.cross_entropy(out, 0.7 * F.one_hot(t, 3).float() + 0.3 * F.one_hot(t.flip(0), 3).float())  # noqa: E731
    assert not _train(model, mix, x, y)
