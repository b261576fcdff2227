"""Each runtime remedy, applied in-process to a tiny loop that has its bug, and removed cleanly."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.remedies import REMEDIES, remedy_for


def _blobs(n: int = 96, d: int = 6, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, classes, (n,), generator=g)
    return torch.randn(classes, d, generator=g)[y] * 2 + torch.randn(n, d, generator=g), y


def test_every_remedy_answers_codes_and_says_what_it_changes():
    for r in REMEDIES:
        assert r.codes and r.name
        f = {"code": r.codes[0], "location": "model", "evidence": {"suggest_low": "1e-3", "suggest_high": "1e-2"}}
        assert r.describe(f) and r.edit(f)
    assert remedy_for({"code": "fit.overfitting"}) is None


def test_softmax_module_before_cross_entropy_passes_logits_then_comes_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=1))
    x, _ = _blobs()
    with _apply("loss-input.probabilities-into-logit-loss", "model.3", activation="softmax", input_shape=[96, 3]):
        out = model(x)
        assert not torch.allclose(out.sum(1), torch.ones(96))  # logits, not probabilities
    assert torch.allclose(model(x).sum(1), torch.ones(96))     # the remedy is gone with its stack


def test_functional_softmax_in_forward_passes_logits_but_attention_keeps_its_softmax():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, w = self.attn(x, x, x)
            self.weights = w
            return F.softmax(self.fc(h.mean(1)), dim=1)

    torch.manual_seed(0)
    net, x = Net(), torch.randn(4, 5, 8)
    with _apply("loss-input.probabilities-into-logit-loss", "model", activation="softmax", input_shape=[4, 3]):
        out = net(x)
        assert not torch.allclose(out.sum(1), torch.ones(4))
        assert torch.allclose(net.weights.sum(-1), torch.ones(4, 5), atol=1e-5)  # attention untouched
    assert F.softmax is not None and torch.allclose(net(x).sum(1), torch.ones(4))


def test_raw_pixels_are_standardised_with_the_measured_statistics():
    seen = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            seen.append(x)
            return self.scale * x.sum(1)

    x = torch.randint(0, 17, (32, 64)).float()
    with _apply("preprocessing.unnormalised-pixels", "model", divisor=16, norm_mean=0.3, norm_std=0.37):
        Probe()(x)
    assert torch.allclose(seen[0], (x / 16 - 0.3) / 0.37)


def test_unnormalised_features_standardised_with_first_batch_statistics():
    seen = []
    lin = nn.Linear(3, 1)
    lin.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    x = torch.randn(64, 3) * torch.tensor([1.0, 100.0, 1e4]) + 500
    with _apply("preprocessing.unnormalised-features", "model"):
        lin(x)
        lin(x[:8])
    assert seen[0].mean(0).abs().max() < 1e-4 and (seen[0].std(0) - 1).abs().max() < 1e-3
    assert torch.allclose(seen[1], seen[0][:8], atol=1e-5)  # later batches use the same statistics


def test_gradients_cleared_after_each_step():
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with _apply("zero-grad.not-cleared", "optimizer", optimizer="opt"):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        assert all(p.grad is None for p in model.parameters())


def test_training_in_eval_mode_trains_in_train_mode_and_eval_stays_eval():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    model.eval()
    modes = []
    model[1].register_forward_pre_hook(lambda m, a: modes.append(m.training))
    with _apply("train-mode.training-in-eval-mode", "model", model="model"):
        model(torch.randn(2, 4))
        with torch.no_grad():
            model.eval()
            model(torch.randn(2, 4))
    assert modes == [True, False]


def test_evaluation_in_train_mode_runs_in_eval_mode_then_back():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    modes = []
    model[1].register_forward_pre_hook(lambda m, a: modes.append(m.training))
    with _apply("train-mode.eval-in-train-mode", "model"):
        with torch.no_grad():
            model(torch.randn(2, 4))
        assert model.training
        model(torch.randn(2, 4))
    assert modes == [False, True]


def test_float64_inputs_into_a_float32_model_run_in_float32():
    model = nn.Linear(4, 1)
    with _apply("dtype.float64-model", "model"):
        out = model(torch.randn(3, 4, dtype=torch.float64))
    assert out.dtype == torch.float32


def test_broadcast_target_is_reshaped_in_the_loss():
    pred, target = torch.randn(8, 1), torch.randn(8)
    right = F.mse_loss(pred, target[:, None])
    original = F.mse_loss
    with _apply("shape.broadcast-in-loss", "model"):
        assert torch.allclose(F.mse_loss(pred, target), right)
        assert torch.allclose(nn.MSELoss()(pred, target), right)
    assert F.mse_loss is original


def test_learning_rate_set_on_optimizers_created_after():
    with _apply("lr.too-high", "optimizer", lr=1.0, suggest_low="1e-3", suggest_high="1e-1"):
        opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.StepLR(opt, 10)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2) and sched.base_lrs == [pytest.approx(1e-2)]
    assert torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0).param_groups[0]["lr"] == 1.0


def test_lr_from_the_measured_update_ratio_never_overshoots_and_leaves_a_healthy_rate_alone():
    from nndoctor.fix.remedies import suggested_lr

    low = {"code": "lr.too-low", "evidence": {"lr": "1e-05", "update_ratio_median": 1e-7,
                                             "suggest_low": "1e-4", "suggest_high": "1e-3"}}
    assert suggested_lr(low) == pytest.approx(0.1)             # 1e-2 / 1e-7 = 1e5x, kept to 10,000x
    high = {"code": "lr.too-high", "evidence": {"lr": "5", "update_ratio_median": 0.08}}
    assert suggested_lr(high) == pytest.approx(5 * 1e-3 / 0.08)  # within lr/1000..lr/10
    mild = {"code": "lr.too-low", "evidence": {"lr": "1e-3", "update_ratio_median": 5e-4}}
    assert suggested_lr(mild) == pytest.approx(2e-2)            # to the top of the band (1e-2 / 5e-4 = 20x)
    tiny = {"code": "lr.too-low", "evidence": {"lr": "1e-3", "update_ratio_median": 5e-3}}
    assert suggested_lr(tiny) == pytest.approx(1e-2)            # at least 10x in the finding's direction

    def run(lr: float) -> float:
        torch.manual_seed(0)
        x = torch.randn(128, 6)
        y = x @ torch.randn(6, 1)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        for _ in range(60):
            loss = F.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.detach())

    twin, bug = run(0.05), run(1e-5)
    with _apply("lr.too-low", "optimizer", lr="1e-05", update_ratio_median=5e-6):
        fixed, healthy = run(1e-5), run(0.05)    # 1e-5 -> 2e-2; the twin's 0.05 is above it: kept
    assert healthy == twin and bug - fixed > 0.5 * (bug - twin)


def test_lr_remedy_without_a_suggestion_refuses_to_install():
    with pytest.raises(ValueError, match="suggested"):
        _apply("lr.too-low", "optimizer")


def test_gradients_clipped_before_the_step():
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with _apply("grad.exploding-gradients", "model"):
        (model(torch.randn(8, 4) * 1e4).pow(2).mean()).backward()
        opt.step()
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert total <= 1.0 + 1e-5


def test_constant_init_is_reset_before_the_first_step():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with _apply("init.constant-weights", "model.0"):
        model(torch.randn(4, 4)).sum().backward()
        opt.step()
    assert model[0].weight.std() > 0.05


def test_reinit_keeps_a_healthy_he_or_glorot_init_and_resets_only_the_bad_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1),
                          nn.LayerNorm(1))
    nn.init.kaiming_uniform_(model[0].weight, nonlinearity="relu")      # healthy He init
    nn.init.xavier_normal_(model[2].weight)                               # healthy Glorot init
    nn.init.zeros_(model[4].weight)                                       # the bug
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with _apply("init.constant-weights", "model.4"):
        model(torch.randn(4, 16)).sum().backward()
        opt.step()
    assert torch.equal(model[0].weight, kept["0.weight"]) and torch.equal(model[2].weight, kept["2.weight"])
    assert torch.equal(model[5].weight, kept["5.weight"]) and model[4].weight.std() > 0.01
    # badly scaled (std 1 on fan-in 16, 7x the default): reset only for init.activation-scale
    big = nn.Linear(16, 16)
    nn.init.normal_(big.weight, std=1.0)
    w = big.weight.clone()
    for code, reset in (("init.constant-weights", False), ("init.activation-scale", True)):
        big.weight.data.copy_(w)
        opt = torch.optim.SGD(big.parameters(), lr=0.0)
        with _apply(code, "big"):
            big(torch.randn(2, 16)).sum().backward()
            opt.step()
        assert torch.equal(big.weight, w) != reset


def test_all_positive_init_is_reset_before_the_first_gradient_and_trains_like_the_default():
    def run(bad: bool) -> float:
        torch.manual_seed(0)
        x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        if bad:
            for m in model:
                if isinstance(m, nn.Linear):
                    nn.init.uniform_(m.weight)          # [0, 1): all positive, 4x the default scale
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for _ in range(30):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.detach())

    twin, bug = run(False), run(True)
    with _apply("init.activation-scale", "model.0"):
        fixed, healthy = run(True), run(False)
    assert healthy == twin and bug > twin + 1 and abs(fixed - twin) < 0.2


def test_frozen_output_layer_learns_and_joins_the_optimizer():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    for p in model[2].parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    before = model[2].weight.clone()
    with _apply("grad-flow.frozen-output-layer", "model.2"):
        for _ in range(2):
            opt.zero_grad()
            model(torch.randn(8, 4)).pow(2).mean().backward()
            opt.step()
    assert not torch.equal(before, model[2].weight)


def test_weight_decay_and_dropout_lowered():
    with _apply("regularization.weight-decay-too-strong", "optimizer", suggested=1e-4):
        opt = torch.optim.AdamW(nn.Linear(2, 1).parameters(), weight_decay=0.5)
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(1e-4)
    drop = nn.Dropout(0.9)
    with _apply("regularization.dropout-too-strong", "model.1"):
        drop(torch.ones(4))
    assert drop.p == 0.2


def test_log_softmax_added_before_nll_loss():
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    with _apply("loss-input.logits-into-nll-loss", "model"):
        got = F.nll_loss(logits, y)
    assert torch.allclose(got, F.cross_entropy(logits, y))


def test_imbalanced_classes_get_an_inverse_frequency_weighted_loss():
    logits, y = torch.randn(8, 3), torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])
    w = torch.tensor([100 / (3 * 90), 100 / (3 * 5), 100 / (3 * 5)])
    with _apply("data.class-imbalance", "", counts={"0": 90, "1": 5, "2": 5}):
        got = nn.CrossEntropyLoss()(logits, y)
    assert torch.allclose(got, F.cross_entropy(logits, y, weight=w))
    z, t = torch.randn(6), torch.tensor([0.0, 0, 0, 0, 1, 1])
    with _apply("data.class-imbalance", "", counts={"0": 90, "1": 10}):
        got = F.binary_cross_entropy_with_logits(z, t)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(z, t, pos_weight=torch.tensor(9.0)))


def test_probabilities_into_nll_get_their_log():
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    with _apply("loss-input.probabilities-into-nll-loss", "model"):
        got = F.nll_loss(F.softmax(logits, dim=1), y)
    assert torch.allclose(got, F.cross_entropy(logits, y), atol=1e-6)


def test_relu_before_cross_entropy_passes_the_scores():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = torch.randn(16, 4)
    with _apply("loss-input.relu-into-logit-loss", "model.1", input_shape=[16, 3]):
        out = model(x)
    assert (out < 0).any() and torch.equal(out, model[0](x))


def test_nan_inputs_replaced_and_a_loss_module_is_never_treated_as_the_model():
    model, loss_fn = nn.Linear(3, 1), nn.BCEWithLogitsLoss()
    x = torch.tensor([[1.0, float("nan"), 2.0]] * 4)
    with _apply("preprocessing.nan-in-inputs", "model"):
        out = model(x)
        assert torch.isfinite(out).all()
    with _apply("preprocessing.unnormalised-features", "model"):
        pred = model(torch.randn(40, 3) * 100)
        loss = loss_fn(pred.squeeze(1), torch.ones(40))  # the loss module's input stays as it is
    assert torch.isfinite(loss)



class _RowNorm(nn.Module):
    def __init__(self, eps: float = 0.0) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, sd = x.mean(1, keepdim=True), x.std(1, keepdim=True)
        return (x - mu) / (sd + self.eps) if self.eps else (x - mu) / sd   # the bug: 0/0 on all-zero rows


def _fit_rownorm(eps: float) -> list[float]:
    torch.manual_seed(0)
    x = torch.randn(48, 6) + (torch.arange(48) % 2)[:, None] * torch.linspace(-1, 1, 6)
    x[::8] = 0.0                                   # missing records: all-zero rows
    y = torch.arange(48) % 2
    model = nn.Sequential(_RowNorm(eps), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_nan_made_inside_the_model_is_cleaned_at_the_first_layer_like_the_twin():
    twin, bug = _fit_rownorm(1e-5), _fit_rownorm(0.0)
    with _apply("numerics.nonfinite-input", "inputs", where="mat1 of AddmmBackward0 in model.1"):
        fixed = _fit_rownorm(0.0)
        healthy = _fit_rownorm(1e-5)
    assert all(v != v for v in bug[-3:]) and healthy == twin
    assert torch.allclose(torch.tensor(fixed), torch.tensor(twin), atol=1e-3)


def test_zero_grad_between_backward_and_step_is_moved_after_the_step():
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.clone()
    with _apply("zero-grad.cleared-before-step", "optimizer", optimizer="opt"):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.zero_grad()                 # the bug: clears the gradients the step needs
        opt.step()
        assert all(p.grad is None for p in model.parameters())  # cleared after the step instead
    assert not torch.equal(before, model.weight)
    model(torch.randn(8, 4)).pow(2).mean().backward()
    opt.zero_grad()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # zero_grad is back


def test_nll_remedies_leave_log_probabilities_alone():
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    logp = F.log_softmax(logits, dim=1)
    for code in ("loss-input.probabilities-into-nll-loss", "loss-input.logits-into-nll-loss"):
        with _apply(code, "model"):
            got = F.nll_loss(logp, y)
        assert torch.equal(got, F.nll_loss(logp, y))
