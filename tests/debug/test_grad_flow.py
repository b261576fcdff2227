"""grad-flow: detached losses and branches, wrong optimizer params, missing step, frozen layers; healthy quiet."""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.grad_flow import GradFlow
from nndoctor.findings import Severity
from nndoctor.monitor import Observer

N = 16


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8 * N, 8, generator=g), torch.randint(0, 3, (8 * N,), generator=g)


X, Y = _data()


def _batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    j = (i * N) % len(X)
    return X[j:j + N], Y[j:j + N]


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[GradFlow]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _codes(findings: list) -> set[str]:
    return {f.code for f in findings}


def _one(findings: list, code: str):
    hits = [f for f in findings if f.code == code]
    assert hits, [(f.code, f.message) for f in findings]
    return hits[0]


def _loop(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 12,
          loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy) -> None:
    for i in range(steps):
        xb, yb = _batch(i)
        opt.zero_grad()
        loss_of(model(xb), yb).backward()
        opt.step()


class EncoderHead(nn.Module):
    def __init__(self, cut: str = "") -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)
        self.cut = cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        if self.cut == "detach":
            h = h.detach()
        elif self.cut == "data":
            h = h.data
        elif self.cut == "numpy":
            h = torch.from_numpy(h.detach().numpy())
        return self.head(h)


class NoGradBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.context = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            c = self.context(x)
        return self.out(torch.relu(self.body(x) + c))


# -- loss detached from every parameter ------------------------------------------------------------

def test_loss_rebuilt_from_item_is_an_error_at_the_first_step():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for i in range(6):
            xb, yb = _batch(i)
            loss = torch.tensor(F.cross_entropy(model(xb), yb).item(), requires_grad=True)
            opt.zero_grad()
            loss.backward()
            opt.step()

    f = _one(_observe(run), "grad-flow.loss-detached")
    assert f.severity is Severity.ERROR and f.first_step == 1
    assert ".item()" in f.evidence["cause"] and "requires_grad=True" in f.evidence["cause"]
    assert "opt" in f.message and f.fixes


def test_prediction_through_numpy_is_detected_in_a_subclass_with_adam():
    def run():
        model = EncoderHead()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for i in range(6):
            xb, yb = _batch(i)
            pred = torch.from_numpy(model(xb).detach().numpy()).requires_grad_()
            opt.zero_grad()
            F.cross_entropy(pred, yb).backward()
            opt.step()

    f = _one(_observe(run), "grad-flow.loss-detached")
    assert ".detach() on the output of model" in f.evidence["cause"]


def test_model_run_under_no_grad_then_loss_made_to_require_grad():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for i in range(6):
            xb, yb = _batch(i)
            with torch.no_grad():
                out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.requires_grad = True
            opt.zero_grad()
            loss.backward()
            opt.step()

    f = _one(_observe(run), "grad-flow.loss-detached")
    assert "running model under torch.no_grad()" in f.evidence["cause"]


def test_rounded_predictions_give_all_zero_gradients():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        _loop(model, torch.optim.SGD(model.parameters(), lr=0.1),
              loss_of=lambda out, y: F.mse_loss(out.round().squeeze(1), y.float()))

    f = _one(_observe(run), "grad-flow.all-gradients-zero")
    assert f.first_step == 2 and f.severity is Severity.ERROR


# -- a branch of the model never gets a gradient ---------------------------------------------------

@pytest.mark.parametrize("cut", ["detach", "data", "numpy"])
def test_detached_encoder_is_named(cut):
    def run():
        model = EncoderHead(cut)
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-3))

    f = _one(_observe(run), "grad-flow.no-gradient")
    assert f.location == "model.encoder"
    assert f.evidence["params"] == 8 * 32 + 32 + 32 * 16 + 16
    if cut != "numpy":
        assert f"{'.data' if cut == 'data' else '.detach()'}" in f.evidence["cause"]


class DataWeightLinear(nn.Module):
    """A hand-written layer that reads its weight through .data (a classic silent cut)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.data + self.bias


def test_weight_read_through_data_in_a_custom_layer():
    def run():
        model = nn.Sequential(DataWeightLinear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-3))

    f = _one(_observe(run), "grad-flow.no-gradient")
    assert f.location == "model.0" and f.evidence["params"] == 8 * 16
    assert "weights go through .data" in f.evidence["cause"]


def test_branch_under_no_grad_inside_forward():
    def run():
        net = NoGradBranch()
        _loop(net, torch.optim.SGD(net.parameters(), lr=0.05))

    f = _one(_observe(run), "grad-flow.no-gradient")
    assert f.location == "model.context" and "no_grad" in f.evidence["cause"]


# -- the optimizer and the trained parameters disagree ---------------------------------------------

def test_optimizer_over_a_copy_of_the_model():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.Adam(copy.deepcopy(model).parameters(), lr=1e-3)
        _loop(model, opt)

    f = _one(_observe(run), "grad-flow.optimizer-wrong-params")
    assert f.severity is Severity.ERROR and f.evidence["model"] == "model"


def test_head_added_after_the_optimizer_is_a_warning():
    def run():
        model = EncoderHead()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        model.head = nn.Linear(16, 3)
        _loop(model, opt)

    f = _one(_observe(run), "grad-flow.params-not-in-optimizer")
    assert f.severity is Severity.WARNING and f.location == "model.head"


def test_optimizer_over_the_encoder_only():
    def run():
        model = EncoderHead()
        _loop(model, torch.optim.Adam(model.encoder.parameters(), lr=1e-3))

    f = _one(_observe(run), "grad-flow.params-not-in-optimizer")
    assert f.location == "model.head" and f.evidence["params"] == 16 * 3 + 3


def test_separate_head_outside_the_optimizer():
    def run():
        encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        head = nn.Linear(16, 3)
        opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
        for i in range(10):
            xb, yb = _batch(i)
            opt.zero_grad()
            F.cross_entropy(head(encoder(xb)), yb).backward()
            opt.step()

    assert _one(_observe(run), "grad-flow.params-not-in-optimizer").location == "head"


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_step_never_called():
    def run():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.StepLR(opt, 5)
        for i in range(10):
            xb, yb = _batch(i)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            sched.step()

    f = _one(_observe(run), "grad-flow.step-never-called")
    assert f.severity is Severity.ERROR and f.evidence["backward_calls"] == 10


def test_lr_zero_leaves_weights_unchanged():
    def run():
        model = nn.Linear(8, 3)
        _loop(model, torch.optim.SGD(model.parameters(), lr=0.0))

    f = _one(_observe(run), "grad-flow.params-not-updated")
    assert "learning rate is 0" in f.message and f.evidence["optimizer"] == "opt"


# -- frozen layers ---------------------------------------------------------------------------------

def test_frozen_output_layer():
    def run():
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
        model[4].requires_grad_(False)
        _loop(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3))

    f = _one(_observe(run), "grad-flow.frozen-output-layer")
    assert f.location == "model.4"


def test_frozen_layer_in_the_middle():
    def run():
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                              nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
        for p in model[2].parameters():
            p.requires_grad = False
        _loop(model, torch.optim.SGD(model.parameters(), lr=0.05))

    f = _one(_observe(run), "grad-flow.frozen-middle-layers")
    assert f.evidence["layer_list"] == ["model.2"]


# -- an optimizer holding only frozen parameters ------------------------------------------------------

def test_whole_model_frozen_in_a_loop_with_inputs_requiring_grad():
    def run():
        model = EncoderHead()
        for p in model.parameters():
            p.requires_grad = False
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for i in range(8):
            xb, yb = _batch(i)
            opt.zero_grad()
            F.cross_entropy(model(xb.clone().requires_grad_(True)), yb).backward()
            opt.step()

    found = _observe(run)
    f = _one(found, "grad-flow.optimizer-frozen-params")
    assert f.severity is Severity.ERROR and f.evidence["optimizer"] == "opt"
    assert "requires_grad=False" in f.message and not f.evidence["trained_outside_optimizer"]
    assert _codes(found) == {"grad-flow.optimizer-frozen-params"}


def test_optimizer_built_over_the_frozen_backbone_instead_of_the_head():
    def run():
        backbone = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
        head = nn.Linear(16, 3)
        model = nn.Sequential(backbone, head)
        backbone.requires_grad_(False)
        _loop(model, torch.optim.SGD(backbone.parameters(), lr=0.05, momentum=0.9))

    found = _observe(run)
    f = _one(found, "grad-flow.optimizer-frozen-params")
    assert f.evidence["trained_outside_optimizer"] == ["model.1"] and f.evidence["module_list"] == ["model.0"]
    assert "head" in f.fixes[0]


def test_frozen_backbone_with_its_own_idle_optimizer_is_only_a_warning():
    # a second optimizer trains the head: the frozen one is wasted, not the whole run
    def run():
        model = EncoderHead()
        model.encoder.requires_grad_(False)
        opt_enc = torch.optim.SGD(model.encoder.parameters(), lr=0.01)
        opt_head = torch.optim.Adam(model.head.parameters(), lr=1e-3)
        for i in range(8):
            xb, yb = _batch(i)
            opt_enc.zero_grad()
            opt_head.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt_enc.step()
            opt_head.step()

    f = _one(_observe(run), "grad-flow.optimizer-frozen-params")
    assert f.severity is Severity.WARNING and f.location == "opt_enc"


def test_frozen_backbone_and_trainable_head_in_one_optimizer_is_quiet():
    def run():
        model = EncoderHead()
        for p in model.encoder.parameters():
            p.requires_grad = False
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-3))

    assert "grad-flow.optimizer-frozen-params" not in _codes(_observe(run))


def test_discriminator_frozen_only_while_the_generator_steps_is_quiet():
    def run():
        gen, disc = nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
        for i in range(10):
            xb, _ = _batch(i)
            disc.requires_grad_(True)
            opt_d.zero_grad()
            (disc(xb).mean() - disc(gen(xb).detach()).mean()).backward()
            opt_d.step()
            disc.requires_grad_(False)
            opt_g.zero_grad()
            disc(gen(xb)).mean().backward()
            opt_g.step()

    assert "grad-flow.optimizer-frozen-params" not in _codes(_observe(run))


def _gan_generator_never_learns(style: str) -> None:
    """The generator's output is detached once and reused for the generator's own loss (or its
    loss is built on a detached sample): opt_g steps every iteration, but no gradient reaches G."""
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
    D = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)
    for _ in range(12):
        if style == "detach-reused":
            fake = G(torch.randn(N, 4)).detach()
            fake_for_g = fake
        elif style == "detach-in-g-loss":  # the D step's .detach() copied into the G step
            fake = G(torch.randn(N, 4))
            fake_for_g = fake.detach()
        else:  # "data": a tensor rebuilt from the sample's values
            fake = G(torch.randn(N, 4))
            fake_for_g = fake.data
            fake = fake.detach()
        opt_d.zero_grad()
        (F.binary_cross_entropy_with_logits(D(X[:N]), ones)
         + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)).backward()
        opt_d.step()
        opt_g.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake_for_g), ones).backward()
        opt_g.step()


@pytest.mark.parametrize("style", ["detach-reused", "detach-in-g-loss", "data"])
def test_generator_whose_every_parameter_never_gets_a_gradient(style):
    f = _one(_observe(lambda: _gan_generator_never_learns(style)), "grad-flow.no-gradient")
    assert f.severity is Severity.WARNING and f.location == "G"
    assert f.evidence["all_of_optimizer"] is True and f.evidence["optimizer"] == "opt_g"
    assert "opt_g.step() never trains them" in f.message


def test_second_task_optimizer_stepping_a_head_that_is_trained_is_quiet():
    """Two optimizers, each over its own part, both getting gradients: quiet (the rule needs an
    optimizer none of whose parameters ever gets one)."""
    def run():
        enc, head = nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Linear(16, 3)
        opt_e, opt_h = torch.optim.Adam(enc.parameters(), 1e-3), torch.optim.SGD(head.parameters(), 0.1)
        for i in range(12):
            xb, yb = _batch(i)
            opt_e.zero_grad()
            opt_h.zero_grad()
            F.cross_entropy(head(enc(xb)), yb).backward()
            opt_e.step()
            opt_h.step()

    assert "grad-flow.no-gradient" not in _codes(_observe(run))


# -- healthy variants stay quiet -------------------------------------------------------------------

class LoRALinear(nn.Module):
    def __init__(self, d: int, r: int = 2) -> None:
        super().__init__()
        self.base = nn.Linear(d, d)
        self.down = nn.Linear(d, r, bias=False)
        self.up = nn.Linear(r, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.up(self.down(x))


def _healthy_plain():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    _loop(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), steps=20)


def _healthy_frozen_backbone():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    for layer in model[:4]:
        layer.requires_grad_(False)
    _loop(model, torch.optim.Adam(model[4].parameters(), lr=1e-3))


def _healthy_lora():
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), LoRALinear(64), nn.ReLU(), LoRALinear(64), nn.ReLU(),
                          nn.Linear(64, 3))
    for name, p in model.named_parameters():
        p.requires_grad = ".down." in name or ".up." in name
    _loop(model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3))


def _healthy_gan_toggle():
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
    D = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)
    for _ in range(12):
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


def _healthy_accumulation():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(24):
        xb, yb = _batch(i)
        (F.cross_entropy(model(xb), yb) / 4).backward()
        if (i + 1) % 4 == 0:
            opt.step()
            opt.zero_grad()


def _healthy_manual_sgd():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    for i in range(12):
        xb, yb = _batch(i)
        model.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad


def _healthy_target_network():
    q = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=1e-3)
    for i in range(12):
        xb, yb = _batch(i)
        with torch.no_grad():
            q(xb[:1]).argmax()
        td = yb.float() + 0.9 * target(xb).max(1).values.detach()
        opt.zero_grad()
        F.smooth_l1_loss(q(xb).gather(1, yb[:, None]).squeeze(1), td).backward()
        opt.step()
        if i % 4 == 0:
            target.load_state_dict(q.state_dict())


def _healthy_alternating_heads():
    trunk, heads = nn.Linear(8, 16), nn.ModuleList([nn.Linear(16, 3), nn.Linear(16, 2)])
    opts = [torch.optim.SGD([*trunk.parameters(), *heads[0].parameters()], lr=0.1),
            torch.optim.SGD(heads[1].parameters(), lr=0.1)]
    for i in range(12):
        xb, yb = _batch(i)
        k = i % 2
        for o in opts:
            o.zero_grad()
        F.cross_entropy(heads[k](torch.relu(trunk(xb))), yb % (3 - k)).backward()
        for o in opts:
            o.step()


def _healthy_warmup_from_zero():
    model = nn.Linear(8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 5))
    for i in range(12):
        xb, yb = _batch(i)
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        sched.step()


def _healthy_lbfgs():
    model = nn.Linear(8, 3)
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)


@pytest.mark.parametrize("fn", [_healthy_plain, _healthy_frozen_backbone, _healthy_lora, _healthy_gan_toggle,
                                _healthy_accumulation, _healthy_manual_sgd, _healthy_target_network,
                                _healthy_alternating_heads, _healthy_warmup_from_zero, _healthy_lbfgs],
                         ids=lambda f: f.__name__[9:])
def test_healthy_training_is_quiet(fn):
    assert _observe(fn) == []


def _pretrained(model: nn.Module, steps: int = 60) -> nn.Module:
    """The model after some training (outside any observer): its weights are no longer a random init."""
    donor = copy.deepcopy(model)
    opt = torch.optim.Adam(donor.parameters(), lr=2e-2)
    for i in range(steps):
        xb, yb = _batch(i)
        opt.zero_grad()
        F.cross_entropy(donor(xb), yb).backward()
        opt.step()
    model.load_state_dict(donor.state_dict())
    return model


def test_feature_extractor_outside_the_optimizer_is_only_advice():
    model = _pretrained(nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)))

    def run():
        _loop(model, torch.optim.Adam(model[2].parameters(), lr=1e-3))

    torch.manual_seed(0)
    with Observer(checks=[GradFlow]) as obs:
        run()
    hits = [f for f in obs.findings if f.code == "grad-flow.params-not-in-optimizer"]
    assert hits and all(f.severity is Severity.INFO for f in hits)


def _head_only_sequential() -> None:
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    _loop(model, torch.optim.Adam(model[2].parameters(), lr=1e-3))


def _head_only_subclass() -> None:
    model = EncoderHead()
    _loop(model, torch.optim.SGD(model.head.parameters(), lr=0.05, momentum=0.9))


def _head_only_separate_modules() -> None:
    encoder = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh())
    head = nn.Linear(16, 3)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2)
    for i in range(12):
        xb, yb = _batch(i)
        loss = F.cross_entropy(head(encoder(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("run", [_head_only_sequential, _head_only_subclass, _head_only_separate_modules],
                         ids=lambda f: f.__name__[11:])
def test_a_randomly_initialised_body_outside_the_optimizer_is_a_warning(run):
    f = _one(_observe(run), "grad-flow.params-not-in-optimizer")
    assert f.severity is Severity.WARNING and f.evidence.get("random_init") is True
    assert "encoder" in f.location or f.location == "model.0"


def test_a_pretrained_body_outside_the_optimizer_frozen_or_not_stays_quiet():
    pretrained = _pretrained(EncoderHead())                  # trained and loaded before the run

    def loaded_not_frozen():
        _loop(pretrained, torch.optim.SGD(pretrained.head.parameters(), lr=0.05))

    def random_but_frozen():
        model = EncoderHead()
        model.encoder.requires_grad_(False)
        _loop(model, torch.optim.SGD(model.head.parameters(), lr=0.05))

    def random_under_no_grad():
        encoder, head = nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Linear(16, 3)
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        for i in range(12):
            xb, yb = _batch(i)
            with torch.no_grad():
                h = encoder(xb)
            opt.zero_grad()
            F.cross_entropy(head(h), yb).backward()
            opt.step()

    for run in (loaded_not_frozen, random_but_frozen, random_under_no_grad):
        assert _observe(run) == [], run.__name__


def test_user_results_are_unchanged():
    def train() -> torch.Tensor:
        torch.manual_seed(0)
        model = EncoderHead("detach")
        _loop(model, torch.optim.Adam(model.parameters(), lr=1e-3))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain = train()
    with Observer(checks=[GradFlow]):
        observed = train()
    assert torch.equal(plain, observed)


@pytest.mark.parametrize("style", ["kl-distillation", "frozen-features-no-grad"])
def test_a_network_trained_before_the_watch_then_only_run_under_no_grad_is_quiet(style):
    # a teacher / backbone trained in an earlier notebook cell keeps the .grad of its own training (that
    # optimizer is gone): under the watch it receives no gradient. A layer that does receive gradients
    # outside every optimizer is still caught: test_head_added_after_the_optimizer_is_a_warning,
    # test_separate_head_outside_the_optimizer, test_optimizer_over_the_encoder_only
    torch.manual_seed(0)
    first = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3 if style == "kl-distillation" else 16))
    opt = torch.optim.Adam(first.parameters(), lr=1e-3)
    for i in range(6):
        xb, yb = _batch(i)
        out = first(xb) if style == "kl-distillation" else first(xb)[:, :3]
        opt.zero_grad()
        F.cross_entropy(out, yb).backward()
        opt.step()
    del opt

    def run():
        second = nn.Sequential(nn.Linear(8 if style == "kl-distillation" else 16, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.SGD(second.parameters(), lr=0.05, momentum=0.9)
        for i in range(12):
            xb, yb = _batch(i)
            with torch.no_grad():
                t = first(xb)
            if style == "kl-distillation":
                loss = F.kl_div(F.log_softmax(second(xb) / 4, 1), F.softmax(t / 4, 1), reduction="batchmean")
            else:
                loss = F.cross_entropy(second(t), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    with Observer(checks=[GradFlow]) as obs:
        run()
    assert not [f for f in obs.findings if f.code == "grad-flow.params-not-in-optimizer"], \
        [(f.code, f.message) for f in obs.findings]


@pytest.mark.parametrize("style", ["triplet-module", "ranking-functional"])
def test_a_margin_loss_every_example_meets_is_quiet(style):
    # exactly 0 with zero gradients once examples are apart by the margin: converged, not broken; rounded
    # predictions (zero gradients, loss not 0) are still caught: test_rounded_predictions_give_all_zero_gradients
    def run():
        net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        crit = nn.TripletMarginLoss(margin=0.5)
        for i in range(40):
            xb, yb = _batch(i)
            a, p, n = net(xb), net(xb + 0.01), net(-xb + 3.0)  # negatives far away: the margin is met soon
            if style == "triplet-module":
                loss = crit(a, p, n)
            else:
                loss = F.margin_ranking_loss((a - n).norm(dim=1), (a - p).norm(dim=1), torch.ones(len(a)), margin=0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() == 0.0

    torch.manual_seed(0)
    with Observer(checks=[GradFlow]) as obs:
        run()
    assert not [f for f in obs.findings if f.code == "grad-flow.all-gradients-zero"], \
        [(f.code, f.message) for f in obs.findings]


def test_a_margin_loss_met_on_the_sampled_steps_but_not_just_before_them_is_quiet():
    # most batches meet the margin (loss exactly 0, zero gradients), every other one has a triplet
    # left to push apart; the zero-gradient steps examined are sampled ones (every 50th), so the loss
    # just before them is above 0 while the loss at them is 0 (the zoo's triplet recipe, seed 5142)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    anchors = 0.1 * torch.randn(16, 4)
    with Observer(checks=[GradFlow]) as obs:
        for i in range(160):
            far = 0.0 if i % 2 else 10.0  # odd steps: the negatives sit on the anchors
            loss = F.triplet_margin_loss(net(anchors), net(anchors + 0.01), net(anchors + far), margin=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.report().by_code("grad-flow.all-gradients-zero"), [(f.code, f.message) for f in obs.findings]


def test_rounded_predictions_with_a_margin_loss_nearby_are_still_caught():
    # zero gradients at a loss that is not 0 (an argmax in the forward) are the bug, margin loss or not
    torch.manual_seed(0)
    net = nn.Linear(4, 4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    with Observer(checks=[GradFlow]) as obs:
        for _ in range(60):
            emb = net(x).round()  # rounding: zero gradients everywhere
            loss = F.triplet_margin_loss(emb, emb + 0.5, emb, margin=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert obs.report().by_code("grad-flow.all-gradients-zero")


class WithEmptyParameter(nn.Module):
    """A layer holding a parameter with no element (as FSDP1 with ``use_orig_params=True`` leaves the
    original parameters whose shard lies on another rank): it never gets a gradient here."""

    def __init__(self, n_out: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(8, n_out)
        self.unused_here = nn.Parameter(torch.empty(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_a_parameter_with_no_element_is_not_a_parameter_without_gradient():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), WithEmptyParameter())
    assert not _observe(lambda: _loop(model, torch.optim.SGD(model.parameters(), lr=0.1)))
    # beside an empty parameter, real parameters cut from the loss are still named
    detached = nn.Sequential(WithEmptyParameter(8), nn.ReLU(), EncoderHead("detach"))
    found = _observe(lambda: _loop(detached, torch.optim.SGD(detached.parameters(), lr=0.1)))
    assert _one(found, "grad-flow.no-gradient").evidence["params"] > 0
