"""optimizer.recreated-in-loop: optimizers built again and again over the same parameter tensors."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.births import BIRTHS_KEY, last_restart
from nndoctor.monitor.checks.recreated import OptimizerRecreated

CODE = "optimizer.recreated-in-loop"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def _seq() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))


def _step(model, opt, x, y, module_loss=False):
    opt.zero_grad()
    out = model(x)
    loss = nn.CrossEntropyLoss()(out, y) if module_loss else F.cross_entropy(out, y)
    loss.backward()
    opt.step()


def _codes(obs):
    return [(f.code, f.severity) for f in obs.findings if f.code == CODE]


def test_adam_rebuilt_every_step_sequential_functional():
    torch.manual_seed(0)
    x, y = _data()
    model = _seq()
    with Observer(checks=[OptimizerRecreated]) as obs:
        for i in range(40):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            _step(model, optimizer, x[i * 12:(i + 1) * 12], y[i * 12:(i + 1) * 12])
    found = [f for f in obs.findings if f.code == CODE]
    assert len(found) == 1 and found[0].severity == Severity.WARNING
    ev = found[0].evidence
    assert ev["count"] == 40 and ev["every"] == 1 and ev["stateful"] and ev["optimizer_class"] == "Adam"
    assert "every step" in found[0].message and "moment estimates" in found[0].message
    assert ev["model"] == "model" and ev["parameter_tensors"] == 4


def test_sgd_momentum_rebuilt_every_epoch_subclass_module_loss():
    torch.manual_seed(0)
    x, y = _data()
    model = Net()

    def main():
        for _epoch in range(5):
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            for i in range(0, 320, 32):
                _step(model, opt, x[i:i + 32], y[i:i + 32], module_loss=True)

    with Observer(checks=[OptimizerRecreated]) as obs:
        main()
    found = [f for f in obs.findings if f.code == CODE]
    assert len(found) == 1 and found[0].severity == Severity.WARNING
    ev = found[0].evidence
    assert ev["count"] == 5 and ev["every"] == 10 and ev["created_at_steps"] == [1, 11, 21, 31, 41]
    assert "momentum buffers" in found[0].message and "~10 steps" in found[0].message


def test_plain_sgd_rebuilt_is_only_info_but_a_lost_scheduler_warns():
    torch.manual_seed(0)
    x, y = _data()
    model = _seq()
    with Observer(checks=[OptimizerRecreated]) as obs:
        for _ in range(6):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for i in range(0, 96, 32):
                _step(model, opt, x[i:i + 32], y[i:i + 32])
    assert _codes(obs) == [(CODE, Severity.INFO)]

    model = _seq()
    with Observer(checks=[OptimizerRecreated]) as obs:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        for epoch in range(4):
            if epoch:
                opt = torch.optim.SGD(model.parameters(), lr=0.1)  # the scheduler keeps the first
            for i in range(0, 96, 32):
                _step(model, opt, x[i:i + 32], y[i:i + 32])
            sched.step()
    found = [f for f in obs.findings if f.code == CODE]
    assert [(f.severity, f.evidence["scheduler_lost"]) for f in found] == [(Severity.WARNING, True)]
    assert "scheduler" in found[0].message


def test_second_phase_gan_and_lbfgs_are_quiet():
    torch.manual_seed(0)
    x, y = _data()
    model = Net()
    with Observer(checks=[OptimizerRecreated]) as obs:
        for phase_lr in (1e-2, 1e-3):  # fine-tuning: one optimizer per phase
            opt = torch.optim.Adam(model.parameters(), lr=phase_lr)
            for i in range(0, 320, 32):
                _step(model, opt, x[i:i + 32], y[i:i + 32])
        gen, disc = nn.Linear(4, 10), _seq()  # two optimizers over disjoint parameters, taking turns
        opt_g = torch.optim.Adam(gen.parameters(), 1e-3)
        opt_d = torch.optim.Adam(disc.parameters(), 1e-3)
        for _ in range(10):
            _step(disc, opt_d, x[:32], y[:32])
            opt_g.zero_grad()
            F.cross_entropy(disc(gen(torch.randn(32, 4))), torch.ones(32, dtype=torch.long)).backward()
            opt_g.step()
        lin = nn.Linear(10, 1)
        lbfgs = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=5)

        def closure():
            lbfgs.zero_grad()
            loss = F.binary_cross_entropy_with_logits(lin(x).squeeze(1), y.float())
            loss.backward()
            return loss

        for _ in range(5):
            lbfgs.step(closure)
    assert not _codes(obs)


def test_model_and_optimizer_rebuilt_per_fold_are_quiet_and_restart_the_curve():
    torch.manual_seed(0)
    x, y = _data()
    with Observer(checks=[OptimizerRecreated]) as obs:
        for _fold in range(5):  # a fresh model AND optimizer per fold (freed tensors' ids get reused)
            model = _seq()
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            for i in range(0, 320, 32):
                _step(model, opt, x[i:i + 32], y[i:i + 32])
        del model, opt
    assert not _codes(obs)
    rec = obs.state.extra[BIRTHS_KEY]
    assert rec.total == 5 and rec.restarts == [11, 21, 31, 41]
    assert last_restart(obs.state) == 41


def _two_phase(rebind: bool, student_lr: float):
    """A teacher trained first (3 epochs of digits), then a smaller student (another model) distilled
    from it (4 epochs): from the student's first step on, the loss curve is the student's, whose
    KL * T^2 + CE starts far above the teacher's end and swings more."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    xs, ys = load_digits(return_X_y=True)
    x, y = torch.tensor(xs / 16.0, dtype=torch.float32), torch.tensor(ys)
    teacher = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    student = nn.Sequential(nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))

    def batches():
        order = torch.randperm(1400)
        return [order[i:i + 50] for i in range(0, 1400, 50)]

    with Observer() as obs:
        opt_t = torch.optim.Adam(teacher.parameters(), lr=3e-3)
        for _ in range(3):
            for b in batches():
                _step(teacher, opt_t, x[b], y[b])
        if rebind:
            opt_t = None
        opt_s = torch.optim.Adam(student.parameters(), lr=student_lr)
        for _ in range(4):
            for b in batches():
                with torch.no_grad():
                    soft = F.softmax(teacher(x[b]) / 3, -1)
                out = student(x[b])
                loss = F.kl_div(F.log_softmax(out / 3, -1), soft, reduction="batchmean") * 9 \
                    + F.cross_entropy(out, y[b])
                opt_s.zero_grad()
                loss.backward()
                opt_s.step()
    return obs


def test_a_second_model_trained_after_the_first_stopped_starts_the_curve_again():
    for rebind in (False, True):
        obs = _two_phase(rebind, 3e-3)
        assert last_restart(obs.state) == 85, rebind
        assert not obs.report().at_least("warning"), [(f.code, f.message) for f in obs.report().at_least("warning")]
    # the student's own bug is still judged on its own curve
    obs = _two_phase(True, 3.0)
    assert "lr" in obs.report().categories("warning")


def test_models_trained_in_turn_or_stages_of_one_model_do_not_restart_the_curve():
    torch.manual_seed(0)
    x, y = _data()
    a, b = _seq(), _seq()
    with Observer() as obs:  # two models stepped in turn (a GAN's generator and discriminator)
        opt_a, opt_b = torch.optim.Adam(a.parameters(), 1e-3), torch.optim.Adam(b.parameters(), 1e-3)
        for _ in range(30):
            _step(a, opt_a, x[:32], y[:32])
            _step(b, opt_b, x[:32], y[:32])
    assert last_restart(obs.state) is None
    model = Net()
    with Observer() as obs:  # one model: its head, then its body (disjoint parameters, one model)
        opt_head = torch.optim.SGD(model.fc2.parameters(), 0.1)
        for _ in range(20):
            _step(model, opt_head, x[:32], y[:32])
        opt_body = torch.optim.SGD(model.fc1.parameters(), 0.1)
        for _ in range(20):
            _step(model, opt_body, x[:32], y[:32])
    assert last_restart(obs.state) is None


def test_a_new_momentum_optimizer_per_long_stage_is_info_and_per_short_epoch_warns():
    """Iterative pruning / staged fine-tuning builds a fresh optimizer per round of many steps: the
    ~10 steps of momentum lost each time hardly matter (info). Rebuilt every 10 steps it does."""
    torch.manual_seed(0)
    x, y = _data()

    def staged(steps_per_stage):
        model = Net()

        def train(steps):
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            for k in range(steps):
                i = (k * 32) % 480
                _step(model, opt, x[i:i + 32], y[i:i + 32])

        with Observer(checks=[OptimizerRecreated]) as obs:
            for _ in range(4):
                train(steps_per_stage)
        return _codes(obs)

    assert staged(80) == [(CODE, Severity.INFO)]
    assert staged(10) == [(CODE, Severity.WARNING)]
