"""zero-grad checks: missing / misplaced clearing caught in several styles, every healthy style quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.zero_grad import GradientsNotCleared
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule

N = 16


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8 * N, 6, generator=g)
    return x, (x[:, 0] > 0).long()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.hidden = nn.Linear(6, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def _observe(loop, schedule: Schedule | None = None) -> list:
    with Observer(checks=[GradientsNotCleared], schedule=schedule) as obs:
        loop()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _batches(steps: int):
    x, y = _data()
    for i in range(steps):
        s = (i * N) % len(x)
        yield x[s:s + N], y[s:s + N]


# ---------------------------------------------------------------------------- bugs
def test_missing_zero_grad_sequential_sgd():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def loop():
        for xb, yb in _batches(20):
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == ["zero-grad.not-cleared"]
    f = found[0]
    assert f.severity is Severity.ERROR and f.location == "opt"
    assert f.evidence["optimizer"] == "opt" and f.evidence["steps_carried"] >= 3
    norms = [n for _, n in f.evidence["grad_norms"]]
    assert norms[-1] > norms[0]  # the carried gradient grows
    assert "opt.zero_grad()" in f.fixes[0]


def test_zero_grad_once_per_epoch_subclass_adam():
    def main():
        model = Net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _epoch in range(3):
            optimizer.zero_grad()
            for xb, yb in _batches(8):
                loss = nn.CrossEntropyLoss()(model(xb), yb)
                loss.backward()
                optimizer.step()

    found = _observe(main)
    assert [f.code for f in found] == ["zero-grad.not-cleared"]
    assert found[0].evidence["optimizer"] == "optimizer"
    assert "model.out.weight" in found[0].evidence["param_names"]


def test_missing_zero_grad_caught_with_sparse_sampling():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def loop():
        for xb, yb in _batches(40):
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    found = _observe(loop, Schedule(dense=1, every=4))
    assert [f.code for f in found] == ["zero-grad.not-cleared"]


def test_only_the_optimizer_that_is_never_zeroed_is_reported():
    torch.manual_seed(0)
    enc, dec = nn.Linear(6, 3), nn.Linear(3, 6)
    opt_enc = torch.optim.SGD(enc.parameters(), lr=0.01)
    opt_dec = torch.optim.SGD(dec.parameters(), lr=0.01)

    def loop():
        for xb, _ in _batches(12):
            loss = F.mse_loss(dec(enc(xb)), xb)
            opt_enc.zero_grad()
            loss.backward()
            opt_enc.step()
            opt_dec.step()

    found = _observe(loop)
    assert [(f.code, f.location) for f in found] == [("zero-grad.not-cleared", "opt_dec")]


def test_zero_grad_between_backward_and_step():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loop():
        for xb, yb in _batches(10):
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            model.zero_grad()
            opt.step()

    found = _observe(loop)
    assert [f.code for f in found] == ["zero-grad.cleared-before-step"]
    assert "step uses no gradient" in found[0].message


def test_grad_set_to_none_before_step_manual_style():
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loop():
        for xb, yb in _batches(10):
            F.cross_entropy(model(xb), yb).backward()
            for p in model.parameters():
                p.grad = None
            opt.step()

    assert [f.code for f in _observe(loop)] == ["zero-grad.cleared-before-step"]


def _step_first(found) -> bool:
    return (len(found) == 1 and found[0].code == "zero-grad.cleared-before-step"
            and found[0].evidence["step_before_backward"] and "runs before loss.backward()" in found[0].message)


def test_step_before_backward_named_as_such_in_three_styles():
    """zero_grad(); loss = f(x); step(); backward(): the step finds no gradient (the message names the
    order, and the fix is to step after backward), in a plain loop, a trainer class and a closure-free
    function over dict batches."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def plain():
        for xb, yb in _batches(10):
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            opt.step()
            loss.backward()

    class Trainer:
        def __init__(self) -> None:
            self.model = _mlp()
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

        def fit(self) -> None:
            for xb, yb in _batches(10):
                self.opt.zero_grad(set_to_none=True)
                out = self.model(xb)
                self.opt.step()
                F.cross_entropy(out, yb).backward()

    def train_step(m, o, batch):
        m.zero_grad()
        loss = F.mse_loss(m(batch["x"]).sum(1), batch["y"].float())
        o.step()
        loss.backward()

    m2 = Net()
    o2 = torch.optim.RMSprop(m2.parameters(), lr=1e-3)
    found = [_observe(plain), _observe(Trainer().fit),
             _observe(lambda: [train_step(m2, o2, {"x": xb, "y": yb}) for xb, yb in _batches(10)])]
    assert all(_step_first(f) for f in found), [[(x.code, x.message) for x in f] for f in found]
    assert "after loss.backward()" in found[0][0].fixes[0]


def test_zero_grad_between_backward_and_step_is_not_called_step_first():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loop():
        for xb, yb in _batches(10):
            F.cross_entropy(model(xb), yb).backward()
            opt.zero_grad()
            opt.step()

    found = _observe(loop)
    assert len(found) == 1 and not found[0].evidence["step_before_backward"]


# ---------------------------------------------------------------------------- healthy
def test_every_clearing_style_is_quiet():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loop():
        for i, (xb, yb) in enumerate(_batches(24)):
            style = i % 5
            if style == 0:
                opt.zero_grad()
            elif style == 1:
                opt.zero_grad(set_to_none=False)
            elif style == 2:
                model.zero_grad()
            elif style == 3:
                for p in model.parameters():
                    p.grad = None
            else:
                for p in model.parameters():
                    if p.grad is not None:
                        p.grad.detach_()
                        p.grad.zero_()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    assert _observe(loop) == []


def test_zero_grad_after_step_and_accumulation_are_quiet():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loop():
        for i, (xb, yb) in enumerate(_batches(40)):
            (F.cross_entropy(model(xb), yb) / 4).backward()
            if (i + 1) % 4 == 0:
                opt.step()
                opt.zero_grad(set_to_none=False)

    assert _observe(loop) == []


def test_gan_two_optimizers_is_quiet_dense_and_sparse():
    def loop():
        torch.manual_seed(0)
        G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
        bce = nn.BCEWithLogitsLoss()
        ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)
        for _ in range(20):
            fake = G(torch.randn(N, 4))
            d_loss = bce(D(torch.randn(N, 2) + 2), ones) + bce(D(fake.detach()), zeros)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = bce(D(fake), ones)  # D's parameters get gradients here too
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()

    assert _observe(loop) == []
    assert _observe(loop, Schedule(dense=0, every=3)) == []


def test_lbfgs_closure_is_quiet():
    model = _mlp()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
    x, y = _data()

    def loop():
        for _ in range(6):
            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                return loss
            opt.step(closure)

    assert _observe(loop) == []


def test_results_unchanged_by_the_check():
    def train() -> torch.Tensor:
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for xb, yb in _batches(12):
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain = train()
    with Observer(checks=[GradientsNotCleared]):
        observed = train()
    assert torch.equal(plain, observed)


class _NoGrad(torch.autograd.Function):
    """A straight-through op written wrong: its backward hands its input no gradient (None)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> None:  # noqa: ANN001
        return None


def test_gradients_left_none_by_a_custom_function_do_not_break_any_check():
    # every check on: the encoder's parameters receive None contributions (no gradient at all)
    torch.manual_seed(0)
    enc, head = nn.Linear(6, 8), nn.Linear(8, 2)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    with Observer(schedule=Schedule(dense=4, every=2)) as obs:
        for xb, yb in _batches(12):
            opt.zero_grad()
            F.cross_entropy(head(_NoGrad.apply(enc(xb))), yb).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    assert enc.weight.grad is None


def test_a_healthy_step_reads_one_gradient_to_rule_out_cleared_before_step(monkeypatch):
    """Cleared-before-step needs every gradient zero at step(): on the CPU the test stops at the
    first non-zero gradient (one reduction per judged step, not one per parameter); a step whose
    gradients were all cleared still reads them all and is still caught."""
    import nndoctor.debug.zero_grad as zg

    calls: list[int] = []
    real = zg._is_zero
    monkeypatch.setattr(zg, "_is_zero", lambda g: calls.append(1) or real(g))
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = 12

    def healthy():
        for x, y in _batches(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    assert _observe(healthy, Schedule(dense=steps, every=1)) == []
    assert 0 < len(calls) <= steps  # (6 parameters: 6 reads per judged step before)
    calls.clear()

    def cleared_before_step():
        for x, y in _batches(steps):
            F.cross_entropy(model(x), y).backward()
            opt.zero_grad(set_to_none=False)  # (zero tensors: each one is read)
            opt.step()

    found = _observe(cleared_before_step, Schedule(dense=steps, every=1))
    assert [f.code for f in found] == ["zero-grad.cleared-before-step"]
    assert len(calls) >= 6 * 3  # every gradient read at the judged steps


# ---------------------------------------------------------------------------- step(closure) styles
def _closure_loop(opt_factory, clear: bool, full_batch: bool):
    model = _mlp()
    opt = opt_factory(model.parameters())
    x, y = _data()

    def loop():
        for i in range(8):
            xb, yb = (x, y) if full_batch else (x[(i * N) % len(x):][:N], y[(i * N) % len(y):][:N])

            def closure(xb=xb, yb=yb):
                if clear:
                    opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                return loss
            opt.step(closure)
    return loop


def test_closure_without_zero_grad_is_caught_lbfgs_sgd_adam():
    for factory in (lambda p: torch.optim.LBFGS(p, lr=0.1, max_iter=4, line_search_fn="strong_wolfe"),
                    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                    lambda p: torch.optim.Adam(p, lr=1e-3)):
        for full in (True, False):
            found = _observe(_closure_loop(factory, clear=False, full_batch=full))
            assert [f.code for f in found] == ["zero-grad.not-cleared"], (factory, full, found)
            assert found[0].evidence["closure"] is True
            assert "inside the closure" in found[0].message


def test_closure_with_zero_grad_is_quiet_dense_and_sparse():
    for factory in (lambda p: torch.optim.LBFGS(p, lr=0.1, max_iter=4, line_search_fn="strong_wolfe"),
                    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)):
        for schedule in (None, Schedule(dense=0, every=3)):
            assert _observe(_closure_loop(factory, clear=True, full_batch=False), schedule) == []


def test_zero_grad_outside_a_one_call_closure_is_quiet():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loop():
        for xb, yb in _batches(10):
            opt.zero_grad()
            opt.step(lambda xb=xb, yb=yb: F.cross_entropy(model(xb), yb).backward())

    assert _observe(loop) == []
