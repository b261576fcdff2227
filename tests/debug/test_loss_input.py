"""loss-input checks: each bug injected in at least two coding styles, healthy variants quiet."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.loss_input import (
    KlDivInput,
    NllLossInput,
    OutputRange,
    ProbabilitiesIntoLogitLoss,
    SoftmaxDim,
)
from nndoctor.monitor import Observer

CHECKS = [ProbabilitiesIntoLogitLoss, NllLossInput, KlDivInput, SoftmaxDim, OutputRange]
N, D, C = 32, 6, 3


def _data(classes: int = C, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4 * N, D, generator=g)
    y = torch.randint(0, classes, (4 * N,), generator=g)
    return x, y


def _train(model: nn.Module, loss_of, x: torch.Tensor, y: torch.Tensor, steps: int = 6,
           adam: bool = False, opt: torch.optim.Optimizer | None = None) -> list:
    opt = opt or (torch.optim.Adam if adam else torch.optim.SGD)(model.parameters(), lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Observer(checks=CHECKS) as obs:
            for i in range(steps):
                xb, yb = x[(i * N) % len(x):][:N], y[(i * N) % len(y):][:N]
                loss = loss_of(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.findings


def _codes(findings, min_rank: int = 1) -> set[str]:
    return {f.code for f in findings if f.severity.rank >= min_rank}


def _one(findings, code):
    hits = [f for f in findings if f.code == code]
    assert hits, [(f.code, f.message) for f in findings]
    return hits[0]


class Net(nn.Module):
    """A subclass whose forward applies a final activation given as a function."""

    def __init__(self, out: int = C, final=None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(D, 16)
        self.fc2 = nn.Linear(16, out)
        self.final = final

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc2(torch.relu(self.fc1(x)))
        return self.final(z) if self.final is not None else z


# -- probabilities into a logit loss ---------------------------------------------------------------
def test_softmax_sequential_into_module_cross_entropy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C), nn.Softmax(dim=1))
    found = _train(model, nn.CrossEntropyLoss(), *_data())
    f = _one(found, "loss-input.probabilities-into-logit-loss")
    assert f.severity.value == "error" and f.location == "model.3"
    assert f.evidence["input_shape"] == (N, C) and "softmax" in f.message
    assert "remove the final softmax at model.3" in f.fixes[0]


def test_softmax_in_subclass_forward_into_functional_cross_entropy():
    torch.manual_seed(0)
    model = Net(final=lambda z: torch.softmax(z, dim=-1))
    f = _one(_train(model, F.cross_entropy, *_data(), adam=True), "loss-input.probabilities-into-logit-loss")
    assert f.location == "model"


def test_sigmoid_column_into_bce_with_logits_through_indexing():
    torch.manual_seed(0)
    x, y = _data(classes=2)
    model = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    found = _train(model, lambda out, t: nn.BCEWithLogitsLoss()(out[:, 0], t.float()), x, y)
    f = _one(found, "loss-input.probabilities-into-logit-loss")
    assert f.location == "model.3" and "sigmoid" in f.message


def test_hand_written_sigmoid_into_bce_with_logits_by_values():
    torch.manual_seed(0)
    x, y = _data(classes=2)
    model = Net(out=1, final=lambda z: 1.0 / (1.0 + torch.exp(-z)))
    found = _train(model, lambda out, t: F.binary_cross_entropy_with_logits(out.squeeze(1), t.float()), x, y)
    f = _one(found, "loss-input.probabilities-into-logit-loss")
    assert "(0, 1]" in f.evidence["how_detected"]


def test_log_softmax_into_cross_entropy_is_info_only():
    torch.manual_seed(0)
    model = Net(final=lambda z: F.log_softmax(z, dim=1))
    found = _train(model, nn.CrossEntropyLoss(), *_data())
    f = _one(found, "loss-input.log-softmax-into-cross-entropy")
    assert f.severity.value == "info" and "idempotent" in f.message.replace("changes nothing", "idempotent")
    assert not _codes(found)


def test_logsigmoid_into_bce_with_logits_is_error():
    torch.manual_seed(0)
    x, y = _data(classes=2)
    model = nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, 1), nn.LogSigmoid())
    found = _train(model, lambda out, t: F.binary_cross_entropy_with_logits(out, t.float().unsqueeze(1)), x, y)
    assert _one(found, "loss-input.log-probabilities-into-logit-loss").severity.value == "error"


def test_relu_output_into_bce_with_logits_is_error():
    torch.manual_seed(0)
    x, y = _data(classes=2)
    model = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, 1), nn.ReLU())
    found = _train(model, lambda out, t: nn.BCEWithLogitsLoss()(out.view(-1), t.float()), x, y)
    assert _one(found, "loss-input.relu-into-logit-loss").severity.value == "error"


# -- NLLLoss -----------------------------------------------------------------------------------------
def test_raw_logits_into_module_nll_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))
    f = _one(_train(model, nn.NLLLoss(), *_data()), "loss-input.logits-into-nll-loss")
    assert f.severity.value == "error" and f.evidence["input_shape"] == (N, C)
    assert "log_softmax" in f.fixes[0]


def test_raw_logits_into_functional_nll_loss_subclass():
    torch.manual_seed(0)
    found = _train(Net(), lambda out, t: F.nll_loss(out, t), *_data(), adam=True)
    assert "loss-input.logits-into-nll-loss" in _codes(found)


def test_softmax_probabilities_into_nll_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C), nn.Softmax(dim=1))
    f = _one(_train(model, nn.NLLLoss(), *_data()), "loss-input.probabilities-into-nll-loss")
    assert f.location == "model.3"


def test_log_of_batch_softmax_plus_eps_into_nll_is_not_normalised():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C), nn.Softmax(dim=0))
    found = _train(model, lambda out, t: F.nll_loss(torch.log(out + 1e-8), t), *_data())
    f = _one(found, "loss-input.logits-into-nll-loss")
    assert "do not normalise over dim 1" in f.message


def test_exp_of_log_softmax_into_cross_entropy_found_by_values():
    torch.manual_seed(0)
    model = Net(final=lambda z: torch.exp(F.log_softmax(z, dim=1)))
    f = _one(_train(model, F.cross_entropy, *_data()), "loss-input.probabilities-into-logit-loss")
    assert "sums to 1" in f.evidence["how_detected"]


def test_log_softmax_over_time_dim_into_nll():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(2, 8, batch_first=True)
            self.fc = nn.Linear(8, C)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.rnn(x.view(len(x), D // 2, 2))[0]
            return F.log_softmax(self.fc(h), dim=1)  # (N, T, C) normalised over time, not classes

    torch.manual_seed(0)
    lossf = lambda out, t: F.nll_loss(out.reshape(-1, C), t.repeat_interleave(D // 2))  # noqa: E731
    f = _one(_train(Tagger(), lossf, *_data(), adam=True), "loss-input.logits-into-nll-loss")
    assert f.location == "model" and "over dim 1 of a" in f.message


def test_double_softmax_before_nll():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C), nn.Softmax(dim=1))
    found = _train(model, lambda out, t: F.nll_loss(F.log_softmax(out, dim=1), t), *_data())
    f = _one(found, "loss-input.double-softmax")
    assert f.evidence["first"] == "model.3" and f.location.startswith("test_loss_input.py:")


def test_nll_after_log_softmax_or_log_of_softmax_is_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C), nn.LogSoftmax(dim=1))
    assert not _codes(_train(model, nn.NLLLoss(), *_data()))
    model = Net(final=lambda z: torch.log(torch.softmax(z, 1) + 1e-9))
    assert not _codes(_train(model, F.nll_loss, *_data()))


# -- kl_div (distillation) ------------------------------------------------------------------------------
def _distill(student_fn, teacher_fn, **kw):
    teacher = nn.Linear(D, C)

    def loss(out, t):
        with torch.no_grad():
            ref = teacher_fn(teacher(_data()[0][:len(out)]))
        return F.kl_div(student_fn(out), ref, reduction="batchmean", **kw)

    return loss


def test_softmax_student_into_kl_div():
    torch.manual_seed(0)
    lossf = _distill(lambda o: F.softmax(o, dim=1), lambda z: F.softmax(z, dim=1))
    f = _one(_train(Net(), lossf, *_data()), "loss-input.probabilities-into-kl-div")
    assert f.severity.value == "error" and "log_softmax" in f.fixes[0]


def test_log_softmax_teacher_without_log_target_module_style():
    torch.manual_seed(0)
    crit = nn.KLDivLoss(reduction="batchmean")
    teacher = nn.Linear(D, C)

    def loss(out, t):
        return crit(F.log_softmax(out, 1), F.log_softmax(teacher(_data()[0][:len(out)]), 1).detach())

    assert "loss-input.log-probabilities-as-kl-div-target" in _codes(_train(Net(), loss, *_data(), adam=True))


def test_healthy_distillation_is_quiet():
    torch.manual_seed(0)
    ok = _distill(lambda o: F.log_softmax(o / 2, dim=1), lambda z: F.softmax(z / 2, dim=1))
    assert not _codes(_train(Net(), ok, *_data()))
    ok_log = _distill(lambda o: F.log_softmax(o, dim=1), lambda z: F.log_softmax(z, dim=1), log_target=True)
    assert not _codes(_train(Net(), ok_log, *_data()))


# -- softmax over the wrong dimension -----------------------------------------------------------------
def test_softmax_over_single_unit_into_bce():
    torch.manual_seed(0)
    x, y = _data(classes=2)
    model = nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, 1), nn.Softmax(dim=1))
    found = _train(model, lambda out, t: nn.BCELoss()(out, t.float().unsqueeze(1)), x, y)
    f = _one(found, "loss-input.softmax-over-one-unit")
    assert f.severity.value == "error" and f.evidence["input_shape"] == (N, 1) and f.location == "model.3"


def test_cross_entropy_over_one_class():
    torch.manual_seed(0)
    x, y = _data(classes=2)
    found = _train(Net(out=1), lambda out, t: F.cross_entropy(out, t.float().unsqueeze(1)), x, y)
    f = _one(found, "loss-input.softmax-over-one-unit")
    assert "single class" in f.message and f.evidence["input_shape"] == (N, 1)


def test_softmax_over_batch_dim_sequential_into_nll():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C), nn.Softmax(dim=0))
    found = _train(model, lambda out, t: F.nll_loss(torch.log(out), t), *_data())
    f = _one(found, "loss-input.softmax-over-batch-dim")
    assert f.evidence["batch_size"] == N and f.evidence["dim"] == 0 and "dim=-1" in f.fixes[0]
    assert f.location == "model.3"  # torch.log(softmax) keeps the module where the softmax ran


def test_softmax_over_batch_dim_subclass_into_mse_one_hot():
    torch.manual_seed(0)
    model = Net(final=lambda z: F.softmax(z, dim=0))
    found = _train(model, lambda out, t: F.mse_loss(out, F.one_hot(t, C).float()), *_data(), adam=True)
    assert "loss-input.softmax-over-batch-dim" in _codes(found)


def test_attention_softmax_over_time_stays_quiet():
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.head = nn.Linear(D, D), nn.Linear(D, C)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seq = x.view(x.shape[0], 2, D // 2).repeat(1, 1, 2)  # (N, T=2, D)
            w = torch.softmax(self.q(seq) @ seq.transpose(1, 2), dim=-1)  # (N, T, T)
            return self.head((w @ seq).mean(1))

    torch.manual_seed(0)
    assert not _codes(_train(Attn(), nn.CrossEntropyLoss(), *_data()))


# -- output range --------------------------------------------------------------------------------------
def _regression(seed: int = 0, scale: float = 1.0, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4 * N, D, generator=g)
    return x, (x[:, 0] - x[:, 1]).unsqueeze(1) * scale + shift


def test_relu_output_with_negative_targets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 1), nn.ReLU())
    f = _one(_train(model, nn.MSELoss(), *_regression()), "loss-input.output-range-cannot-reach-target")
    assert f.severity.value == "warning" and f.location == "model.3"
    assert f.evidence["output_range"] == "[0, inf]" and float(f.evidence["target_min"]) < 0


def test_sigmoid_output_with_large_targets_swapped_arguments():
    torch.manual_seed(0)
    model = Net(out=1, final=torch.sigmoid)
    found = _train(model, lambda out, t: F.l1_loss(t, out), *_regression(scale=50.0, shift=100.0))
    f = _one(found, "loss-input.output-range-cannot-reach-target")
    assert f.evidence["activation"] == "sigmoid" and f.evidence["share_unreachable"] > 0.9


def test_relu_output_with_slightly_noisy_counts_is_quiet():
    torch.manual_seed(0)
    x, t = _regression()
    g = torch.Generator().manual_seed(3)
    noisy = 3 * t.abs() + 0.05 * torch.randn(t.shape, generator=g)  # a few targets just below 0
    assert (noisy < 0).any()
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 1), nn.ReLU())
    assert not _codes(_train(model, nn.MSELoss(), x, noisy))


def test_activation_covering_targets_stays_quiet():
    torch.manual_seed(0)
    x, t = _regression()
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 1), nn.Tanh())
    assert not _codes(_train(model, nn.MSELoss(), x, t.clamp(-1, 1)))
    model = Net(out=1, final=torch.sigmoid)
    assert not _codes(_train(model, nn.BCELoss(), x, (t > 0).float()))


# -- healthy ------------------------------------------------------------------------------------------
def test_healthy_classifiers_stay_quiet():
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))
    assert not _train(model, nn.CrossEntropyLoss(), x, y)
    assert not _train(Net(), F.cross_entropy, x, y, adam=True)
    x2, y2 = _data(classes=2)
    assert not _train(Net(out=1), lambda out, t: F.binary_cross_entropy_with_logits(out.squeeze(1), t.float()),
                      x2, y2, steps=10)


def test_softmax_only_at_inference_is_quiet():
    torch.manual_seed(0)
    x, y = _data()
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=CHECKS) as obs:
        for _ in range(4):
            loss = F.cross_entropy(model(x[:N]), y[:N])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                probs = F.softmax(model(x[N:]), dim=1)
                _ = (probs.argmax(1) == y[N:]).float().mean()
    assert not obs.findings and not obs.internal_errors


# -- softmax outputs against multi-hot targets --------------------------------------------------------
def _multi_hot(n: int = 4 * N, classes: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    y = (torch.rand(n, classes, generator=g) < 0.4).float()
    y[:, 0] = 1.0  # at least one label per row, often several
    return x, y


def test_softmax_sequential_mse_against_multi_hot_targets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 5), nn.Softmax(dim=1))
    found = _train(model, nn.MSELoss(), *_multi_hot())
    f = _one(found, "loss-input.softmax-multi-label-targets")
    assert f.severity.value == "warning" and f.location == "model.3"
    assert float(f.evidence["target_row_sum_max"]) > 1.5 and f.evidence["classes"] == 5
    assert "BCEWithLogitsLoss" in f.fixes[0]


def test_functional_softmax_last_dim_bce_and_l1_against_multi_hot_targets_adam():
    for final, loss in ((lambda z: F.softmax(z, dim=-1), F.binary_cross_entropy),
                        (lambda z: z.softmax(1), F.l1_loss),
                        (lambda z: torch.softmax(z, -1), lambda p, t: ((p - t) ** 2).mean() + F.mse_loss(p, t))):
        torch.manual_seed(0)
        found = _train(Net(out=5, final=final), loss, *_multi_hot(), adam=True)
        f = _one(found, "loss-input.softmax-multi-label-targets")
        assert "multi-hot" in f.message and f.evidence["dim"] == 1


def test_softmax_against_one_hot_or_soft_targets_and_sigmoid_against_multi_hot_stay_quiet():
    x, y = _data(classes=5)
    one_hot = F.one_hot(y, 5).float()
    smooth = one_hot * 0.9 + 0.1 / 5
    g = torch.Generator().manual_seed(3)
    teacher = torch.softmax(torch.randn(len(x), 5, generator=g), dim=1)
    xm, multi = _multi_hot()
    cases = [
        (nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 5), nn.Softmax(dim=1)), nn.MSELoss(), x, one_hot),
        (Net(out=5, final=lambda z: F.softmax(z, dim=-1)), F.mse_loss, x, smooth),
        (Net(out=5, final=lambda z: z.softmax(-1)), nn.L1Loss(), x, teacher),
        (Net(out=5, final=torch.sigmoid), F.binary_cross_entropy, xm, multi),
        (Net(out=5), nn.BCEWithLogitsLoss(), xm, multi),
    ]
    for model, loss, xs, ys in cases:
        found = _train(model, loss, xs, ys)
        assert not _codes(found, 2), [(f.code, f.message) for f in found]


# -- values in (0, 1] into BCE-with-logits: evidence, not chance ---------------------------------------
class _Squash(torch.autograd.Function):
    """A sigmoid written as a custom autograd Function: no op name, no known autograd node."""

    @staticmethod
    def forward(ctx, z):
        p = 1.0 / (1.0 + torch.exp(-z))
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, grad):
        (p,) = ctx.saved_tensors
        return grad * p * (1 - p)


def _conv_binary(final=None, bias=0.5):
    torch.manual_seed(0)

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 1)
            with torch.no_grad():  # an untrained head whose logits all start in (0, 1]
                self.fc.weight.mul_(0.05)
                self.fc.bias.fill_(bias)

        def forward(self, x):
            z = self.fc(torch.relu(self.conv(x)).flatten(1))
            return final(z) if final is not None else z

    return ConvNet()


def _images(n=4 * N, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3 + y.view(-1, 1, 1, 1) * 0.5
    return x, y


@pytest.mark.parametrize("adam", [False, True])
def test_untrained_logits_in_unit_interval_are_not_called_probabilities(adam):
    found = _train(_conv_binary(), lambda out, t: F.binary_cross_entropy_with_logits(out.squeeze(1), t.float()),
                   *_images(), steps=150, adam=adam)
    assert "loss-input.probabilities-into-logit-loss" not in _codes(found)


def test_hand_written_sigmoid_on_a_conv_net_is_still_an_error():
    found = _train(_conv_binary(final=lambda z: 1 / (1 + torch.exp(-z))),
                   lambda out, t: nn.BCEWithLogitsLoss()(out.squeeze(1), t.float()), *_images(), steps=8)
    f = _one(found, "loss-input.probabilities-into-logit-loss")
    assert f.severity.value == "error" and "made by exp" in f.evidence["how_detected"]


def test_squash_without_a_known_op_is_reported_only_once_it_persists():
    loss = lambda out, t: F.binary_cross_entropy_with_logits(out.squeeze(1), t.float())  # noqa: E731
    short = _train(_conv_binary(final=_Squash.apply), loss, *_images(), steps=30)
    assert "loss-input.probabilities-into-logit-loss" not in _codes(short)
    long = _train(_conv_binary(final=_Squash.apply), loss, *_images(), steps=150)
    f = _one(long, "loss-input.probabilities-into-logit-loss")
    assert f.severity.value == "warning" and "training steps" in f.evidence["how_detected"]


# -- a stalled run's raw scores that never leave (0, 1] are logits, not sigmoid outputs ------------------
class _StalledNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(D, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


def _stalled_head(model: nn.Module) -> nn.Module:
    """Last layer scaled so its raw scores start inside (0, 1] (bias 0.5, small weights)."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(0.05)
        last.bias.fill_(0.5)
    return model


@pytest.mark.parametrize("style", ["sequential-module-loss", "class-functional-loss", "conv-view"])
def test_stalled_raw_scores_in_unit_interval_are_not_called_probabilities(style):
    torch.manual_seed(0)
    x, y = _data(classes=2)
    if style == "sequential-module-loss":
        model = _stalled_head(nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, 1)))
        loss_of = lambda out, t: nn.BCEWithLogitsLoss()(out, t.float().unsqueeze(1))  # noqa: E731
    elif style == "class-functional-loss":
        model = _stalled_head(_StalledNet())
        loss_of = lambda out, t: F.binary_cross_entropy_with_logits(out.squeeze(1), t.float())  # noqa: E731
    else:
        model = _stalled_head(_conv_binary())
        x = torch.randn(len(y), 1, 8, 8)
        loss_of = lambda out, t: nn.BCEWithLogitsLoss()(out.view(-1), t.float())  # noqa: E731
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-6)  # far too low: the scores never move
    found = _train(model, loss_of, x, y, steps=130, opt=opt)
    assert "loss-input.probabilities-into-logit-loss" not in _codes(found), [(f.code, f.message) for f in found]
