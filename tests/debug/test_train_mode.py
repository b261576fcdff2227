"""train-mode: training in eval mode, evaluating in train mode; teachers, frozen BN and correct switching quiet."""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.train_mode import TrainMode
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

N = 16
_G = torch.Generator().manual_seed(0)
X, Y = torch.randn(8 * N, 8, generator=_G), torch.randint(0, 3, (8 * N,), generator=_G)
XV = torch.randn(4 * N, 8, generator=_G)


def _batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    j = (i * N) % len(X)
    return X[j:j + N], Y[j:j + N]


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[TrainMode]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _one(findings: list, code: str):
    hits = [f for f in findings if f.code == code]
    assert hits, [(f.code, f.message) for f in findings]
    return hits[0]


class Net(nn.Module):
    """BatchNorm + Dropout; ``functional=True`` uses F.dropout(training=self.training) instead."""

    def __init__(self, functional: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.bn = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(32, 3)
        self.functional = functional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.fc1(x)))
        h = F.dropout(h, 0.3, self.training) if self.functional else self.drop(h)
        return self.fc2(h)


def _epoch(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 4) -> None:
    for i in range(steps):
        xb, yb = _batch(i)
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()


def _validate(model: nn.Module, batches: int = 2) -> None:
    with torch.no_grad():
        for k in range(batches):
            model(XV[k * N:(k + 1) * N])


# -- training in eval mode -------------------------------------------------------------------------

def test_eval_for_validation_never_switched_back():
    def run():
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        for _ in range(3):
            _epoch(model, opt)
            model.eval()
            _validate(model)

    f = _one(_observe(run), "train-mode.training-in-eval-mode")
    assert f.first_step == 5 and f.location == "model"
    assert f.evidence["module_list"] == ["model.bn", "model.drop"]
    assert f.evidence["last_train_mode_step"] == 4 and "after step 4" in f.message
    assert "model.train()" in f.fixes[0]


def test_eval_from_the_start_sequential_sgd_functional_dropout():
    def run():
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
        model.eval()
        _epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), steps=6)

    f = _one(_observe(run), "train-mode.training-in-eval-mode")
    assert f.first_step == 1 and f.evidence["modules"] == "model.2"
    assert "from the first training step" in f.message


def test_functional_dropout_module_in_eval():
    def run():
        model = nn.Sequential(nn.Linear(8, 8), Net(functional=True))
        model[1].bn = model[1].drop = nn.Identity()  # leave only the functional dropout
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.eval()
        _epoch(model, opt)

    f = _one(_observe(run), "train-mode.training-in-eval-mode")
    assert f.evidence["module_list"] == ["model.1"]


# -- evaluating in train mode ----------------------------------------------------------------------

def test_validation_loop_without_eval():
    def run():
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            model.train()
            _epoch(model, opt)
            _validate(model, batches=3)

    f = _one(_observe(run), "train-mode.eval-in-train-mode")
    assert f.first_step == 5 and set(f.evidence["module_list"]) == {"model.bn", "model.drop"}
    assert "running statistics" in f.message


def test_single_final_test_pass_in_train_mode():
    def run():
        net = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        for i in range(6):
            xb, yb = _batch(i)
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
        with torch.inference_mode():
            net(XV)

    f = _one(_observe(run), "train-mode.eval-in-train-mode")
    assert f.location == "net" and f.evidence["module_list"] == ["net.1"]


def test_manual_update_loop_evaluated_in_train_mode():
    def run():
        model = Net()
        for i in range(6):
            xb, yb = _batch(i)
            model.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.05 * p.grad
            _validate(model)

    # steps are counted from backward calls when no optimizer steps: the evaluation after the first
    # manual update belongs to step 2, as it would after optimizer.step() (see the test above: step 5)
    assert _one(_observe(run), "train-mode.eval-in-train-mode").first_step == 2


# -- healthy variants stay quiet -------------------------------------------------------------------

def _healthy_switching():
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        model.train()
        _epoch(model, opt)
        model.eval()
        _validate(model)


def _healthy_no_dropout_or_bn():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.eval()
    _epoch(model, opt)
    _validate(model)


def _healthy_frozen_bn():
    model = Net()
    model.bn.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for i in range(6):
        model.train()
        model.bn.eval()
        xb, yb = _batch(i)
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()


def _healthy_frozen_backbone_in_eval():
    backbone = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2))
    backbone.requires_grad_(False)
    model = nn.Sequential(backbone, nn.Linear(32, 3))
    opt = torch.optim.SGD(model[1].parameters(), lr=0.1)
    model.eval()  # the whole model in eval: only the frozen backbone has BN/dropout
    _epoch(model, opt)


def _healthy_teacher_and_ema_under_no_grad():
    teacher = Net()  # fixed teacher left in train mode, not in any optimizer
    student = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    ema = copy.deepcopy(student)
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    for i in range(6):
        xb, _ = _batch(i)
        with torch.no_grad():
            soft = F.softmax(teacher(xb), 1)
            ema(xb)
        opt.zero_grad()
        F.kl_div(F.log_softmax(student(xb), 1), soft, reduction="batchmean").backward()
        opt.step()
    with torch.no_grad():
        teacher(XV)
        teacher(XV)
        ema(XV)


def _healthy_gan_toggle():
    G = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8))
    D = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Dropout(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)
    for _ in range(8):
        fake = G(torch.randn(N, 4))
        D.requires_grad_(True)
        opt_d.zero_grad()
        (F.binary_cross_entropy_with_logits(D(X[:N]), ones)
         + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)).backward()
        opt_d.step()
        D.requires_grad_(False)
        opt_g.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake), ones).backward()
        opt_g.step()
    G.eval()
    with torch.no_grad():
        G(torch.randn(64, 4))


def _healthy_online_target_in_step():
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(6):
        xb, yb = _batch(i)
        with torch.no_grad():
            nxt = model(xb.flip(0)).max(1).values
        opt.zero_grad()
        F.mse_loss(model(xb).gather(1, yb[:, None]).squeeze(1), 0.9 * nxt).backward()
        opt.step()


def _healthy_accumulation():
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for i in range(12):
        xb, yb = _batch(i)
        (F.cross_entropy(model(xb), yb) / 3).backward()
        if (i + 1) % 3 == 0:
            opt.step()
            opt.zero_grad()
    model.eval()
    _validate(model)


def _healthy_manual_sgd():
    model = Net()
    for i in range(6):
        model.train()
        xb, yb = _batch(i)
        model.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.05 * p.grad
        model.eval()
        _validate(model)


def _healthy_pseudo_labels_long_run():
    # pseudo-labelling: each step a no-grad forward in train mode labels an unlabelled batch, then the
    # training loss uses those labels; over 300 steps the last steps' backwards are not sampled events
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(300):
        xb, yb = _batch(i)
        with torch.no_grad():
            conf, pseudo = F.softmax(model(XV[:N]), 1).max(1)
        loss = F.cross_entropy(model(xb), yb) + (F.cross_entropy(model(XV[:N]), pseudo, reduction="none") * (conf > 0.5)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("fn", [_healthy_switching, _healthy_no_dropout_or_bn, _healthy_frozen_bn, _healthy_manual_sgd,
                                _healthy_frozen_backbone_in_eval, _healthy_teacher_and_ema_under_no_grad,
                                _healthy_gan_toggle, _healthy_online_target_in_step, _healthy_accumulation,
                                _healthy_pseudo_labels_long_run],
                         ids=lambda f: f.__name__[9:])
def test_healthy_training_is_quiet(fn):
    assert _observe(fn) == []


def test_user_results_are_unchanged():
    def train() -> torch.Tensor:
        torch.manual_seed(0)
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            _epoch(model, opt)
            model.eval()
            _validate(model)
        return torch.cat([p.detach().flatten() for p in model.parameters()] + [model.bn.running_mean])

    plain = train()
    with Observer(checks=[TrainMode]):
        observed = train()
    assert torch.equal(plain, observed)


# -- GANs: the generator is sampled in train mode on purpose ---------------------------------------

def _gan(sampling_batches: int, style: str) -> Callable[[], None]:
    """A GAN whose generator has batch-norm; it is sampled under no_grad in train mode, as GAN tutorials
    do (batch statistics, as in training). ``style``: DCGAN-like (sigmoid D, BCELoss, net.zero_grad)
    or Sequential models with BCEWithLogitsLoss and optimizer.zero_grad."""
    def run():
        g = nn.Sequential(nn.Linear(4, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 8))
        if style == "dcgan":
            d = nn.Sequential(nn.Linear(8, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1), nn.Sigmoid())
            crit: nn.Module = nn.BCELoss()
        else:
            d = nn.Sequential(nn.Linear(8, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
            crit = nn.BCEWithLogitsLoss()
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)
        for i in range(6):
            real = X[i * N:(i + 1) * N]
            fake = g(torch.randn(N, 4))
            (d if style == "dcgan" else opt_d).zero_grad()
            (crit(d(real), ones) + crit(d(fake.detach()), zeros)).backward()
            opt_d.step()
            (g if style == "dcgan" else opt_g).zero_grad()
            crit(d(fake), ones).backward()
            opt_g.step()
            with torch.no_grad():
                for _ in range(sampling_batches):
                    g(torch.randn(64, 4))  # samples to look at, in train mode
    return run


@pytest.mark.parametrize("style", ["dcgan", "logits"])
@pytest.mark.parametrize("sampling_batches", [1, 3])
def test_gan_generator_sampled_in_train_mode_is_quiet(style, sampling_batches):
    assert _observe(_gan(sampling_batches, style)) == []


def test_two_trained_models_in_a_pipeline_validated_in_train_mode_are_still_caught():
    # a backbone feeding a separate head is not a GAN: the head never sees inputs no model made
    def run():
        backbone = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU())
        head = nn.Linear(32, 3)
        opt = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=1e-3)
        for i in range(6):
            xb, yb = _batch(i)
            opt.zero_grad()
            F.cross_entropy(head(backbone(xb)), yb).backward()
            opt.step()
            with torch.no_grad():
                head(backbone(XV))

    f = _one(_observe(run), "train-mode.eval-in-train-mode")
    assert f.location == "backbone" and f.evidence["module_list"] == ["backbone.1"]


# -- the mode assigned as an attribute on the model only ------------------------------------------

def test_evaluation_with_the_training_flag_assigned_on_the_model_only():
    """`model.training = False` (instead of model.eval()) leaves BatchNorm and Dropout in train mode."""
    def run():
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            model.training = True
            _epoch(model, opt)
            model.training = False
            _validate(model, batches=2)

    f = _one(_observe(run), "train-mode.eval-in-train-mode")
    assert set(f.evidence["module_list"]) == {"model.bn", "model.drop"} and f.evidence["flag_on_model_only"]
    assert "model.training = False was assigned on the model only" in f.message


def test_training_with_the_training_flag_assigned_on_the_model_only():
    """model.eval() for validation, then `model.training = True`: the layers stay in eval mode."""
    def run():
        model = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
        opt = torch.optim.SGD(model.parameters(), lr=1e-2)
        _epoch(model, opt)
        model.eval()
        _validate(model)
        model.training = True
        _epoch(model, opt)

    f = _one(_observe(run), "train-mode.training-in-eval-mode")
    assert "assigned on the model only" in f.message, f.message


def test_mc_dropout_and_frozen_batchnorm_switched_per_layer_are_quiet():
    """MC dropout (eval(), then the Dropout layers back to train) and BatchNorm frozen in eval for
    fine-tuning (train(), then the BN layer to eval): layer-wise switches made on purpose."""
    def run():
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            model.train()
            model.bn.eval()
            _epoch(model, opt)
            model.eval()
            model.drop.train()
            _validate(model, batches=2)

    assert _observe(run) == []


class DropNet(nn.Module):
    """Dropout only (no batch-norm)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.drop, self.fc2 = nn.Linear(8, 32), nn.Dropout(0.3), nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


@pytest.mark.parametrize("style", ["stack", "loop-copies", "sequential"])
def test_monte_carlo_dropout_with_the_whole_model_in_train_mode_is_quiet(style):
    """MC dropout written the short way: model.train() (or never eval()) and the same validation
    inputs fed many times under no_grad, the predictions averaged: train mode on purpose."""
    def run():
        model = DropNet() if style != "sequential" else nn.Sequential(
            nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            model.train()
            _epoch(model, opt)
            with torch.no_grad():
                if style == "loop-copies":
                    probs = sum(F.softmax(model(XV.clone()), 1) for _ in range(10)) / 10
                else:
                    probs = torch.stack([F.softmax(model(XV), 1) for _ in range(20)]).mean(0)
            probs.argmax(1)

    assert _observe(run) == []


def test_one_input_evaluated_twice_or_with_batch_norm_in_train_mode_still_warns():
    """Two forwards of the validation tensor (its loss, then its accuracy) in train mode are an
    evaluation that forgot eval(); repeated forwards through batch-norm in train mode corrupt its
    running statistics whatever the intent."""
    def twice():
        model = DropNet()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            _epoch(model, opt)
            with torch.no_grad():
                F.cross_entropy(model(XV), torch.zeros(len(XV), dtype=torch.long))
                model(XV).argmax(1)

    def with_bn():
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        _epoch(model, opt)
        with torch.no_grad():
            torch.stack([model(XV) for _ in range(10)]).mean(0)

    for run in (twice, with_bn):
        _one(_observe(run), "train-mode.eval-in-train-mode")
