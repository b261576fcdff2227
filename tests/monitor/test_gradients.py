"""grad: vanishing and exploding gradients from per-layer norms on sampled steps."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.checks.activations import ActivationHealth
from nndoctor.monitor.checks.gradients import GradientScale
from nndoctor.monitor.checks.init import InitCheck
from nndoctor.monitor.checks.optimizer import OptimizerSettings
from nndoctor.monitor.checks.regularization import DropoutTooStrong, WeightDecayDominates

MINE = [GradientScale, ActivationHealth, InitCheck, OptimizerSettings, WeightDecayDominates, DropoutTooStrong]


def _data(n=512, d=16, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, :classes].argmax(dim=1))
    return x, y


def _train(model, opt, x, y, steps=30, batch=64):
    for i in range(steps):
        j = (i * batch) % len(x)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[j:j + batch]), y[j:j + batch])
        loss.backward()
        opt.step()
    return loss


def _run(model, opt, x, y, steps=30, schedule=None, checks=(GradientScale,)):
    with Observer(checks=list(checks), schedule=schedule) as obs:
        _train(model, opt, x, y, steps)
    return obs


def _codes(obs, prefix="grad."):
    return [f for f in obs.findings if f.code.startswith(prefix)]


def _sigmoid_stack(depth=10, d=16):
    layers, width = [], d
    for _ in range(depth):
        layers += [nn.Linear(width, 48), nn.Sigmoid()]
        width = 48
    return nn.Sequential(*layers, nn.Linear(48, 4))


class FunctionalSigmoid(nn.Module):
    def __init__(self, depth=8, d=16):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(d if i == 0 else 40, 40) for i in range(depth))
        self.head = nn.Linear(40, 4)

    def forward(self, x):
        for block in self.blocks:
            x = torch.sigmoid(block(x))
        return self.head(x)


def test_vanishing_in_sequential_sigmoid_stack_with_sgd():
    torch.manual_seed(0)
    model = _sigmoid_stack()
    x, y = _data()
    obs = _run(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y)
    found = _codes(obs)
    assert [f.code for f in found] == ["grad.vanishing-gradients"]
    f = found[0]
    assert f.location == "model.0"
    assert f.evidence["ratio"] < 1e-3 and f.evidence["first_norm"] < 1e-4
    assert f.evidence["last_layer"] == "model.20"
    assert len(f.evidence["steps"]) >= 3
    assert "sigmoid" in f.fixes[0]


def test_vanishing_in_functional_subclass_with_adam():
    torch.manual_seed(1)
    net = FunctionalSigmoid()
    x, y = _data(seed=1)
    obs = _run(net, torch.optim.Adam(net.parameters(), lr=1e-3), x, y)
    found = _codes(obs)
    assert [f.code for f in found] == ["grad.vanishing-gradients"]
    assert found[0].location == "model.blocks.0"
    assert "model.head" in found[0].message


class Recurrent(nn.Module):
    def __init__(self, gain):
        super().__init__()
        self.rnn = nn.RNN(4, 64, batch_first=True)
        self.fc = nn.Linear(64, 1)
        nn.init.normal_(self.rnn.weight_hh_l0, std=gain / 8.0)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def _rnn_run(gain):
    torch.manual_seed(0)
    model = Recurrent(gain)
    x = torch.randn(256, 60, 4)
    y = x[:, -5:, 0].sum(dim=1, keepdim=True)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    with Observer(checks=[GradientScale]) as obs:
        for i in range(0, 256, 32):
            opt.zero_grad()
            F.mse_loss(model(x[i:i + 32]), y[i:i + 32]).backward()
            opt.step()
    return obs


def test_exploding_spike_through_time_in_rnn():
    found = _codes(_rnn_run(gain=2.5))
    assert [f.code for f in found] == ["grad.exploding-gradients"]
    assert found[0].location == "model.rnn"
    assert found[0].evidence["ratio"] > 1e3
    assert "clip_grad_norm_" in found[0].fixes[0]


def test_rnn_with_default_init_is_quiet():
    assert not _codes(_rnn_run(gain=1.0))


def test_exploding_persistent_ratio_in_deep_tanh_with_unit_variance_weights():
    torch.manual_seed(0)
    model = nn.Sequential(*[m for i in range(8) for m in (nn.Linear(16 if i == 0 else 64, 64), nn.Tanh())],
                          nn.Linear(64, 4))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)
    x, y = _data()
    obs = _run(model, torch.optim.SGD(model.parameters(), lr=1e-2), x, y, steps=12)
    found = _codes(obs)
    assert [f.code for f in found] == ["grad.exploding-gradients"]
    assert "sampled steps" in found[0].message


def test_healthy_networks_are_quiet():
    x, y = _data()
    torch.manual_seed(0)
    relu = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    assert not _codes(_run(relu, torch.optim.Adam(relu.parameters(), lr=1e-3), x, y))
    tanh = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
    assert not _codes(_run(tanh, torch.optim.SGD(tanh.parameters(), lr=0.1, momentum=0.9), x, y))
    deep = nn.Sequential(*[m for _ in range(6) for m in (nn.LazyLinear(32), nn.BatchNorm1d(32), nn.ReLU())],
                         nn.Linear(32, 4))
    deep(x[:2])
    assert not _codes(_run(deep, torch.optim.SGD(deep.parameters(), lr=0.05), x, y))


def test_only_sampled_steps_are_measured():
    torch.manual_seed(0)
    model = _sigmoid_stack(depth=3)
    x, y = _data()
    obs = _run(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, steps=25,
               schedule=Schedule(dense=2, every=10))
    samples = next(iter(obs.checks[0].samples.values()))
    assert [s.step for s in samples] == [1, 2, 11, 21]


def test_results_unchanged_under_these_checks():
    x, y = _data()

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 32), nn.Tanh(),
                             nn.Linear(32, 4))

    plain = make()
    torch.manual_seed(5)
    _train(plain, torch.optim.AdamW(plain.parameters(), lr=1e-2, weight_decay=0.1), x, y, steps=20)
    watched = make()
    reference = copy.deepcopy(watched.state_dict())
    torch.manual_seed(5)
    with Observer(checks=MINE) as obs:
        _train(watched, torch.optim.AdamW(watched.parameters(), lr=1e-2, weight_decay=0.1), x, y, steps=20)
    assert not obs.internal_errors
    for k, v in plain.state_dict().items():
        assert torch.equal(v, watched.state_dict()[k]), k
    assert any(not torch.equal(v, watched.state_dict()[k]) for k, v in reference.items())


# -- deep saturating stacks whose first-layer norm stays above 1e-4, or where every layer starves --

def _glorot_sigmoid_stack(depth=7, d=16):
    model = _sigmoid_stack(depth=depth, d=d)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def test_vanishing_layer_after_layer_although_the_first_norm_is_not_tiny():
    # wide-spread inputs keep the first layer's gradient above AUTOTRAINER's 1e-4, yet the ratio collapses
    torch.manual_seed(0)
    model = _glorot_sigmoid_stack()
    x, y = _data()
    obs = _run(model, torch.optim.SGD(model.parameters(), lr=0.05), x * 4.0, y)
    [f] = _codes(obs)
    assert f.code == "grad.vanishing-gradients" and f.location == "model.0"
    assert f.evidence["ratio"] < 1e-3 and f.evidence["first_norm"] >= 1e-4
    assert "sigmoid" in f.message and f.evidence["starved_layers"][0] == "model.0"


class SmallInitTanh(nn.Module):
    def __init__(self, depth=10, d=16, std=0.05):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(d if i == 0 else 48, 48) for i in range(depth))
        self.out = nn.Linear(48, 4)
        for layer in [*self.hidden, self.out]:
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.out(x)


def test_vanishing_in_every_hidden_layer_is_reported_beside_the_init_scale():
    torch.manual_seed(0)
    net = SmallInitTanh()
    x, y = _data()
    obs = _run(net, torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), x, y, steps=12,
               checks=(GradientScale, InitCheck))
    codes = {f.code for f in obs.findings}
    assert {"grad.vanishing-gradients", "init.activation-scale"} <= codes
    [f] = _codes(obs)
    assert "every hidden layer" in f.message and f.location == "model.hidden.0"
    assert f.evidence["starved_layers"][-1] == "model.hidden.9" and f.evidence["largest_grad_to_weight"] < 1e-4


def test_vanishing_in_every_hidden_layer_without_the_init_check():
    torch.manual_seed(0)
    net = SmallInitTanh(depth=12, std=0.03)
    x, y = _data()
    [f] = _codes(_run(net, torch.optim.SGD(net.parameters(), lr=0.01), x, y, steps=12))
    assert "every hidden layer" in f.message and f.evidence["largest_grad_to_weight"] < 1e-5


class Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 32, num_layers=2, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


def test_healthy_deep_tanh_relu_and_lstm_stay_quiet():
    x, y = _data()
    torch.manual_seed(0)
    tanh = nn.Sequential(*[m for i in range(6) for m in (nn.Linear(16 if i == 0 else 40, 40), nn.Tanh())],
                         nn.Linear(40, 4))
    for m in tanh:
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight, gain=5 / 3)
    assert not _codes(_run(tanh, torch.optim.SGD(tanh.parameters(), lr=0.01, momentum=0.9), x, y),
                      prefix="grad.vanishing")
    relu = nn.Sequential(*[m for i in range(8) for m in (nn.Linear(16 if i == 0 else 64, 64), nn.ReLU())],
                         nn.Linear(64, 4))
    for m in relu:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    assert not _codes(_run(relu, torch.optim.SGD(relu.parameters(), lr=0.01), x, y), prefix="grad.vanishing")
    lstm = Lstm()
    seq = x.view(-1, 4, 4)
    assert not _codes(_run(lstm, torch.optim.Adam(lstm.parameters(), lr=1e-3), seq, y), prefix="grad.vanishing")


def _narrow_stack(act, depth=8, d=2):
    torch.manual_seed(0)
    layers = [nn.Linear(d, 3), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(3, 3), act()]
    return nn.Sequential(*layers, nn.Linear(3, 2))


def _rings(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * 6.283
    radius = torch.where(y == 1, 0.5, 1.0) + 0.08 * torch.randn(n, generator=g)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1), y


def test_early_vanishing_that_adam_outgrows_is_quiet_but_lasting_vanishing_is_not():
    x, y = _rings()
    model = _narrow_stack(nn.LeakyReLU)  # 8 layers of 3 units: ~1e-7 at step 1, healthy by step ~20
    obs = _run(model, torch.optim.Adam(model.parameters(), lr=1e-2), x, y, steps=120)
    assert not _codes(obs)
    torch.manual_seed(1)
    net = FunctionalSigmoid()  # a deep sigmoid stack at a small Adam rate stays vanished
    found = _codes(_run(net, torch.optim.Adam(net.parameters(), lr=3e-4), *_data(seed=1), steps=60))
    assert [f.code for f in found] == ["grad.vanishing-gradients"]


class _GATLayer(nn.Module):
    """A graph attention layer as pyGAT writes it: a weight ``W`` and an attention vector ``a``
    kept as a (2F, 1) matrix; the attention's gradient is far smaller than the weight's."""

    def __init__(self, n_in, n_out, concat=True):
        super().__init__()
        self.W = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_in, n_out), gain=1.414))
        self.a = nn.Parameter(nn.init.xavier_uniform_(torch.empty(2 * n_out, 1), gain=1.414))
        self.n_out, self.concat = n_out, concat

    def forward(self, h, adj):
        wh = h @ self.W
        e = F.leaky_relu(wh @ self.a[:self.n_out] + (wh @ self.a[self.n_out:]).T, 0.2)
        att = F.dropout(F.softmax(torch.where(adj > 0, e, torch.full_like(e, -9e15)), dim=1), 0.6, self.training)
        out = att @ wh
        return F.elu(out) if self.concat else out


class _GAT(nn.Module):
    def __init__(self, n_in, classes, hidden=8, heads=8):
        super().__init__()
        self.heads = nn.ModuleList([_GATLayer(n_in, hidden) for _ in range(heads)])
        self.out = _GATLayer(hidden * heads, classes, concat=False)

    def forward(self, x, adj):
        x = torch.cat([h(F.dropout(x, 0.6, self.training), adj) for h in self.heads], dim=1)
        return F.log_softmax(F.elu(self.out(F.dropout(x, 0.6, self.training), adj)), dim=1)


def _citation_graph(n=300, words=1433, classes=7, seed=0):
    """Row-normalised bags of words (18 words a node, 8 of its class) on a sparse homophilous graph."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.zeros(n, words)
    rows = torch.arange(n).repeat_interleave(18)
    cols = torch.cat([torch.randint(0, words, (n, 10), generator=g),
                      y[:, None] * 200 + torch.randint(0, 200, (n, 8), generator=g)], dim=1).flatten()
    x[rows, cols] = 1.0
    x = x / x.sum(1, keepdim=True)
    same = (y[:, None] == y[None, :]) & (torch.rand(n, n, generator=g) < 0.01)
    adj = (same | (torch.rand(n, n, generator=g) < 0.002)).float() + torch.eye(n)
    return x, y, adj


def test_graph_attention_vectors_do_not_stand_for_their_layers():
    """A healthy GAT: its last layer's attention vector gets a gradient ~100x below the first layer's
    weight; the layers themselves (W) are within 2x of each other. No exploding gradients."""
    x, y, adj = _citation_graph()
    torch.manual_seed(0)
    model = _GAT(x.shape[1], 7)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3, weight_decay=5e-4)
    train = torch.arange(140)
    with Observer(checks=[GradientScale]) as obs:
        for _ in range(8):
            opt.zero_grad()
            F.nll_loss(model(x, adj)[train], y[train]).backward()
            if _ == 0:
                ratio = float(model.heads[0].W.grad.norm() / model.out.a.grad.norm())
            opt.step()
    assert ratio > 70  # what the first/last rule saw when it compared W with the attention vector
    assert not _codes(obs)
    # a regression head nn.Linear(h, 1) still stands for the last layer (its only matrix is (1, h))
    torch.manual_seed(0)
    deep = nn.Sequential(*[m for i in range(8) for m in (nn.Linear(16 if i == 0 else 64, 64), nn.Tanh())],
                         nn.Linear(64, 1))
    for m in deep:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)
    xr, _ = _data()
    with Observer(checks=[GradientScale]) as obs:
        opt = torch.optim.SGD(deep.parameters(), lr=1e-2)
        for i in range(12):
            opt.zero_grad()
            F.mse_loss(deep(xr[i * 32:(i + 1) * 32]), xr[i * 32:(i + 1) * 32, :1]).backward()
            opt.step()
    assert [f.code for f in _codes(obs)] == ["grad.exploding-gradients"]


class _BayesLinear(nn.Module):
    """Bayes by backprop: a mean and a rho matrix per layer (rho constant at -5 by design)."""

    def __init__(self, i, o):
        super().__init__()
        self.mu = nn.Parameter(torch.empty(o, i).uniform_(-1 / i ** 0.5, 1 / i ** 0.5))
        self.rho = nn.Parameter(torch.full((o, i), -5.0))
        self.b = nn.Parameter(torch.zeros(o))

    def forward(self, x):
        sigma = F.softplus(self.rho)
        mean = F.linear(x, self.mu, self.b)
        return mean + F.linear(x * x, sigma * sigma).clamp_min(1e-12).sqrt() * torch.randn_like(mean)


class _GatedLinear(nn.Module):
    """A weight and a same-shape gate matrix (a learned soft mask)."""

    def __init__(self, i, o):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i))
        self.gate = nn.Parameter(torch.full((o, i), 4.0))

    def forward(self, x):
        return F.linear(x, self.w * torch.sigmoid(self.gate))


def test_layers_of_several_matrices_are_compared_like_with_like():
    # healthy Bayes-by-backprop regression: the output layer's rho gradient is tiny by construction,
    # its mean's is not; first mean vs last rho read as exploding gradients (106x) on healthy training
    torch.manual_seed(0)
    x = torch.rand(1024, 1) * 6 - 3
    y = torch.sin(x) * x / 2 + 0.1 * torch.randn(1024, 1)
    net = nn.Sequential(_BayesLinear(1, 64), nn.ReLU(), _BayesLinear(64, 64), nn.ReLU(), _BayesLinear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    with Observer(checks=[GradientScale]) as obs:
        for _step in range(60):
            idx = torch.randint(0, 1024, (128,))
            loss = F.mse_loss(net(x[idx]), y[idx]) + sum(
                (F.softplus(m.rho) ** 2 + m.mu ** 2).sum() for m in net if isinstance(m, _BayesLinear)) / 1024
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _codes(obs) == []
    # a deep tanh stack of such layers at unit-variance weights still explodes, mean against mean
    torch.manual_seed(0)
    deep = nn.Sequential(*[m for i in range(8) for m in (_GatedLinear(16 if i == 0 else 64, 64), nn.Tanh())],
                         _GatedLinear(64, 4))
    xs, ys = _data()
    found = _codes(_run(deep, torch.optim.SGD(deep.parameters(), lr=1e-2), xs, ys, steps=12))
    assert [f.code for f in found] == ["grad.exploding-gradients"]
    assert found[0].evidence["last_layer"].endswith(".16")


def _small_init_regression(opt_name, lr, std, steps=150, width=32, depth=4, act=None):
    """A deep stack whose weights start tiny (std ``std``): its gradients start tiny too and grow
    by orders of magnitude as the weights grow; a regression target the stack can fit."""
    torch.manual_seed(0)
    layers = []
    for i in range(depth):
        layers.append(nn.Linear(16 if i == 0 else width, width, bias=False))
        if act is not None:
            layers.append(act())
    net = nn.Sequential(*layers, nn.Linear(width, 1, bias=False))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2048, 16, generator=g)
    y = x @ torch.randn(16, 1, generator=g)
    opt = getattr(torch.optim, opt_name)(net.parameters(), lr=lr)
    norms, losses = [], []
    with Observer(checks=[GradientScale]) as obs:
        for i in range(steps):
            j = (i * 64) % len(x)
            opt.zero_grad()
            loss = F.mse_loss(net(x[j:j + 64]), y[j:j + 64])
            loss.backward()
            norms.append(float(torch.cat([p.grad.flatten() for p in net.parameters()]).norm()))
            opt.step()
            losses.append(loss.item())
    return obs, norms, losses


def test_gradient_growing_from_a_tiny_start_under_an_adaptive_optimizer_while_the_loss_falls_is_quiet():
    # Adam's update is ~lr whatever the gradient's scale: weights that start tiny grow, and with them
    # the gradients (>= 1000x their first steps'), while the loss falls to ~0: nothing exploded
    for opt_name, lr, std, act in (("Adam", 1e-2, 3e-3, None), ("Adam", 1e-2, 1e-2, None),
                                   ("RMSprop", 1e-3, 3e-3, None), ("AdamW", 3e-3, 3e-3, nn.Tanh)):
        obs, norms, losses = _small_init_regression(opt_name, lr, std, act=act)
        assert max(norms[3:]) > 1e3 * sorted(norms[:3])[1]  # the growth the old rule reported
        assert sum(losses[-10:]) < 0.1 * sum(losses[:10])  # and the run learns
        assert _codes(obs) == [], (opt_name, std, [f.message for f in obs.findings])


def test_gradient_growth_under_an_adaptive_optimizer_is_still_reported_when_the_loss_blows_up():
    for opt_name, lr in (("Adam", 0.5), ("Adam", 0.2), ("AdamW", 0.5)):
        obs, norms, losses = _small_init_regression(opt_name, lr, 1e-2, steps=60)
        assert max(losses) > 100 * losses[0]
        assert [f.code for f in _codes(obs)] == ["grad.exploding-gradients"], (opt_name, lr)
