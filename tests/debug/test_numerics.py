"""numerics checks: each NaN/Inf root cause traced in several coding styles, healthy loops quiet."""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.numerics import NonFinite, trace_nonfinite
from nndoctor.debug.zero_grad import GradientsNotCleared
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule

N = 32


def _data(seed: int = 0, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8 * N, d, generator=g)
    return x, (x[:, 0] > 0).long()


def _mlp(d: int = 8, out: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, out))


def _batches(x: torch.Tensor, y: torch.Tensor, steps: int):
    for i in range(steps):
        s = (i * N) % len(x)
        yield i + 1, x[s:s + N], y[s:s + N]


def _observe(loop, schedule: Schedule | None = None) -> list:
    with Observer(checks=[NonFinite], schedule=schedule) as obs:
        loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


# ---------------------------------------------------------------------------- forward ops
def test_log_of_softmax_zeros_functional_top_level_style():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()

    def loop():
        for step, xb, yb in _batches(x, y, 12):
            scale = 1e4 if step == 3 else 1.0  # one batch with huge values saturates the softmax
            p = torch.softmax(model(xb * scale), dim=1)
            loss = F.nll_loss(torch.log(p), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert len(found) == 1, found
    f = found[0]
    assert f.code == "numerics.nonfinite-forward" and f.severity is Severity.ERROR
    assert f.first_step == 3 and f.location == "model.2"
    assert f.evidence["op"] == "torch.log" and "zero" in f.evidence["detail"]
    assert "softmax underflowed" in f.evidence["detail"] and f.evidence["underflow_of"] == "softmax"
    assert "test_numerics.py:" in f.evidence["site"]
    assert "log_softmax" in f.fixes[0]


def test_log_of_sigmoid_manual_bce_on_an_unsampled_step():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.fc(x))

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _data()
    t = y.float().unsqueeze(1)

    def main():
        for step, xb, tb in _batches(x, t, 20):
            p = model(xb * (1e4 if step == 15 else 1.0))
            loss = -(tb * torch.log(p) + (1 - tb) * torch.log(1 - p)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(main, Schedule(dense=2, every=1000))  # step 15 is not sampled: the graph walk finds it
    assert [f.code for f in found] == ["numerics.nonfinite-forward"]
    assert found[0].first_step == 15 and found[0].location == "model.fc"
    assert "sigmoid saturated" in found[0].evidence["detail"]


def test_division_by_zero_norm_inside_a_module():
    class Normalised(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(8, 16, bias=False)
            self.out = nn.Linear(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.fc(x))
            return self.out(h / h.norm(dim=1, keepdim=True))

    model = Normalised()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    x[5] = 0.0  # an all-zero (padding) row: its hidden vector and its norm are 0

    def loop():
        for _, xb, yb in _batches(x, y, 6):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == ["numerics.nonfinite-forward"]
    assert found[0].evidence["op"] == "torch.div" and "denominator" in found[0].evidence["detail"]
    assert found[0].location == "model.fc"


def test_exp_overflow_poisson_loss_unsampled_step():
    model = _mlp(out=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, _ = _data()
    counts = torch.poisson(torch.ones(len(x), 1))

    def loop():
        for _, xb, cb in _batches(x * 500, counts, 5):  # unscaled inputs: the log-rate reaches hundreds
            z = model(xb)
            loss = (torch.exp(z) - cb * z).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop, Schedule(dense=0, every=1000))
    assert [f.code for f in found] == ["numerics.nonfinite-forward"]
    assert found[0].evidence["op"] == "torch.exp" and "overflowed" in found[0].evidence["detail"]
    assert "logsumexp" in found[0].fixes[0]


def test_exp_overflow_in_a_hand_written_softmax_gives_nan_gradients():
    model = _mlp(out=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = _data()

    def loop():
        for _, xb, yb in _batches(x * 200, y, 5):
            e = torch.exp(model(xb))
            probs = e / e.sum(1, keepdim=True)
            loss = -torch.log(probs[torch.arange(len(yb)), yb] + 1e-9).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)  # the loss stays finite, the gradient does not
    assert [f.code for f in found] == ["numerics.nonfinite-gradient"]
    assert "exp" in found[0].evidence["hint"] and "overflowed" in found[0].evidence["hint"]


def test_mean_of_an_empty_selection_is_a_warning_when_training_recovers():
    model = _mlp(out=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, _ = _data()

    def loop():
        for step, xb, _ in _batches(x, x, 10):
            keep = xb[:, 0] > (100.0 if step == 4 else 0.0)
            loss = F.mse_loss(model(xb)[keep], xb[keep][:, 1:2])
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [(f.code, f.severity) for f in found] == [("numerics.nonfinite-forward", Severity.WARNING)]
    assert "0 elements" in found[0].evidence["detail"] and "mask.any()" in found[0].fixes[0]


# ---------------------------------------------------------------------------- data
def test_nan_in_input_features_two_styles():
    x, y = _data()
    x[40, 3] = float("nan")

    def top_level():
        model = _mlp()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _, xb, yb in _batches(x, y, 8):
            loss = nn.CrossEntropyLoss()(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(top_level)
    assert [f.code for f in found] == ["numerics.nonfinite-input"]
    assert found[0].first_step == 2 and found[0].location == "inputs"
    assert "columns [3]" in found[0].message


def test_nan_in_regression_targets():
    x, _ = _data()
    target = x[:, :1].clone()
    target[70] = float("nan")
    model = _mlp(out=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def loop():
        for _, xb, tb in _batches(x, target, 6):
            loss = F.mse_loss(model(xb), tb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [(f.code, f.location, f.first_step) for f in found] == [("numerics.nonfinite-input", "targets", 3)]


def test_guarded_step_makes_it_a_warning():
    x, y = _data()
    x[40, 3] = float("nan")
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loop():
        for _, xb, yb in _batches(x, y, 12):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            if torch.isfinite(loss):
                opt.step()

    found = _observe(loop)
    assert [(f.code, f.severity) for f in found] == [("numerics.nonfinite-input", Severity.WARNING)]
    assert "stayed finite" in found[0].message


# ---------------------------------------------------------------------------- updates, gradients, init
def test_adam_eps_zero_breaks_the_update():
    x, y = _data()
    x[:, 7] = 0.0  # a dead feature: its weight gradients are exactly 0
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=0.0)

    def loop():
        for _, xb, yb in _batches(x, y, 6):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == ["numerics.nonfinite-update"]
    assert found[0].location == "model.0.weight" and "eps=0" in found[0].message
    assert "positive eps" in found[0].fixes[0]


def _pairwise_loop(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 6):
    x, y = _data()

    def loop():
        for _, xb, yb in _batches(x, y, steps):
            e = model(xb)
            dist = torch.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))  # 0 on the diagonal
            same = (yb[:, None] == yb[None]).float()
            loss = (same * dist + (1 - same) * torch.relu(1 - dist)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    return loop


def test_nan_gradient_from_sqrt_at_zero_sampled():
    model = _mlp(out=4)
    found = _observe(_pairwise_loop(model, torch.optim.SGD(model.parameters(), lr=0.01)))
    assert [f.code for f in found] == ["numerics.nonfinite-gradient"]
    f = found[0]
    assert f.first_step == 1 and "sqrt" in f.evidence["hint"] and "test_numerics.py:" in f.location


def test_nan_gradient_deduced_from_momentum_buffer_when_unsampled():
    model = _mlp(out=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    found = _observe(_pairwise_loop(model, opt), Schedule(dense=0, every=1000))
    assert [f.code for f in found] == ["numerics.nonfinite-gradient"]
    assert "momentum_buffer" in found[0].evidence["gradient"]


def test_uninitialised_parameter():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(8, 2))
            self.w.data[0, 0] = float("nan")  # as torch.empty can leave it

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()

    def loop():
        for _, xb, yb in _batches(x, y, 4):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [(f.code, f.location) for f in found] == [("numerics.nonfinite-init", "model.w")]


def test_divergence_before_nan_points_at_the_learning_rate():
    model = _mlp(out=1)
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    x, _ = _data()

    def loop():
        for _, xb, _ in _batches(x, x, 30):
            loss = F.mse_loss(model(xb), xb[:, :1] * 5)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert len(found) == 1 and found[0].severity is Severity.WARNING, found
    assert "diverged" in found[0].message and "learning rate" in found[0].fixes[0].lower()


def test_manual_update_without_optimizer():
    model = _mlp()
    x, y = _data()

    def loop():
        for step, xb, yb in _batches(x, y, 8):
            p = torch.softmax(model(xb * (1e4 if step == 5 else 1.0)), 1)
            loss = F.nll_loss(torch.log(p), yb)
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for q in model.parameters():
                    q -= 0.1 * q.grad

    found = _observe(loop)
    assert [f.code for f in found] == ["numerics.nonfinite-forward"]


# ---------------------------------------------------------------------------- accelerator path
class _AcceleratorLike(NonFinite):
    """Behaves as on CUDA: no host sync on unsampled steps, a device-side flag read in batches."""

    def _sync_each_step(self, t: torch.Tensor) -> bool:
        return False


class _AcceleratorObserver(Observer):
    """The observer's side of an accelerator: it does not read the loss on unsampled steps."""

    @staticmethod
    def _reads_loss_here(tensor: torch.Tensor) -> bool:
        return False


def _nan_batch_loop(guard: bool, steps: int = 60):
    x, y = _data()
    x[3 * N + 4, 2] = float("nan")  # in the batch of step 4, and of every 8th step after it

    def loop():
        model = _mlp()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _, xb, yb in _batches(x, y, steps):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            if not guard or torch.isfinite(loss):
                opt.step()

    return loop


def test_accelerator_path_reports_the_first_nonfinite_step_late():
    with _AcceleratorObserver(checks=[_AcceleratorLike], schedule=Schedule(dense=2, every=1000)) as obs:
        _nan_batch_loop(guard=False)()
    assert not obs.internal_errors
    found = [f for f in obs.findings if f.severity is not Severity.INFO]
    assert [(f.code, f.severity) for f in found] == [("numerics.nonfinite-loss", Severity.ERROR)]
    assert found[0].evidence["first_nonfinite_step"] == 4 and found[0].first_step == 4
    assert found[0].evidence["seen_at"] > 4


def test_accelerator_path_boosts_then_traces_the_next_occurrence():
    with _AcceleratorObserver(checks=[_AcceleratorLike], schedule=Schedule(dense=2, every=1000)) as obs:
        _nan_batch_loop(guard=True, steps=40)()
    assert not obs.internal_errors
    found = [f for f in obs.findings if f.severity is not Severity.INFO]
    assert found and all(f.category == "numerics" for f in found)
    assert any(f.code == "numerics.nonfinite-input" and "columns [2]" in f.message for f in found), found


# ---------------------------------------------------------------------------- healthy and cost
def _healthy_loop(steps: int = 30):
    x, y = _data()
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _, xb, yb in _batches(x, y, steps):
        logits = model(xb)
        scores = logits.masked_fill(torch.zeros_like(logits, dtype=torch.bool).index_fill_(1, torch.tensor([1]), True)
                                    & (yb[:, None] < 0), float("-inf"))  # legit -inf mask, never a full row
        probs = torch.softmax(scores, 1)
        loss = F.nll_loss(torch.log(probs.clamp_min(1e-8)), yb)
        loss = loss + 1e-3 * torch.sqrt(logits.pow(2).sum(1) + 1e-8).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_healthy_training_is_quiet_and_unchanged():
    plain = _healthy_loop()
    with Observer(checks=[NonFinite, GradientsNotCleared]) as obs:
        observed = _healthy_loop()
    assert torch.equal(plain, observed)
    assert not obs.internal_errors
    assert [f for f in obs.findings if f.severity is not Severity.INFO] == []


def test_one_finding_per_root_cause_not_a_cascade():
    x, y = _data()
    x[40] = float("inf")
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def loop():
        for _, xb, yb in _batches(x, y, 40):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert len(found) == 1 and found[0].code == "numerics.nonfinite-input"


def test_trace_nonfinite_direct():
    w = nn.Parameter(torch.ones(3))
    x = torch.tensor([1.0, 0.0, 2.0])
    loss = torch.log(x * w).sum()
    origin = trace_nonfinite(loss.grad_fn, {id(w): "net.w"})
    assert origin is not None and origin.kind == "op" and origin.op == "log"
    assert origin.params == ("net.w",) and "1 exact zero" in origin.evidence
    finite = torch.log(x + w).sum()
    origin = trace_nonfinite(finite.grad_fn, {id(w): "net.w"})
    assert origin is None or not origin.evidence


def test_check_costs_less_than_detect_anomaly():
    """The always-on check must be much cheaper than torch.autograd.detect_anomaly."""
    x, y = _data()

    def run(mode: str) -> float:
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        start = time.perf_counter()
        ctx = (Observer(checks=[NonFinite]) if mode == "observer" else
               torch.autograd.detect_anomaly(check_nan=False) if mode == "anomaly" else None)
        if ctx is not None:
            ctx.__enter__()
        try:
            for _, xb, yb in _batches(x, y, 150):
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
        return time.perf_counter() - start

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = {m: min(run(m) for _ in range(3)) for m in ("plain", "observer", "anomaly")}
    assert times["observer"] - times["plain"] < times["anomaly"] - times["plain"], times


# ---------------------------------------------------------------------------- constants and "skipped"
def test_nan_constant_multiplied_into_the_loss_names_the_line_not_the_batch():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()

    def loop():
        for step, xb, yb in _batches(x, y, 10):
            loss = F.cross_entropy(model(xb), yb)
            if step == 4:
                loss = loss * float("nan")
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == ["numerics.nonfinite-forward"], found
    f = found[0]
    assert "batch contains" not in f.message and "constant (nan)" in f.message
    assert "outside the model" in f.message and "test_numerics.py:" in f.location
    assert f.first_step == 4


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_inf_weight_of_a_loss_term_on_an_unsampled_step_main_style_adam():
    x, y = _data()
    weight = torch.tensor(float("inf"))

    def main():
        model = _Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for step, xb, yb in _batches(x, y, 30):
            out = model(xb)
            reg = out.pow(2).mean()
            w = weight if step == 20 else torch.tensor(0.01)
            loss = F.cross_entropy(out, yb) + reg * w  # reg > 0: inf; the batch is clean
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(main, schedule=Schedule(dense=3, every=50))
    assert len(found) == 1, found
    f = found[0]
    assert f.code == "numerics.nonfinite-forward" and f.first_step == 20
    assert "constant (inf)" in f.message and "batch contains" not in f.message


def test_log_of_negative_values_with_sgd_updating_is_not_called_skipped():
    model = _mlp(out=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = _data()
    yf = y.float()

    def loop():
        for step, xb, yb in _batches(x, yf, 10):
            p = model(xb).squeeze(1)
            if step != 3:
                p = torch.sigmoid(p)  # step 3 forgets the sigmoid: log of negative scores, finite gradient
            loss = -(yb * torch.log(p) + (1 - yb) * torch.log1p(-p)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == ["numerics.nonfinite-forward"], found
    assert "skipped" not in found[0].message and "still updated" in found[0].message
    assert "log" in found[0].evidence["op"]


def test_log_of_negative_every_step_with_sgd_is_an_error_not_skipped():
    model = _mlp(out=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = _data()
    yf = y.float()

    def loop():
        for _, xb, yb in _batches(x, yf, 10):
            p = model(xb).squeeze(1)
            loss = -(yb * torch.log(p) + (1 - yb) * torch.log(1 - p)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    found = _observe(loop)
    assert [(f.code, f.severity) for f in found] == [("numerics.nonfinite-forward", Severity.ERROR)], found
    assert "skipped" not in found[0].message and "negative" in found[0].message
