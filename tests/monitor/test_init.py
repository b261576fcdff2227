"""init: constant/symmetric weights and initial scales that vanish or explode with depth."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.init import InitCheck


def _data(n=256, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x[:, :4].argmax(dim=1)


def _run(model, opt=None, steps=3, x=None):
    if x is None:
        x, y = _data()
    else:
        y = torch.zeros(len(x), dtype=torch.long)
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.01)
    with Observer(checks=[InitCheck]) as obs:
        for i in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
            opt.step()
    return obs


def _mlp(act=nn.ReLU, depth=4, width=64, d=16):
    layers, w = [], d
    for _ in range(depth):
        layers += [nn.Linear(w, width), act()]
        w = width
    return nn.Sequential(*layers, nn.Linear(width, 4))


def _init(model, fn):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fn(m)
    return model


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


def test_all_layers_filled_with_one_value_is_an_error():
    torch.manual_seed(0)
    net = Net()

    def fill(m):
        if isinstance(m, nn.Linear):
            m.weight.data.fill_(0.01)
    net.apply(fill)
    obs = _run(net, torch.optim.Adam(net.parameters(), lr=1e-3))
    found = [f for f in obs.findings if f.code == "init.constant-weights"]
    assert len(found) == 1 and found[0].severity is Severity.ERROR
    assert found[0].location == "model.fc1"
    assert found[0].evidence["layers"] == ["model.fc1", "model.fc2", "model.fc3"]
    assert not [f for f in obs.findings if f.code == "init.activation-scale"]


def test_all_zero_sequential_is_an_error():
    torch.manual_seed(0)
    model = _init(_mlp(), lambda m: (nn.init.zeros_(m.weight), nn.init.zeros_(m.bias)))
    found = _run(model).findings
    assert [(f.code, f.severity) for f in found] == [("init.constant-weights", Severity.ERROR)]
    assert "constant (0)" in found[0].message


def test_one_constant_hidden_layer_is_a_warning():
    torch.manual_seed(0)
    model = _mlp()
    nn.init.constant_(model[0].weight, 0.1)
    found = _run(model).findings
    assert [(f.code, f.location, f.severity) for f in found] == [
        ("init.constant-weights", "model.0", Severity.WARNING)]


def test_copied_rows_are_symmetric():
    torch.manual_seed(0)
    model = _mlp()
    with torch.no_grad():
        model[2].weight.copy_(model[2].weight[:1].expand_as(model[2].weight))
    found = _run(model).findings
    assert [(f.code, f.location) for f in found] == [("init.symmetric-weights", "model.2")]


def test_deliberate_zero_inits_and_defaults_are_quiet():
    torch.manual_seed(0)
    head = _mlp()
    nn.init.zeros_(head[-1].weight)
    assert not _run(head).findings
    branch = _mlp()
    nn.init.zeros_(branch[4].weight)  # a zero-initialised inner layer (adapter / residual style)
    assert not _run(branch).findings
    assert not _run(_mlp(depth=10)).findings  # PyTorch default init, even deep
    assert not _run(_mlp(nn.Tanh, depth=8)).findings
    kaiming = _init(_mlp(depth=8), lambda m: nn.init.kaiming_normal_(m.weight, nonlinearity="relu"))
    assert not _run(kaiming).findings
    xavier = _init(_mlp(nn.Tanh, depth=6), lambda m: nn.init.xavier_normal_(m.weight))
    assert not _run(xavier).findings
    normed = nn.Sequential(*[m for i in range(6) for m in (nn.Linear(16 if i == 0 else 64, 64),
                                                            nn.BatchNorm1d(64), nn.ReLU())], nn.Linear(64, 4))
    _init(normed, lambda m: nn.init.normal_(m.weight, std=0.01))
    assert not _run(normed).findings


def test_tiny_normal_init_in_deep_relu_net_vanishes():
    torch.manual_seed(0)
    model = _init(_mlp(depth=6), lambda m: nn.init.normal_(m.weight, std=0.01))
    found = _run(model).findings
    assert [f.code for f in found] == ["init.activation-scale"]
    f = found[0]
    assert f.evidence["ratio"] < 1e-2 and f.evidence["activation"] == "relu"
    assert "kaiming" in f.evidence["scheme"] and "kaiming" in f.fixes[0]
    assert "shrinks" in f.message and f.location == "model.0"


def test_small_init_in_functional_tanh_net_names_xavier():
    torch.manual_seed(0)
    net = Net()
    _init(net, lambda m: nn.init.normal_(m.weight, std=0.005))
    net.fc4 = nn.Linear(4, 4)
    found = _run(net).findings
    assert [f.code for f in found] == ["init.activation-scale"]
    assert "xavier" in found[0].evidence["scheme"]


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.c3 = nn.Conv2d(16, 16, 3, padding=1)
        self.c4 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 16, 4)

    def forward(self, x):
        x = x.view(-1, 1, 4, 4)
        x = F.relu(self.c2(F.relu(self.c1(x))))
        x = F.relu(self.c4(F.relu(self.c3(x))))
        return self.fc(x.flatten(1))


def test_large_uniform_init_in_cnn_explodes():
    torch.manual_seed(0)
    net = _init(Conv(), lambda m: nn.init.uniform_(m.weight, -1.0, 1.0))
    found = _run(net, torch.optim.Adam(net.parameters(), lr=1e-3)).findings
    assert [f.code for f in found] == ["init.activation-scale"]
    assert "grows" in found[0].message and found[0].location == "model.c1"


# ---------------------------------------------------------------- bounded activations saturated by the init
class DeepSigmoid(nn.Module):
    def __init__(self, d=16, width=48, depth=5):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(d if i == 0 else width, width) for i in range(depth)])
        self.out = nn.Linear(width, 4)
        for layer in self.hidden:
            layer.weight.data = torch.randn_like(layer.weight)   # std 1, not 1/sqrt(fan_in)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.sigmoid(layer(x))
        return self.out(x)


def test_unit_normal_init_saturating_deep_tanh_names_the_init():
    """tanh bounds the signal, so its scale does not grow with depth: the saturation is the init's doing."""
    torch.manual_seed(0)
    model = _init(_mlp(act=nn.Tanh, depth=6), lambda m: nn.init.normal_(m.weight, 0.0, 1.0))
    found = _run(model).findings
    assert [f.code for f in found] == ["init.activation-scale"]
    ev = found[0].evidence
    assert ev["activation"] == "tanh" and "xavier" in ev["scheme"]
    assert ev["weight_std_x_sqrt_fan_in"] >= 3 and ev["saturating_layers"]
    assert "saturat" in found[0].message and "1/sqrt(fan_in)" in found[0].message


def test_unit_normal_init_in_sigmoid_subclass_with_adam_names_the_init():
    torch.manual_seed(0)
    net = DeepSigmoid()
    found = _run(net, torch.optim.Adam(net.parameters(), lr=1e-3)).findings
    assert [f.code for f in found] == ["init.activation-scale"]
    assert found[0].evidence["activation"] == "sigmoid"


def test_xavier_and_default_deep_tanh_are_quiet():
    torch.manual_seed(0)
    gain = nn.init.calculate_gain("tanh")
    xavier = _init(_mlp(act=nn.Tanh, depth=6), lambda m: nn.init.xavier_normal_(m.weight, gain=gain))
    assert _run(xavier).findings == []
    assert _run(_mlp(act=nn.Tanh, depth=6)).findings == []
    assert _run(_mlp(act=nn.Sigmoid, depth=6)).findings == []


# ---------------------------------------------------------------------------- oversized ReLU weights, shallow nets
class FunctionalReLUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(16, 64), nn.Linear(64, 64), nn.Linear(64, 4)
        for layer in (self.fc1, self.fc2, self.out):
            layer.weight.data.normal_()  # std 1: 4x 1/sqrt(fan_in) in fc1, 8x after

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


def test_unit_normal_init_in_shallow_relu_nets_is_named_in_three_styles():
    torch.manual_seed(0)
    sequential = _init(_mlp(depth=2), lambda m: nn.init.normal_(m.weight))          # nn.init.normal_(w): std 1
    uniform = _mlp(depth=2, width=128).apply(
        lambda m: nn.init.uniform_(m.weight, -1.0, 1.0) if isinstance(m, nn.Linear) else None)
    for model, opt in ((sequential, None), (uniform, None),
                       (FunctionalReLUNet(), None)):
        found = [f for f in _run(model, opt).findings if f.severity is not Severity.INFO]
        assert [f.code for f in found] == ["init.activation-scale"], found
        f = found[0]
        assert f.evidence["weight_std_x_sqrt_fan_in"] >= 4 and f.evidence["output_rms"] >= 20
        assert "kaiming" in f.evidence["scheme"] and "He" in f.message


def test_he_orthogonal_gpt_style_and_default_shallow_relu_nets_are_quiet():
    torch.manual_seed(0)
    he = _init(_mlp(depth=2), lambda m: nn.init.kaiming_normal_(m.weight, nonlinearity="relu"))
    ortho = _init(_mlp(depth=2), lambda m: nn.init.orthogonal_(m.weight, gain=nn.init.calculate_gain("relu")))
    gpt = _init(_mlp(depth=2, width=256), lambda m: nn.init.normal_(m.weight, std=0.02))
    big_inputs = _mlp(depth=2)  # default init, inputs 30x: a preprocessing matter, not the init's
    x, _ = _data()
    for model in (he, ortho, gpt):
        assert _run(model).findings == []
    assert [f for f in _run(big_inputs, x=30 * x).findings if f.code == "init.activation-scale"] == []


# ------------------------------------------------------ variational layers (Bayes by backprop)
class _BayesLinear(nn.Module):
    """Mean-field Gaussian weights: random means, a constant ``rho`` (sigma = softplus(rho)) by design."""

    def __init__(self, i, o, style, mu_value=None):
        super().__init__()
        self.style = style
        self.mu = nn.Parameter(torch.empty(o, i).uniform_(-i ** -0.5, i ** -0.5))
        if mu_value is not None:
            nn.init.constant_(self.mu, mu_value)
        self.rho = nn.Parameter(torch.full((o, i), -5.0))
        self.b = nn.Parameter(torch.zeros(o))

    def forward(self, x):
        sigma = F.softplus(self.rho)
        if self.style == "local":  # local reparameterisation: two linear maps, mean and variance
            mean = F.linear(x, self.mu, self.b)
            return mean + F.linear(x * x, sigma * sigma).clamp_min(1e-12).sqrt() * torch.randn_like(mean)
        w = self.mu + sigma * torch.randn_like(sigma)  # one weight sample per forward
        return x @ w.T + self.b


def _bnn(style, mu_value=None):
    torch.manual_seed(0)
    return nn.Sequential(_BayesLinear(16, 32, style, mu_value), nn.ReLU(), _BayesLinear(32, 32, style, mu_value),
                         nn.ReLU(), _BayesLinear(32, 4, style, mu_value))


@pytest.mark.parametrize("style", ["local", "sampled"])
def test_constant_rho_of_bayes_by_backprop_layers_is_quiet(style):
    model = _bnn(style)
    found = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3)).findings
    assert not [f for f in found if f.code.startswith(("init.constant", "init.symmetric"))], found


def test_bayes_layer_with_constant_means_and_no_noise_is_still_constant():
    # the means constant too, and the variance path only in the local style: the mean map's weights
    # (used as they are) are copies of one unit
    model = _bnn("local", mu_value=0.05)
    found = [f for f in _run(model).findings if f.code == "init.constant-weights"]
    assert found and "model.0" in str(found[0].evidence["layers"])


def test_constant_matrix_used_as_a_raw_matmul_weight_is_still_reported():
    # a hand-written layer stack with raw parameters: W2 constant, used directly in x @ W2
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.w1 = nn.Parameter(torch.randn(16, 32) * 0.25)
            self.w2 = nn.Parameter(torch.full((32, 32), 0.1))
            self.w3 = nn.Parameter(torch.randn(32, 4) * 0.2)

        def forward(self, x):
            return torch.relu(torch.relu(x @ self.w1) @ self.w2) @ self.w3
    torch.manual_seed(0)
    found = [f for f in _run(Raw()).findings if f.code in ("init.constant-weights", "init.symmetric-weights")]
    assert found, "constant w2 must still be reported"
