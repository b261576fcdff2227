"""The remedies of nndoctor.fix.more_remedies: an injected bug trains like its fixed twin with
the remedy, and healthy code is untouched (bit-identical) when the remedy has nothing to do."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.fix.remedies import all_remedies, remedy_for


def _train(make_opt, steps: int = 30, seed: int = 0) -> tuple[nn.Module, list[float]]:
    torch.manual_seed(seed)
    x = torch.randn(64, 5)
    y = (x @ torch.randn(5, 1)).squeeze(1)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = make_opt(model.parameters())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x).squeeze(1), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return model, losses


def test_every_new_remedy_describes_itself_and_says_what_to_edit():
    for r in all_remedies():
        f = {"code": r.codes[0], "location": "model", "evidence": {"setting": "eps", "value": 0.5,
                                                                     "suggest_low": "1e-3", "suggest_high": "1e-2"}}
        assert r.describe(f) and r.edit(f) and (remedy_for(f) is not None or r.applies is not None)


@pytest.mark.parametrize("code,bad,evidence", [
    ("optimizer.maximize", dict(maximize=True), {}),
    ("optimizer.adam-eps", dict(eps=0.5), {}),
    ("optimizer.adam-betas", dict(betas=(0.999, 0.9)), {}),
])
def test_optimizer_setting_back_to_default_trains_like_the_twin(code, bad, evidence):
    _, twin = _train(lambda p: torch.optim.Adam(p, lr=1e-2))
    _, buggy = _train(lambda p: torch.optim.Adam(p, lr=1e-2, **bad))
    with _apply(code, "optimizer", **evidence):
        _, fixed = _train(lambda p: torch.optim.Adam(p, lr=1e-2, **bad))
        _, healthy = _train(lambda p: torch.optim.Adam(p, lr=1e-2))
    assert fixed == twin and healthy == twin and buggy[-1] > twin[-1]


def test_momentum_of_one_goes_back_to_09_and_a_sane_momentum_is_kept():
    with _apply("optimizer.bad-setting", "optimizer", setting="momentum", value=1.0):
        bad = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1, momentum=1.0)
        sane = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.5)
    assert bad.param_groups[0]["momentum"] == 0.9 and sane.param_groups[0]["momentum"] == 0.5


def test_integer_targets_are_cast_for_bce_and_float_class_indices_for_cross_entropy():
    z, t = torch.randn(8, 1), torch.randint(0, 2, (8, 1))
    with pytest.raises(RuntimeError):
        nn.BCEWithLogitsLoss()(z, t)
    with _apply("dtype.crash-target-dtype", "loss"):
        got = nn.BCEWithLogitsLoss()(z, t)
        logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
        ce = F.cross_entropy(logits, y.float())
        probs = torch.softmax(torch.randn(8, 3), 1)
        soft = F.cross_entropy(logits, probs)       # soft targets (same rank) are left alone
    assert torch.equal(got, F.binary_cross_entropy_with_logits(z, t.float()))
    assert torch.equal(ce, F.cross_entropy(logits, y)) and torch.equal(soft, F.cross_entropy(logits, probs))


def test_unshuffled_training_loader_is_shuffled_and_evaluation_order_kept():
    data = TensorDataset(torch.arange(40.0)[:, None])
    train, evaluation, shuffled = DataLoader(data, 10), DataLoader(data, 10), DataLoader(data, 10, shuffle=True)
    with _apply("data.unshuffled-batches", "train"):
        first = torch.cat([b[0] for b in train]).flatten()
        with torch.no_grad():
            kept = torch.cat([b[0] for b in evaluation]).flatten()
        torch.manual_seed(0)
        with_remedy = torch.cat([b[0] for b in shuffled]).flatten()
    assert not torch.equal(first, torch.arange(40.0)) and sorted(first.tolist()) == list(range(40))
    assert torch.equal(kept, torch.arange(40.0))
    torch.manual_seed(0)
    assert torch.equal(with_remedy, torch.cat([b[0] for b in shuffled]).flatten())  # healthy loader untouched
    assert torch.equal(torch.cat([b[0] for b in DataLoader(data, 10)]).flatten(), torch.arange(40.0))


def test_unscaled_evaluation_inputs_are_mapped_onto_the_training_scale_and_scaled_ones_untouched():
    torch.manual_seed(0)
    raw = torch.randn(200, 4) * torch.tensor([50.0, 3.0, 900.0, 1.0]) + torch.tensor([300.0, -2, 4000, 10])
    mu, sd = raw[:150].mean(0), raw[:150].std(0)
    train, test_raw, test_scaled = (raw[:150] - mu) / sd, raw[150:], (raw[150:] - mu) / sd
    seen = []
    model = nn.Linear(4, 2)
    model.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with _apply("preprocessing.eval-inputs-differ", "model"):
        model(train[:64])
        with torch.no_grad():
            model(test_raw)
            model(test_scaled)
    fixed = seen[1]
    assert (fixed.mean(0) - train.mean(0)).abs().max() < 0.5 and (fixed.std(0) / train.std(0) - 1).abs().max() < 0.5
    assert (fixed - test_scaled).abs().mean() < 0.3               # close to what the twin feeds
    assert seen[2] is test_scaled                                  # already on the training scale: untouched


class _ListNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = [nn.Linear(4, 8), nn.Linear(8, 8)]        # the bug: not registered
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.out(x)


def test_layers_in_a_python_list_learn_with_the_remedy():
    torch.manual_seed(0)
    net = _ListNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net.hidden[0].weight.clone()
    x = torch.randn(16, 4)
    with _apply("grad-flow.params-not-in-optimizer", "model"):
        for _ in range(3):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    assert not torch.equal(before, net.hidden[0].weight)


def test_relu_becomes_leaky_and_comes_back():
    x = -torch.ones(3, 2)
    with _apply("activation.dead-relu", "model.1"):
        assert (nn.ReLU()(x) < 0).all() and (F.relu(x) < 0).all()
    assert (nn.ReLU()(x) == 0).all() and (F.relu(x) == 0).all()


def test_log_softmax_module_before_cross_entropy_passes_the_scores():
    model = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    x = torch.randn(5, 4)
    with _apply("loss-input.log-softmax-into-cross-entropy", "model.1", input_shape=[5, 3]):
        out = model(x)
    assert torch.equal(out, model[0](x))


def _fit_bottleneck(relu: bool) -> torch.Tensor:
    """An autoencoder whose 2-unit code layer starts all negative: a ReLU after it is dead."""
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    code = nn.Linear(8, 2)
    nn.init.constant_(code.bias, -10.0)
    model = nn.Sequential(code, nn.ReLU() if relu else nn.Identity(), nn.Linear(2, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        loss = F.mse_loss(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_a_relu_with_every_unit_dead_passes_its_input_like_the_twin_without_it():
    twin, bug = _fit_bottleneck(False), _fit_bottleneck(True)
    dead = {"activation": "relu", "activation_site": "model.1", "share": 1.0, "shares": [1.0, 1.0, 1.0]}
    with _apply("activation.dead-relu", "model.0", **dead):
        fixed = _fit_bottleneck(True)
        healthy = _fit_bottleneck(False)
    with _apply("activation.dead-relu", "model.0", **{**dead, "shares": [0.5, 1.0, 1.0]}):
        leaky = _fit_bottleneck(True)                  # not every unit dead at every step: LeakyReLU
    assert torch.equal(fixed, twin) and torch.equal(healthy, twin) and not torch.equal(bug, twin)
    assert not torch.equal(leaky, twin) and not torch.equal(leaky, bug)
