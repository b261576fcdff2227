"""fit: overfitting from the script's own validation losses, underfitting near a constant predictor."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs, mlp, train

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit, train_between
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.curves import ConstantBaseline

CHECKS = [Fit, LossCurve, LearningRate]


def _overfit_setup(seed=0):
    # few noisy training points, a wide net, many epochs
    X, y = blobs(n=1200, spread=0.5, seed=seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    return model, X[:96], y[:96], X[200:], y[200:]


def test_validation_loss_rising_is_overfitting_module_loss():
    model, Xt, yt, Xv, yv = _overfit_setup()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, Xt, yt, 300, batch=32, functional=False, eval_every=3, X_val=Xv, y_val=yv)
    (f,) = obs.report().by_code("fit.overfitting")
    ev = f.evidence
    assert ev["last_val_loss"] > 1.1 * ev["best_val_loss"]
    assert ev["train_loss_last"] < ev["train_loss_at_best"]
    assert "data" in f.fixes[0]


def test_overfitting_with_functional_sum_reduction_eval_loop():
    model, Xt, yt, Xv, yv = _overfit_setup(seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        for _epoch in range(100):
            for i in range(0, 96, 32):
                loss = F.cross_entropy(model(Xt[i:i + 32]), yt[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                total = sum(F.cross_entropy(model(Xv[j:j + 250]), yv[j:j + 250], reduction="sum").item()
                            for j in range(0, 1000, 250))
            del total
    (f,) = obs.report().by_code("fit.overfitting")
    # sum-reduced evaluation losses are brought to the per-example scale of the training loss
    assert f.evidence["best_val_loss"] < 3.0


def test_healthy_run_with_validation_is_quiet():
    X, y = blobs(n=3000, spread=1.0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, X[:2400], y[:2400], 300, eval_every=25, X_val=X[2400:], y_val=y[2400:])
    assert len(obs.state.eval_losses) >= 10  # evaluation losses are caught on unsampled steps too
    assert not torch._C._is_torch_function_mode_enabled()
    assert not obs.report().at_least("warning"), [(f.code, f.message) for f in obs.findings]


def test_linear_model_on_nonlinear_target_underfits():
    torch.manual_seed(0)
    x = torch.linspace(-3, 3, 2048).unsqueeze(1)
    y = torch.sin(3 * x)
    perm = torch.randperm(2048)
    x, y = x[perm], y[perm]
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for i in range(300):
            j = (i * 32) % 2016
            loss = F.mse_loss(model(x[j:j + 32]), y[j:j + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    (f,) = obs.report().by_code("fit.underfitting")
    assert f.evidence["train_loss"] >= 0.7 * f.evidence["constant_prediction_loss"]
    assert "bigger model" in f.fixes[0]
    assert not obs.report().by_code("lr.too-high")


def test_a_run_whose_losses_mostly_went_non_finite_is_judged_without_an_internal_error():
    """Over 100 losses, none finite: the underfitting judgement has nothing to stand on."""
    torch.manual_seed(0)
    x, y = torch.randn(512, 4), torch.randn(512, 1)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Observer(checks=CHECKS) as obs:
        for i in range(160):
            j = (i * 32) % 480
            loss = F.mse_loss(model(x[j:j + 32]), y[j:j + 32])
            if i == 0:
                loss = loss * float("nan")  # the weights go NaN at once, and every loss with them
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert len(obs.state.losses) >= 100
    report = obs.report()
    assert not report.internal_errors, report.internal_errors
    assert not report.by_code("fit.underfitting")


def _bce_autoencoder(pixels, hidden, steps=400):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=CHECKS) as obs:
        for i in range(steps):
            xb = pixels[(i * 64) % 960:(i * 64) % 960 + 64]
            loss = F.binary_cross_entropy_with_logits(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


def test_bce_on_soft_targets_converged_at_their_entropy_is_not_underfitting():
    # an autoencoder's pixels in (0, 1): BCE's floor is their binary entropy (~0.61 here), far above 0,
    # so a loss near 0.61 against a constant-prediction 0.69 is a model that explains nearly all of it
    g = torch.Generator().manual_seed(0)
    pixels = torch.sigmoid(0.5 * torch.randn(1024, 4, generator=g) @ torch.randn(4, 16, generator=g))
    obs = _bce_autoencoder(pixels, hidden=32)
    assert not obs.report().by_code("fit.underfitting"), [f.message for f in obs.findings]
    # the floor is the targets' own entropy: none for hard 0/1 targets (whose underfitting is still
    # judged against the constant prediction alone: test_linear_model_on_nonlinear_target_underfits)
    soft, hard = ConstantBaseline(), ConstantBaseline()
    soft.add("binary_cross_entropy", pixels, None)
    hard.add("binary_cross_entropy_with_logits", (pixels > 0.5).float(), None)
    p = pixels.double()
    assert soft.floor() == pytest.approx(float(-(p * p.log() + (1 - p) * (1 - p).log()).mean()), rel=1e-6)
    assert hard.floor() < 1e-9 and hard.value() > 0.5


def test_well_fitting_model_is_not_underfitting():
    X, y = blobs(n=3000, spread=1.0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=CHECKS) as obs:
        train(model, opt, X, y, 400)
    assert not obs.report().by_code("fit.underfitting")


def test_train_between_spans():
    import numpy as np

    s = np.array([1, 2, 3, 4, 5, 6])
    v = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    assert train_between(s, v, [2, 5]) == [5.5, 3.0]


# ---------------------------------------------------------------- language models: no verdict from a ratio
def _zipf(vocab: int) -> torch.Tensor:
    p = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    return p / p.sum()


def _markov_stream(vocab: int, n: int, seed: int = 0) -> torch.Tensor:
    """Zipf-distributed tokens where each token prefers a few successors (context to learn)."""
    g = torch.Generator().manual_seed(seed)
    iid = torch.multinomial(_zipf(vocab), n, replacement=True, generator=g).tolist()
    succ = torch.multinomial(_zipf(vocab), vocab * 4, replacement=True, generator=g).view(vocab, 4).tolist()
    pick = torch.randint(0, 4, (n,), generator=g).tolist()
    keep = (torch.rand(n, generator=g) < 0.7).tolist()
    out = iid[:]
    for i in range(1, n):
        if keep[i]:
            out[i] = succ[out[i - 1]][pick[i]]
    return torch.tensor(out)


class _BigramLM(nn.Module):
    def __init__(self, vocab: int, dim: int = 16) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx):
        return self.head(self.wte(idx))


def _train_lm(batches, vocab, steps, lr, seed=0, functional_view=True):
    """``batches(g) -> (x, y)`` of shape (B, T); nanoGPT-style flattened loss or (N, C, L) logits."""
    torch.manual_seed(seed)
    model = _BigramLM(vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    with Observer(checks=CHECKS) as obs:
        for _ in range(steps):
            x, y = batches(g)
            logits = model(x)
            if functional_view:
                loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1))
            else:
                loss = nn.CrossEntropyLoss()(logits.transpose(1, 2), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


def _windows(data, batch=8, block=32):
    def batches(g):
        ix = torch.randint(0, len(data) - block - 1, (batch,), generator=g).tolist()
        x = torch.stack([data[i:i + block] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + block] for i in ix])
        return x, y
    return batches


def test_language_model_still_learning_is_not_underfitting():
    # a 1000-token vocabulary, Zipfian targets, a slow learning rate: the loss still falls at the end
    obs = _train_lm(_windows(_markov_stream(1000, 20000)), 1000, 150, lr=3e-3)
    warn = [f for f in obs.report().by_code("fit.underfitting") if f.severity != "info"]
    assert not warn, [(f.message, f.evidence) for f in warn]


def test_converged_language_model_beating_the_unigram_is_at_most_info():
    # a bigram model on text with context: it flattens above zero but below the unigram entropy
    obs = _train_lm(_windows(_markov_stream(100, 20000, seed=1), batch=16), 100, 240, lr=3e-2,
                    functional_view=False)
    found = obs.report().by_code("fit.underfitting")
    assert all(f.severity == "info" for f in found), [(f.severity, f.evidence) for f in found]


def test_language_model_stuck_at_the_unigram_level_underfits():
    # i.i.d. tokens drawn afresh every step: nothing to learn beyond the unigram, it flattens there
    vocab = 300
    p = _zipf(vocab)

    def batches(g):
        t = torch.multinomial(p, 16 * 33, replacement=True, generator=g).view(16, 33)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()

    obs = _train_lm(batches, vocab, 240, lr=3e-2)
    # still found: flat at the (bias-corrected) unigram loss, reported as a plateau there
    found = [f for f in obs.report().findings if f.severity != "info"
             and (f.code == "fit.underfitting" or f.evidence.get("at_constant_prediction"))]
    assert found, [(f.code, f.evidence) for f in obs.findings]
    (f,) = found
    assert f.evidence.get("end_loss", f.evidence.get("train_loss")) >= 0.95 * obs.state.extra["nndoctor.loss_baseline"]


def test_entropy_estimate_corrects_the_undersampled_vocabulary():
    import math

    import numpy as np

    from nndoctor.monitor.curves import entropy_estimate

    rng = np.random.default_rng(0)
    vocab = 14000
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    truth = float(-(p * np.log(p)).sum())
    counts = np.bincount(rng.choice(vocab, 4000, p=p), minlength=vocab)
    q = counts[counts > 0] / counts.sum()
    plug_in = float(-(q * np.log(q)).sum())
    est = entropy_estimate(counts, vocab)
    assert abs(est - truth) < 0.5 * abs(plug_in - truth)
    assert entropy_estimate(np.full(10, 50), 10) == pytest.approx(math.log(10))
    assert entropy_estimate(np.array([1, 1, 1]), 3) <= math.log(3)


def test_falling_tail_slope_against_noise():
    import numpy as np

    from nndoctor.monitor.checks.fit import falling_tail

    rng = np.random.default_rng(0)
    s = np.arange(100)
    flat = 2.0 + 0.05 * rng.standard_normal(100)
    falling = 2.2 - 0.004 * s + 0.05 * rng.standard_normal(100)
    assert not falling_tail(s, flat, 2.0)[0]
    assert falling_tail(s, falling, 2.0)[0]


# ------------------------------------------------ a model that memorised its data, evaluated only at the end
def _noisy_small(n_train, seed=0, regression=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + 400, 10, generator=g)
    signal = x[:, 0] + 0.8 * torch.randn(len(x), generator=g)
    y = signal[:, None] if regression else (signal > 0).long()
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _wide(out):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, out))


def _train_then_evaluate_once(model, loss_fn, Xt, yt, Xv, yv, epochs, lr=2e-3, eval_batch=None):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for i in range(0, len(Xt), 20):
                opt.zero_grad()
                loss_fn(model(Xt[i:i + 20]), yt[i:i + 20]).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            b = eval_batch or len(Xv)
            for j in range(0, len(Xv), b):
                loss_fn(model(Xv[j:j + b]), yv[j:j + b])
    return obs.report()


def test_memorised_noisy_classes_evaluated_once_at_the_end_is_overfitting():
    Xt, yt, Xv, yv = _noisy_small(60)
    report = _train_then_evaluate_once(_wide(2), F.cross_entropy, Xt, yt, Xv, yv, epochs=150)
    (f,) = report.by_code("fit.overfitting")
    ev = f.evidence
    assert ev["memorised"] is True and ev["evaluations"] == 1
    assert ev["train_loss_last"] < 0.1 * ev["constant_loss"] <= ev["last_val_loss"]


def test_memorised_noisy_regression_evaluated_in_batches_at_the_end_is_overfitting():
    Xt, yt, Xv, yv = _noisy_small(40, seed=1, regression=True)
    report = _train_then_evaluate_once(_wide(1), nn.MSELoss(), Xt, yt, Xv, yv, epochs=200, eval_batch=100)
    (f,) = report.by_code("fit.overfitting")
    assert f.evidence["eval_batches_last"] == 4 and f.evidence["memorised"] is True


def test_long_training_on_enough_data_evaluated_at_the_end_is_quiet():
    Xt, yt, Xv, yv = _noisy_small(400, seed=2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    report = _train_then_evaluate_once(model, F.cross_entropy, Xt, yt, Xv, yv, epochs=15)
    assert report.by_code("fit.overfitting") == []


@pytest.mark.parametrize("val_losses, overfits", [
    ([0.01, 23.7, 9.2, 0.28], False),  # a spike (an unstable step, BatchNorm warming up) that comes back down
    ([0.5, 3.0, 1.0, 0.9, 0.8], False),  # jumped, then mostly recovered: weak evidence
    ([0.5, 0.6, 0.8, 1.0, 1.2], True),  # climbs and stays up: overfitting
    # climbed for three evaluations (a one-cycle peak), then below its old best: judged at the end of the
    # run, not at a curve read in the middle of the climb
    ([0.5, 0.6, 0.8, 1.0, 0.45, 0.4, 0.38], False),
])
def test_a_validation_spike_that_comes_back_down_is_not_overfitting(val_losses, overfits):
    X, y = blobs(n=512, seed=3)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    evals = iter(val_losses)
    with Observer(checks=CHECKS) as obs:
        for step in range(1, 8 * len(val_losses) + 1):
            i = (step * 32) % 480
            opt.zero_grad()
            F.cross_entropy(model(X[i:i + 32]), y[i:i + 32]).backward()
            opt.step()
            if step % 8 == 0:  # the script's evaluation: its loss is the value given
                model.eval()
                with torch.no_grad():
                    out = model(X[480:])
                    F.l1_loss(out[:, :1] * 0 + next(evals), torch.zeros(32, 1))
                model.train()
    assert [v for _, v in zip(*obs.state.eval_losses.series())] == pytest.approx(val_losses, rel=1e-5)
    assert bool(obs.report().by_code("fit.overfitting")) is overfits


# ---------------------------------------------------------------- several models trained side by side
def _side_by_side(eval_style: str, steps: int = 400, seed: int = 0):
    """A wide net that memorises 20 noisy points and a regularised one, each with its own optimizer,
    trained in ONE loop (a dropout / optimizer comparison tutorial); both evaluated every 10 steps."""
    torch.manual_seed(seed)
    x = torch.linspace(-1, 1, 20)[:, None]
    y = x + 0.3 * torch.randn(20, 1)
    xv = torch.linspace(-1, 1, 200)[:, None]
    yv = xv + 0.3 * torch.randn(200, 1)
    net_wide = nn.Sequential(nn.Linear(1, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 1))
    net_small = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    opt_wide = torch.optim.Adam(net_wide.parameters(), lr=0.01)
    opt_small = torch.optim.Adam(net_small.parameters(), lr=0.01, weight_decay=1e-2)
    loss_fn = nn.MSELoss()
    with Observer(checks=CHECKS) as obs:
        for t in range(steps):
            if eval_style == "interleaved":  # the tutorial's order: both forwards, both backwards, both steps
                l_wide, l_small = loss_fn(net_wide(x), y), loss_fn(net_small(x), y)
                opt_wide.zero_grad()
                opt_small.zero_grad()
                l_wide.backward()
                l_small.backward()
                opt_wide.step()
                opt_small.step()
            else:
                for net, opt in ((net_wide, opt_wide), (net_small, opt_small)):
                    loss = F.mse_loss(net(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            if t % 10 == 0:
                if eval_style == "interleaved":  # evaluation mode, gradients on (no torch.no_grad)
                    net_wide.eval()
                    net_small.eval()
                    loss_fn(net_wide(xv), yv)
                    loss_fn(net_small(xv), yv)
                    net_wide.train()
                    net_small.train()
                else:
                    with torch.no_grad():
                        for net in (net_wide, net_small):
                            F.mse_loss(net(xv), yv)
    return obs


@pytest.mark.parametrize("style", ["interleaved", "one-after-the-other"])
def test_overfitting_of_one_of_two_models_trained_side_by_side_names_it_at_info(style):
    obs = _side_by_side(style)
    found = obs.report().by_code("fit.overfitting")
    # the mixed curves (both models' losses recorded together) do not make a warning; the model whose
    # own validation curve rises is named, with its own numbers
    assert [f.severity.value for f in found] == ["info"], [(f.severity, f.message) for f in found]
    ev = found[0].evidence
    assert ev["model"] == "net_wide" and ev["last_val_loss"] > 1.1 * ev["best_val_loss"]
    assert "net_small" in found[0].message and "generalization_gap" not in ev


def test_models_evaluated_side_by_side_each_improving_are_quiet():
    """A second, harder task's model evaluated (over 4 batches) only late in the run: the mixed
    evaluation curve jumps up though each model's own curve falls."""
    X, y = blobs(n=3000, spread=1.0)
    Xh, yh = blobs(n=3000, spread=0.3, seed=1)  # overlapping classes: a higher loss
    net_easy, net_hard = mlp(), mlp(seed=1)
    opt_easy = torch.optim.Adam(net_easy.parameters(), lr=3e-4)
    opt_hard = torch.optim.Adam(net_hard.parameters(), lr=3e-4)
    with Observer(checks=CHECKS) as obs:
        for t in range(300):
            i = (t * 32) % 2400
            for net, opt, xs, ys in ((net_easy, opt_easy, X, y), (net_hard, opt_hard, Xh, yh)):
                loss = F.cross_entropy(net(xs[i:i + 32]), ys[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if t % 20 == 0:
                with torch.no_grad():
                    F.cross_entropy(net_easy(X[2400:]), y[2400:])
                    if t >= 220:
                        for j in range(2400, 3000, 150):
                            F.cross_entropy(net_hard(Xh[j:j + 150]), yh[j:j + 150])
    assert set(obs.state.eval_by_model) == {"net_easy", "net_hard"}
    assert not obs.report().by_code("fit.overfitting"), [f.message for f in obs.findings]


def test_a_model_and_its_averaged_copy_evaluated_overfitting_is_still_a_warning():
    """One optimizer, two evaluated models (a model and a copy of it): the training curve is the
    trained model's own, so its rise is still a warning, naming it."""
    model, Xt, yt, Xv, yv = _overfit_setup()
    copy = mlp(hidden=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        for step in range(300):
            i = (step * 32) % 96
            loss = F.cross_entropy(model(Xt[i:i + 32]), yt[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 3 == 0:
                with torch.no_grad():
                    F.cross_entropy(model(Xv), yv)
                    F.cross_entropy(copy(Xv), yv)
    (f,) = obs.report().by_code("fit.overfitting")
    assert f.severity.value == "warning" and f.evidence["model"] == "model"


SIDE_BY_SIDE_SCRIPT = """
import torch, torch.nn as nn
torch.manual_seed(0)
x = torch.linspace(-1, 1, 20)[:, None]
y = x + 0.3 * torch.randn(20, 1)
xv = torch.linspace(-1, 1, 200)[:, None]
yv = xv + 0.3 * torch.randn(200, 1)
net_wide = nn.Sequential(nn.Linear(1, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 1))
net_small = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
opt_wide = torch.optim.Adam(net_wide.parameters(), lr=0.01)
opt_small = torch.optim.Adam(net_small.parameters(), lr=0.01, weight_decay=1e-2)
loss_fn = nn.MSELoss()
for t in range(400):
    l_wide, l_small = loss_fn(net_wide(x), y), loss_fn(net_small(x), y)
    opt_wide.zero_grad(); opt_small.zero_grad()
    l_wide.backward(); l_small.backward()
    opt_wide.step(); opt_small.step()
    if t % 10 == 0:
        net_wide.eval(); net_small.eval()
        loss_fn(net_wide(xv), yv); loss_fn(net_small(xv), yv)
        net_wide.train(); net_small.train()
"""


def test_side_by_side_overfitting_in_a_script_is_info_though_its_optimizers_are_gone_at_the_end(tmp_path):
    """Judged at the end of the run: a script's globals (its optimizers) are cleared by then, and the
    two optimizers still count as training side by side (MorvanZhou's dropout tutorial)."""
    from helpers import run_cli

    script = tmp_path / "side_by_side.py"
    script.write_text(SIDE_BY_SIDE_SCRIPT)
    result = run_cli("run", str(script))
    found = [f for f in result.report["findings"] if f["code"] == "fit.overfitting"]
    assert [f["severity"] for f in found] == ["info"], found


def _assert_underfitting_info(obs, flag, reason):
    (f,) = obs.report().by_code("fit.underfitting")
    assert f.severity == "info" and f.evidence[flag], (f.severity, f.evidence)
    assert reason in f.message


def _noise(style, x):
    if style == "randn_like":
        return torch.randn_like(x)
    if style == "normal_":
        return torch.empty_like(x).normal_()
    return torch.randn(x.shape)


@pytest.mark.parametrize("style", ["randn_like", "normal_", "randn"])
def test_noise_prediction_target_makes_underfitting_info(style):
    # a diffusion model predicts the noise drawn in the step: at low noise levels it cannot be told
    # from the data, so the loss stays high for any model (here the best predictor leaves ~80%)
    torch.manual_seed(0)
    x0 = torch.randn(4096, 2)
    abar = torch.linspace(0.9999, 0.6, 50)
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(400):
            x = x0[(i * 64) % 4032:(i * 64) % 4032 + 64]
            t = torch.randint(0, 50, (64,))
            e = _noise(style, x)
            a = abar[t, None]
            xt = a.sqrt() * x + (1 - a).sqrt() * e
            loss = F.mse_loss(model(torch.cat([xt, t[:, None] / 50], 1)), e)
            opt.zero_grad()
            loss.backward()
            opt.step()
    _assert_underfitting_info(obs, "noise_targets", "random noise the script draws every step")


@pytest.mark.parametrize("style", ["clip", "simclr"])
def test_contrastive_loss_over_the_batch_makes_underfitting_info(style):
    # InfoNCE: cross-entropy whose classes are the batch's own examples; with noisy views its lowest
    # reachable value is far from 0, whatever the encoder
    x, _ = blobs(n=4096, seed=3)
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(300):
            b = x[(i * 64) % 4032:(i * 64) % 4032 + 64]
            za = F.normalize(enc(b + torch.randn_like(b)), dim=1)
            zb = F.normalize(enc(b + torch.randn_like(b)), dim=1)
            n = len(b)
            if style == "clip":
                logits = za @ zb.T / 0.5
                tgt = torch.arange(n)
                loss = (F.cross_entropy(logits, tgt) + F.cross_entropy(logits.T, tgt)) / 2
            else:
                z = torch.cat([za, zb])
                s = (z @ z.T / 0.5).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
                loss = F.nll_loss(F.log_softmax(s, 1), torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    _assert_underfitting_info(obs, "instance_targets", "contrastive")


# ------------------------------------------------ an evaluation loss written in other units than the training loss
def _scaled_regression(n_train, noise, seed=0, scale=300.0, offset=2_000.0):
    """Raw targets on a large scale (prices, counts): standardised for training, raw for evaluation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + 200, 10, generator=g)
    raw = offset + scale * (x[:, :1] - 0.5 * x[:, 1:2] + noise * torch.randn(len(x), 1, generator=g))
    mean, std = raw[:n_train].mean(), raw[:n_train].std()
    return x[:n_train], (raw[:n_train] - mean) / std, x[n_train:], raw[n_train:], mean, std


def _train_scaled_evaluate_raw(model, Xt, yt, Xv, raw_v, mean, std, epochs, eval_loss, eval_batch=None,
                               checks=None, every_epoch=False):
    """Train on standardised targets; evaluate with predictions mapped back to raw units, once at the end
    (or after every epoch: a validation curve)."""
    def evaluate():
        model.eval()
        with torch.no_grad():
            b = eval_batch or len(Xv)
            for j in range(0, len(Xv), b):
                eval_loss(model(Xv[j:j + b]) * std + mean, raw_v[j:j + b])  # predictions mapped back to raw units

    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    with Observer(checks=checks or CHECKS) as obs:
        for _ in range(epochs):
            model.train()
            for i in range(0, len(Xt), 20):
                opt.zero_grad()
                F.mse_loss(model(Xt[i:i + 20]), yt[i:i + 20]).backward()
                opt.step()
            if every_epoch:
                evaluate()
        if not every_epoch:
            evaluate()
    return obs.report()


def _mse_by_hand(pred, y):
    return ((pred - y) ** 2).mean()  # a metric of the script's own: a held-out residual (monitor/residuals.py)


def _mae_by_hand(pred, y):
    return (y - pred).abs().mean().item()


@pytest.mark.parametrize("eval_loss, eval_batch", [
    (F.mse_loss, None), (nn.MSELoss(), 50), (F.l1_loss, 40), (nn.SmoothL1Loss(), None), (_mse_by_hand, None),
    (_mae_by_hand, 50)])
def test_a_good_fit_evaluated_in_raw_units_after_standardised_training_is_quiet(eval_loss, eval_batch):
    # the training loss is in standardised units (~0.01), the evaluation loss in raw ones (thousands):
    # a held-out loss 1e4x the training loss measures the units, not a memorised training set
    Xt, yt, Xv, raw_v, mean, std = _scaled_regression(400, noise=0.05)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
    report = _train_scaled_evaluate_raw(model, Xt, yt, Xv, raw_v, mean, std, epochs=40, eval_loss=eval_loss,
                                        eval_batch=eval_batch)
    assert report.by_code("fit.overfitting") == []


@pytest.mark.parametrize("eval_loss", [F.mse_loss, F.l1_loss, _mse_by_hand])
def test_memorised_regression_evaluated_in_raw_units_is_still_overfitting(eval_loss):
    Xt, yt, Xv, raw_v, mean, std = _scaled_regression(40, noise=1.2, seed=1)
    report = _train_scaled_evaluate_raw(_wide(1), Xt, yt, Xv, raw_v, mean, std, epochs=200, eval_loss=eval_loss,
                                        eval_batch=50)
    (f,) = report.by_code("fit.overfitting")
    ev = f.evidence
    assert ev["memorised"] is True and 0 < ev["eval_loss_scale"] < 1e-2
    assert "training loss's units" in f.message


def test_validation_rising_in_raw_units_reports_the_gap_in_training_units():
    Xt, yt, Xv, raw_v, mean, std = _scaled_regression(40, noise=1.2, seed=1)
    report = _train_scaled_evaluate_raw(_wide(1), Xt, yt, Xv, raw_v, mean, std, epochs=200, eval_loss=F.mse_loss,
                                        every_epoch=True)
    (f,) = report.by_code("fit.overfitting")
    ev = f.evidence
    assert "memorised" not in ev and 0 < ev["eval_loss_scale"] < 1e-3
    assert ev["generalization_gap"] < ev["last_val_loss"] * 1e-3  # (not val - train across units)


def test_one_evaluation_pass_whose_batches_grow_harder_is_not_a_rising_validation_curve():
    # five batches of ONE evaluation pass at step 400 (held-out rows sorted by difficulty), the training loss
    # falling over 400 optimizer steps: one evaluation, not a curve that rose
    import numpy as np

    from nndoctor.monitor.checks.fit import _rise
    from nndoctor.monitor.history import History

    h = History("eval_loss")
    for v in (0.6, 1.5, 4.1, 7.3, 20.0):
        h.record(400, v)
    ts = np.arange(1, 401)
    tv = 2.0 * np.exp(-ts / 50.0) + 0.05
    assert _rise(h, ts, tv, advancing=True) is None
    g = History("eval_loss")  # the same values at five evaluations mid-run rise
    for s, v in zip((80, 160, 240, 320, 400), (0.6, 1.5, 4.1, 7.3, 20.0)):
        g.record(s, v)
    assert _rise(g, ts, tv, advancing=True) is not None
