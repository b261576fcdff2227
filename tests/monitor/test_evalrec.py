"""Validation losses in the styles the loss-function hooks alone miss (nndoctor/monitor/evalrec.py):
an evaluation-mode forward with gradients on, hand-written losses; and training forwards that
must never be taken for an evaluation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.evalrec import TRAINS_IN_EVAL, recipe_of


def _mse(o, t):
    return ((o - t) ** 2).mean()


def _abs(o, t):
    return (o - t).abs().mean()


def _regression(noise, n, seed=0):
    torch.manual_seed(seed)
    x = torch.rand(n, 1) * 6 - 3
    y = torch.sin(x) + noise * torch.randn(n, 1)
    xv = torch.linspace(-3, 3, 100).unsqueeze(1)
    return x, y, xv, torch.sin(xv)


def _mlp():
    return nn.Sequential(nn.Linear(1, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))


def _fit_run(style, loss_fn, noise=0.5, n=16, steps=300, every=20):
    """Adam on a few noisy points (memorised: the held-out loss climbs) or many clean ones."""
    x, y, xv, yv = _regression(noise, n)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[Fit]) as obs:
        for i in range(steps):
            model.train()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            if i % every == every - 1:
                if style == "no-grad":
                    model.eval()
                    with torch.no_grad():
                        loss_fn(model(xv), yv)
                else:  # model.eval() and no torch.no_grad(): gradients on, no backward after
                    model.eval()
                    print(f"val {float(loss_fn(model(xv), yv).detach()):.3f}")
    return obs


STYLES = [("eval-mode-with-grad", F.mse_loss), ("eval-mode-with-grad", _mse), ("no-grad", _mse),
          ("eval-mode-with-grad", _abs), ("no-grad", _abs)]


@pytest.mark.parametrize("style,loss_fn", STYLES, ids=["grad-F.mse", "grad-hand-mse", "nograd-hand-mse",
                                                       "grad-hand-l1", "nograd-hand-l1"])
def test_overfitting_is_seen_in_every_evaluation_style(style, loss_fn):
    obs = _fit_run(style, loss_fn)
    assert len(obs.state.eval_losses) == 15  # one loss per evaluation, none from training
    assert [f.code for f in obs.findings] == ["fit.overfitting"]


@pytest.mark.parametrize("style,loss_fn", STYLES[:3], ids=["grad-F.mse", "grad-hand-mse", "nograd-hand-mse"])
def test_a_healthy_run_evaluated_the_same_way_stays_quiet(style, loss_fn):
    obs = _fit_run(style, loss_fn, noise=0.05, n=256, steps=200, every=20)
    assert len(obs.state.eval_losses) == 10
    assert not obs.findings


def test_recipe_of_a_hand_written_loss():
    a = torch.randn(8, 3, requires_grad=True)
    b = torch.randn(8, 3)
    assert recipe_of(((a - b) ** 2).mean()) == ("mean", "pow", "sub")
    assert recipe_of(((a - b) ** 2).mean() / 4) == ("mean", "pow", "sub")  # scaled for accumulation
    y = torch.randint(0, 3, (8,))
    assert recipe_of(-(F.log_softmax(a, 1).gather(1, y[:, None])).mean()) == ("neg", "mean", "gather")
    assert recipe_of(F.mse_loss(a, b)) is None  # a loss function: its own hook records it
    assert recipe_of(F.cross_entropy(a, y)) is None


def test_nll_of_hand_written_log_probabilities_in_an_evaluation_loop():
    """Classification: -(log_softmax(out).gather(y)).mean() in training and under no_grad."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    xv, yv = torch.randn(256, 20), torch.randint(0, 4, (256,))
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def nll(out, t):
        return -(F.log_softmax(out, 1).gather(1, t[:, None])).mean()

    with Observer(checks=[Fit]) as obs:
        for i in range(200):
            opt.zero_grad()
            nll(model(x), y).backward()  # random labels: memorised, the held-out loss climbs
            opt.step()
            if i % 20 == 19:
                with torch.no_grad():
                    nll(model(xv), yv)
    assert len(obs.state.eval_losses) == 10
    assert [f.code for f in obs.findings] == ["fit.overfitting"]


# ------------------------------------------------------- training forwards are never evaluations
def _losses_of(loop):
    with Observer(checks=[Fit]) as obs:
        loop()
    return obs


def test_training_in_eval_mode_is_not_an_evaluation():
    """The train-mode fault (model.eval() left on while training): every loss is reached by a backward."""
    torch.manual_seed(0)
    x, y, _, _ = _regression(0.1, 64)
    model = _mlp().eval()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)

    def loop():
        for _ in range(30):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()

    obs = _losses_of(loop)
    assert len(obs.state.eval_losses) == 0
    assert obs._pending_eval.trained.get("model", 0) >= TRAINS_IN_EVAL


def test_a_logged_loss_of_a_model_trained_in_eval_mode_is_not_an_evaluation():
    """Training in eval mode with a second loss logged and never backwarded: its forward is."""
    torch.manual_seed(0)
    x, y, _, _ = _regression(0.1, 64)
    model = _mlp().eval()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)

    def loop():
        for _ in range(10):
            opt.zero_grad()
            out = model(x)
            F.l1_loss(out, y).item()  # logged
            F.mse_loss(out, y).backward()
            opt.step()

    assert len(_losses_of(loop).state.eval_losses) == 0


def test_accumulation_and_a_teacher_in_eval_mode_are_not_evaluations():
    """Micro-batches of a model in eval mode (backward each), a teacher in eval mode without
    no_grad whose output is a target of the (backwarded) student loss, and a second hand-written
    loss of the training output for logging: none is an evaluation."""
    torch.manual_seed(0)
    x, y, _, _ = _regression(0.1, 64)
    student, teacher = _mlp(), _mlp().eval()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)

    def loop():
        for _ in range(20):
            opt.zero_grad()
            for k in range(2):
                xb = x[k * 32:(k + 1) * 32]
                out = student(xb)
                t = teacher(xb)  # eval mode, gradients on: the latest forward before the loss
                (_mse(out, t.detach()) / 2).backward()  # distillation: the training loss's recipe
            _mse(out, y[32:]).item()  # logged with that recipe, never backwarded: a training output
            opt.step()

    obs = _losses_of(loop)
    assert len(obs.state.eval_losses) == 0
