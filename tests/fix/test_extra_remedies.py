"""The remedies of nndoctor.fix.extra_remedies: a scheduler stepped per batch advances per epoch,
a time-major RNN fed batch-first reads batch-first, extreme momentum comes down to 0.9; each
injected bug then trains like its fixed twin, and healthy code is untouched."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply
from torch.utils.data import DataLoader, TensorDataset


def _data(n: int = 240) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def _sched_run(per_batch: bool, loader: bool, epochs: int = 4) -> tuple[list[float], float]:
    """ExponentialLR(0.5) meant per epoch; stepped per batch when ``per_batch``."""
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    lrs = []
    batches = (DataLoader(TensorDataset(x, y), batch_size=24) if loader else None)
    for _ in range(epochs):
        it = batches if loader else ((x[i:i + 24], y[i:i + 24]) for i in range(0, 240, 24))
        for xb, yb in it:  # type: ignore[union-attr]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if per_batch:
                sched.step()
        if not per_batch:
            sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        with torch.no_grad():  # an evaluation pass between epochs never counts as an epoch
            for xb, _ in (DataLoader(TensorDataset(x, y), batch_size=60) if loader else [(x, y)]):
                model(xb)
    with torch.no_grad():
        return lrs, float(F.cross_entropy(model(x), y))


def test_scheduler_stepped_per_batch_advances_per_epoch_like_the_twin():
    for loader in (False, True):
        twin_lrs, twin_loss = _sched_run(per_batch=False, loader=loader)
        bug_lrs, bug_loss = _sched_run(per_batch=True, loader=loader)
        with _apply("lr.schedule-collapses", "opt", scheduler="ExponentialLR"):
            fixed_lrs, fixed_loss = _sched_run(per_batch=True, loader=loader)
        assert bug_lrs[0] < 0.01 * twin_lrs[0]                 # the bug: the rate collapses in epoch 1
        # per epoch with the remedy; its step lands at the start of the next epoch, one epoch later
        assert fixed_lrs[1:] == twin_lrs[:-1] and fixed_lrs[0] == 0.1
        assert abs(fixed_loss - twin_loss) < abs(bug_loss - twin_loss)


def test_scheduler_stepped_per_epoch_is_untouched_by_the_remedy():
    for loader in (False, True):
        twin = _sched_run(per_batch=False, loader=loader)
        with _apply("lr.schedule-collapses", "opt"):
            same = _sched_run(per_batch=False, loader=loader)
        assert same == twin


def _rnn_run(batch_first: bool) -> float:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(96, 12, 3, generator=g)                 # (batch, time, features)
    y = (x[:, :, 0].sum(1) > 0).long()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(3, 16, batch_first=batch_first)
            self.head = nn.Linear(16, 2)

        def forward(self, xb: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(xb)
            return self.head(out[:, -1])

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for i in range(0, 96, 16):
            loss = F.cross_entropy(model(x[i:i + 16]), y[i:i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_time_major_rnn_fed_batch_first_reads_batch_first_like_the_twin():
    twin, bug = _rnn_run(True), _rnn_run(False)
    with _apply("shape.rnn-batch-time-swapped", "model.rnn", input_shape=(16, 12, 3), batch_size=16):
        fixed = _rnn_run(False)
        healthy = _rnn_run(True)
    assert fixed == twin and healthy == twin and bug < twin


def test_time_major_rnn_with_other_shapes_is_left_alone():
    rnn = nn.GRU(3, 4)
    x = torch.randn(7, 5, 3)                               # time-major, another length than the finding's
    want = rnn(x)[0]
    with _apply("shape.rnn-batch-time-swapped", "rnn", input_shape=(16, 12, 3)):
        got = rnn(x)[0]
    assert not rnn.batch_first and torch.equal(got, want)


def _momentum_run(make_opt) -> float:
    """A small regression: momentum 0.999 keeps overshooting it, 0.9 settles."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(240, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(240, 1, generator=g)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = make_opt(model.parameters())
    for _ in range(100):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_extreme_momentum_comes_down_to_09_like_the_twin_and_sane_momentum_is_kept():
    twin = _momentum_run(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))
    bug = _momentum_run(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.999))
    adam_twin = _momentum_run(lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.999)))
    with _apply("optimizer.extreme-momentum", "optimizer", setting="momentum", value=0.999):
        fixed = _momentum_run(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.999))
        healthy = _momentum_run(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))
        adam = _momentum_run(lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.995, 0.999)))
        adam_healthy = _momentum_run(lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.999)))
    assert fixed == twin and healthy == twin and bug > twin
    assert adam == adam_twin and adam_healthy == adam_twin


def _deep(act, init=None, width: int = 3, depth: int = 8, steps: int = 80) -> float:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(128, 2, generator=g)
    y = ((x ** 2).sum(1) > 1.4).long()
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(2 if i == 0 else width, width), act()]
    model = nn.Sequential(*layers, nn.Linear(width, 2))
    if init is not None:
        for m in model:
            if isinstance(m, nn.Linear):
                init(m.weight)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_vanishing_gradients_in_a_relu_stack_get_leaky_relu_like_the_twin():
    bias = lambda w: None  # noqa: E731
    twin, bug = _deep(nn.LeakyReLU, bias, depth=5, steps=200), _deep(nn.ReLU, bias, depth=5, steps=200)
    with _apply("grad.vanishing-gradients", "model.0", activation="relu"):
        fixed = _deep(nn.ReLU, bias, depth=5, steps=200)
    assert fixed == twin and bug > 0.6 > 0.1 > twin


def test_vanishing_gradients_of_a_tiny_tanh_init_get_glorot_and_a_healthy_init_is_kept():
    tiny = lambda w: nn.init.normal_(w, std=1e-3)  # noqa: E731
    glorot = lambda w: nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))  # noqa: E731
    twin, bug = _deep(nn.Tanh, glorot, width=16, depth=6), _deep(nn.Tanh, tiny, width=16, depth=6)
    with _apply("grad.vanishing-gradients", "model.0", activation="tanh"):
        fixed = _deep(nn.Tanh, tiny, width=16, depth=6)
        healthy = _deep(nn.Tanh, glorot, width=16, depth=6)
    assert healthy == twin and bug - fixed > 0.8 * (bug - twin)



class _FunctionalTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def test_vanishing_gradients_with_functional_tanh_get_glorot_like_the_twin():
    # no activation module to name: the check reports "sigmoid/tanh"
    tiny = lambda w: nn.init.normal_(w, std=1e-3)  # noqa: E731
    glorot = lambda w: nn.init.xavier_uniform_(w)  # noqa: E731
    twin, bug = _deep(_FunctionalTanh, glorot, width=16, depth=6), _deep(_FunctionalTanh, tiny, width=16, depth=6)
    with _apply("grad.vanishing-gradients", "model.0", activation="sigmoid/tanh"):
        fixed = _deep(_FunctionalTanh, tiny, width=16, depth=6)
    assert bug - fixed > 0.8 * (bug - twin)

def test_vanishing_gradients_of_pytorchs_default_init_in_a_deep_functional_tanh_stack_get_glorot():
    # PyTorch's default init of a square layer is 0.58x plain Glorot: deep tanh stacks fade
    glorot = lambda w: nn.init.xavier_uniform_(w)  # noqa: E731
    twin = _deep(_FunctionalTanh, glorot, width=16, depth=12, steps=60)
    bug = _deep(_FunctionalTanh, None, width=16, depth=12, steps=60)
    with _apply("grad.vanishing-gradients", "model.0", activation="sigmoid/tanh"):
        fixed = _deep(_FunctionalTanh, None, width=16, depth=12, steps=60)
        healthy = _deep(_FunctionalTanh, glorot, width=16, depth=12, steps=60)
    assert healthy == twin and bug - fixed > 0.8 * (bug - twin) > 0


def test_saturated_tanh_from_a_std_1_init_gets_glorot_and_a_healthy_init_is_kept():
    def net(init) -> nn.Sequential:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        for m in model:
            if isinstance(m, nn.Linear):
                init(m.weight)
        return model

    glorot = nn.init.calculate_gain("tanh") * (2 / 128) ** 0.5
    big = net(lambda w: nn.init.normal_(w, std=1.0))            # ~5x the Glorot scale: saturates
    healthy = net(lambda w: nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh")))
    x = torch.randn(32, 64)
    pre = torch.tanh(big[0](x)).abs().gt(0.99).float().mean()
    kept = [m.weight.clone() for m in healthy if isinstance(m, nn.Linear)]
    with _apply("activation.saturated", "model.1", activation="tanh"):
        for model in (big, healthy):
            opt = torch.optim.SGD(model.parameters(), lr=0.0)
            model(x).sum().backward()
            opt.step()
    stds = [float(m.weight.std()) for m in big if isinstance(m, nn.Linear)]
    assert all(glorot / 2 < s < glorot * 2 for s in stds[:2]) and pre > 0.5
    assert torch.tanh(big[0](x)).abs().gt(0.99).float().mean() < 0.25 * pre
    assert all(torch.equal(a, m.weight) for a, m in zip(kept, [m for m in healthy if isinstance(m, nn.Linear)]))
