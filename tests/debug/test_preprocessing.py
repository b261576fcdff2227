"""preprocessing: raw / over-scaled / constant / NaN inputs and BCE targets outside [0, 1]."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_digits

from nndoctor.debug.preprocessing import (
    BinaryTargetRange,
    InputPreprocessing,
    feature_matrix,
    looks_like_image,
)
from nndoctor.monitor import Observer

CHECKS = [InputPreprocessing, BinaryTargetRange]


def _train(model, X, y, *, loss="ce", steps=12, bs=32, style="module"):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    crit = nn.CrossEntropyLoss() if loss == "ce" else nn.BCEWithLogitsLoss()
    with Observer(checks=CHECKS) as obs:
        for i in range(steps):
            j = (i * bs) % (len(X) - bs)
            xb, yb = X[j:j + bs], y[j:j + bs]
            opt.zero_grad()
            out = model(xb)
            if loss == "bce":
                out = out.squeeze(1) if yb.dim() == 1 else out
            if style == "module":
                value = crit(out, yb)
            elif loss == "ce":
                value = F.cross_entropy(out, yb)
            else:
                value = F.binary_cross_entropy_with_logits(out, yb)
            value.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


def _codes(report, severity="warning"):
    return {f.code for f in report.at_least(severity)}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def _mlp(n_in, n_out=10):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_out))


def test_raw_digits_pixels_flat_and_image(digits):
    X, y = digits
    report = _train(_mlp(64), X, y)
    [f] = report.by_code("preprocessing.unnormalised-pixels")
    assert f.location == "model" and f.evidence["divisor"] == 16 and f.evidence["max"] == 16
    assert "x / 16" in f.fixes[0] and "0.3" in f.fixes[1]
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    report = _train(conv, X.view(-1, 1, 8, 8) * (255 / 16), y, style="functional")
    [f] = report.by_code("preprocessing.unnormalised-pixels")
    assert f.evidence["divisor"] == 255 and f.evidence["shape"] == (32, 1, 8, 8)


def test_normalised_digits_stay_quiet(digits):
    X, y = digits
    assert not _codes(_train(_mlp(64), X / 16, y))
    Xs = (X - X.mean(0)) / (X.std(0) + 1e-6)
    assert not _codes(_train(_mlp(64), Xs, y, style="functional"))
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    assert not _codes(_train(conv, (X / 16).view(-1, 1, 8, 8), y))


def test_tabular_features_on_different_scales(cancer):
    X, y = cancer
    report = _train(_mlp(30, 2), X, y)
    [f] = report.by_code("preprocessing.unnormalised-features")
    assert "column 23" in f.evidence["largest"] or "column 3" in f.evidence["largest"]
    assert float(f.evidence["scale_ratio"]) > 1e3
    assert "X.mean(0)" in f.fixes[0] and "[14" in f.fixes[0]
    Xs = (X - X.mean(0)) / X.std(0)
    assert not _codes(_train(_mlp(30, 2), Xs, y, style="functional"))


def test_inputs_rescaled_inside_the_model_stay_quiet(digits, cancer):
    X, y = digits

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _mlp(64)

        def forward(self, x):
            return self.net(x / 16.0 - 0.5)

    assert not _codes(_train(Scaled(), X, y))
    Xc, yc = cancer
    torch.manual_seed(0)
    bn_first = nn.Sequential(nn.BatchNorm1d(30), nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))
    assert not _codes(_train(bn_first, Xc, yc))


def test_normalised_twice(digits):
    X, y = digits
    report = _train(_mlp(64), X / 16 / 255, y)
    assert "preprocessing.normalised-twice" in _codes(report)
    assert "preprocessing.normalised-twice" not in _codes(_train(_mlp(64), X / 16 - 0.5, y))


def test_nan_inputs_reported_with_columns(cancer):
    X, y = cancer
    Xs = (X - X.mean(0)) / X.std(0)
    Xs[::9, 4] = float("nan")
    Xs[5, 7] = float("inf")
    report = _train(_mlp(30, 2), Xs, y, steps=3)
    [f] = report.by_code("preprocessing.nan-in-inputs")
    assert f.severity.value == "error"
    assert "columns 4" in f.evidence["where"] and f.evidence["nan"] >= 3


def test_constant_input_is_an_error_but_one_dummy_call_is_not(cancer):
    _, y = cancer
    report = _train(_mlp(30, 2), torch.zeros(500, 30), y)
    [f] = report.by_code("preprocessing.constant-input")
    assert f.severity.value == "error" and f.evidence["value"] == "0"
    model = _mlp(30, 2)
    with torch.no_grad():
        model(torch.zeros(1, 30))            # a shape probe before training
    X = torch.randn(500, 30)
    assert not _codes(_train(model, X, y))


def test_mostly_constant_features_warn_but_digit_borders_do_not(digits):
    X, y = digits
    Xc = torch.randn(600, 20)
    Xc[:, 6:] = 0.0
    report = _train(_mlp(20, 10), Xc, y[:600])
    [f] = report.by_code("preprocessing.constant-features")
    assert f.evidence["n_constant"] == 14 and f.evidence["n_features"] == 20
    report = _train(_mlp(64), X / 16, y)
    assert not report.by_code("preprocessing.constant-features")


def test_token_ids_and_hidden_state_args_are_skipped():
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 8)
            self.rnn = nn.GRU(8, 16, batch_first=True)
            self.out = nn.Linear(16, 3)

        def forward(self, ids, h0):
            o, _ = self.rnn(self.emb(ids), h0)
            return self.out(o[:, -1])

    model = Tagger()
    ids = torch.randint(0, 100, (256, 12))
    y = torch.randint(0, 3, (256,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(8):
            opt.zero_grad()
            F.cross_entropy(model(ids[i * 32:(i + 1) * 32], torch.zeros(1, 32, 16)), y[i * 32:(i + 1) * 32]).backward()
            opt.step()
    assert not obs.report().at_least("warning")


@pytest.mark.parametrize("style", ["module", "functional"])
def test_bce_targets_outside_unit_interval(style):
    torch.manual_seed(0)
    X = torch.randn(400, 8)
    y = (X[:, 0] > 0).float()
    report = _train(_mlp(8, 1), X, y * 255, loss="bce", style=style)
    [f] = report.by_code("preprocessing.bce-target-out-of-range")
    assert f.severity.value == "error" and f.evidence["target_max"] == 255
    assert "(y == 255).float()" in f.fixes[0]
    [f] = _train(_mlp(8, 1), X, y + 1, loss="bce", style=style).by_code("preprocessing.bce-target-out-of-range")
    assert "y - 1" in f.fixes[0]
    assert not _codes(_train(_mlp(8, 1), X, y, loss="bce", style=style))
    soft = y * 0.9 + 0.05                      # label smoothing stays in [0, 1]
    assert not _codes(_train(_mlp(8, 1), X, soft, loss="bce", style=style))


def test_helpers_shapes():
    assert looks_like_image(torch.zeros(2, 784)) and looks_like_image(torch.zeros(2, 3, 8, 8))
    assert not looks_like_image(torch.zeros(2, 30)) and not looks_like_image(torch.zeros(2, 10, 7))
    x = torch.randn(4, 3, 5, 5)
    x[1, 0, 0, 0] = float("nan")
    flat, channels, bad = feature_matrix(x)
    assert flat.shape == (3, 75) and channels.shape == (75, 3) and bad["nan"] == 1 and bad["rows"] == 1
    assert not torch.isnan(x[0]).any() and torch.isnan(x[1, 0, 0, 0])   # the user's tensor is untouched


def test_sparse_bag_of_words_columns_are_not_constant_features():
    g = torch.Generator().manual_seed(0)
    counts = (torch.rand(400, 300, generator=g) < 0.01).float() * torch.randint(1, 3, (400, 300), generator=g)
    y = (counts[:, :150].sum(1) > counts[:, 150:].sum(1)).long()
    report = _train(_mlp(300, 2), counts, y)
    assert not report.by_code("preprocessing.constant-features")


def test_uint8_images_cast_inside_forward_are_still_raw_pixels():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (256, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = (images.float().mean((1, 2, 3)) > 127.5).long()

    class CastsInside(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.head = nn.Linear(4 * 6 * 6, 2)

        def forward(self, x):
            return self.head(self.conv(x.float()).flatten(1))

    torch.manual_seed(0)
    report = _train(CastsInside(), images, y)
    [f] = report.by_code("preprocessing.unnormalised-pixels")
    assert f.evidence["divisor"] == 255 and "model.conv" in f.evidence["first_layer"]

    class ScalesInside(CastsInside):
        def forward(self, x):
            return self.head(self.conv(x.float() / 255).flatten(1))

    torch.manual_seed(0)
    assert not _codes(_train(ScalesInside(), images, y))


def test_results_unchanged_by_the_checks(digits):
    from nndoctor.debug.crash import CrashExplainer
    from nndoctor.debug.dtype import AutocastWithoutGradScaler, Float64Model, HalfPrecisionWeights

    X, y = digits

    def train(observe):
        torch.manual_seed(0)
        model = _mlp(64)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        checks = [*CHECKS, CrashExplainer, Float64Model, HalfPrecisionWeights, AutocastWithoutGradScaler]
        obs = Observer(checks=checks) if observe else None
        if obs is not None:
            obs.__enter__()
        try:
            for _ in range(10):
                idx = torch.randperm(len(X))[:32]
                opt.zero_grad()
                F.cross_entropy(model(X[idx]), y[idx]).backward()
                opt.step()
        finally:
            if obs is not None:
                obs.__exit__(None, None, None)
        return torch.cat([p.detach().flatten() for p in model.parameters()]), torch.rand(1)

    plain, observed = train(False), train(True)
    assert torch.equal(plain[0], observed[0]) and torch.equal(plain[1], observed[1])


def test_one_global_mean_std_leaves_columns_on_different_scales(cancer):
    X, y = cancer
    report = _train(_mlp(30, 2), (X - X.mean()) / X.std(), y)
    [f] = report.by_code("preprocessing.unnormalised-features")
    assert "global mean/std" in f.message and float(f.evidence["scale_ratio"]) > 1e3
    # min-max scaling per column is fine
    span = X.max(0).values - X.min(0).values
    assert not _codes(_train(_mlp(30, 2), (X - X.min(0).values) / span, y))


# -- raw pixels reported on the step whose loss they turn NaN ---------------------------------------------
class _PoissonConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1))


def test_raw_pixels_are_reported_on_the_first_step_like_the_nan_they_cause():
    from nndoctor.debug.numerics import NonFinite

    g = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (256, 1, 8, 8), generator=g).float()
    y = (raw[:, 0, :4].mean((1, 2)) > raw[:, 0, 4:].mean((1, 2))).long()
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    styles = [
        (seq, lambda out, yb: F.nll_loss(torch.log(torch.softmax(out, dim=1)), yb)),  # log(0) from huge logits
        (_PoissonConv(), lambda out, yb: (torch.exp(out.squeeze(1) * 50) - yb * out.squeeze(1)).mean()),
    ]
    for model, loss_of in styles:
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        with Observer(checks=[InputPreprocessing, NonFinite]) as obs:
            for i in range(0, 192, 32):
                loss = loss_of(model(raw[i:i + 32]), y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
        assert not obs.internal_errors, obs.internal_errors
        steps = {f.code.split(".")[0]: f.first_step for f in obs.findings}
        assert "numerics" in steps and steps.get("preprocessing") == 1, obs.findings
        assert steps["preprocessing"] <= steps["numerics"]


def test_features_computed_by_a_model_that_trains_are_not_judged_as_data(cancer):
    """An encoder and a head called one after the other (each a root model): the raw tabular data are
    named where they enter the encoder; the encoder's large features entering the head are a symptom,
    not a second preprocessing problem. The same head fed the data directly is still judged."""
    X, y = cancer
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(30, 32), nn.ReLU())
    head = nn.Linear(32, 2)
    opt = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=1e-6)
    with Observer(checks=CHECKS) as obs:
        for i in range(12):
            xb, yb = X[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
            opt.zero_grad()
            F.cross_entropy(head(encoder(xb)), yb).backward()
            opt.step()
    found = obs.report().by_code("preprocessing.unnormalised-features")
    assert [f.location for f in found] == ["encoder"], [(f.location, f.message) for f in found]
    assert "preprocessing.unnormalised-features" in _codes(_train(_mlp(30, 2), X, y))


# ------------- (N, C, L) sequences into a temporal convolution: the channels are the features, not the positions
def _copy_task(n=256, memory=5, blank=40, seed=0):
    """Digits to remember, a long blank of zeros, then markers (a copy-memory task): most positions
    hold the same value in every sequence."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, 9, (n, memory), generator=g).float()
    x = torch.cat([seq, torch.zeros(n, blank), 9.0 * torch.ones(n, memory)], 1)
    return x.unsqueeze(1), seq[:, 0].long() - 1                     # (N, 1, L), the first digit's class


class _TemporalConv(nn.Module):
    def __init__(self, channels=8, classes=8):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 3, padding=2, dilation=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=4, dilation=2)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.head(h.mean(2))


@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_blank_positions_of_a_sequence_into_conv1d_are_not_constant_features(style):
    x, y = _copy_task()
    torch.manual_seed(0)
    model = _TemporalConv() if style == "subclass" else nn.Sequential(
        nn.Conv1d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 8))
    report = _train(model, x, y, style="functional" if style == "sequential" else "module")
    assert not report.by_code("preprocessing.constant-features")
    # the same sequences read position by position (an MLP over the flattened input): positions are features
    flat = nn.Sequential(nn.Flatten(), nn.Linear(x.shape[-1], 16), nn.ReLU(), nn.Linear(16, 8))
    assert _train(flat, x, y).by_code("preprocessing.constant-features")


# ------------- a recurrent cell driven by hand: its zero initial state is not a constant data column
class _Recognition(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.i2h = nn.Linear(2 + 24, 24)

    def forward(self, x, h):
        return torch.tanh(self.i2h(torch.cat([x, h], 1)))


class _StateFirst(_Recognition):
    def forward(self, h, x):  # the state is the first argument (PyTorchZeroToAll's hello-RNN style)
        return super().forward(x, h)


@pytest.mark.parametrize("call", ["cell", "wrapper.forward", "wrapper", "state-first"])
def test_the_zero_state_of_a_hand_driven_recurrent_cell_is_not_constant_features(call):
    """A recognition RNN written as one Linear over torch.cat([x_t, h]) (a latent ODE's encoder),
    unrolled by hand: on the first time step h is zeros without a graph, on the others it is the
    cell's own output. The state columns are not data; the whole run stays quiet (``cell``: the
    Linear called on the concatenation; ``wrapper.forward``: the wrapper's forward called directly,
    so its Linear is the root model that receives the concatenation; ``state-first``: the model takes
    the state as its first argument, zeros on the first step)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 12, 2, generator=g), torch.randn(64, 2, generator=g)
    torch.manual_seed(0)
    rec, head = (_StateFirst() if call == "state-first" else _Recognition()), nn.Linear(24, 2)
    opt = torch.optim.Adam([*rec.parameters(), *head.parameters()], lr=1e-2)
    step = {"cell": lambda xt, h: torch.tanh(rec.i2h(torch.cat([xt, h], 1))),
            "wrapper.forward": rec.forward, "wrapper": rec, "state-first": lambda xt, h: rec(h, xt)}[call]
    with Observer(checks=CHECKS) as obs:
        for i in range(10):
            xb, yb = x[i % 4 * 16:(i % 4 + 1) * 16], y[i % 4 * 16:(i % 4 + 1) * 16]
            opt.zero_grad()
            h = torch.zeros(16, 24)
            for t in reversed(range(x.shape[1])):
                h = step(xb[:, t], h)
            F.mse_loss(head(h), yb).backward()
            opt.step()
    assert not obs.internal_errors
    assert not [f.code for f in obs.findings if f.code.startswith("preprocessing.")], obs.findings


def test_a_model_fed_another_models_output_still_has_its_raw_data_judged(digits):
    """A discriminator sees raw pixels (no graph) and a generator's output (a graph through the
    generator, not through itself): its data argument is still judged."""
    X, _ = digits
    torch.manual_seed(0)
    gen, disc = nn.Linear(8, 64), _mlp(64, 1)
    opt = torch.optim.SGD([*gen.parameters(), *disc.parameters()], lr=1e-4)
    with Observer(checks=CHECKS) as obs:
        for i in range(12):
            real = X[i * 32:(i + 1) * 32]
            opt.zero_grad()
            loss = (F.binary_cross_entropy_with_logits(disc(gen(torch.randn(32, 8))), torch.zeros(32, 1))
                    + F.binary_cross_entropy_with_logits(disc(real), torch.ones(32, 1)))
            loss.backward()
            opt.step()
    assert [f.location for f in obs.report().by_code("preprocessing.unnormalised-pixels")] == ["disc"], obs.findings


def _bag_of_words(n=400, vocab=600, classes=5, seed=0):
    """Sparse word counts (~20 words a row, class-specific words): a document-classification input."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    counts = torch.zeros(n, vocab)
    for i in range(n):
        favourite = torch.arange(int(y[i]) * 40, int(y[i]) * 40 + 40)
        words = torch.cat([favourite[torch.randint(0, 40, (12,), generator=g)],
                           torch.randint(0, vocab, (8 + i % 7,), generator=g)])
        counts[i].index_add_(0, words, torch.ones(len(words)))
    return counts, y


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_rows_normalised_one_by_one_are_not_normalised_twice(norm):
    """A row-normalised bag of words (GCN features: each row sums to 1) or L2-normalised TF-IDF has
    every value far below 0.1 and a tiny global std: the normalisation of each row, done once."""
    X, y = _bag_of_words()
    if norm == "l1":  # binary words, each row divided by its word count (pygcn's normalize(features))
        X = X.clamp(max=1)
        Xn = X / X.sum(1, keepdim=True)
    else:  # smoothed term weights, each row of unit length (sklearn's TfidfVectorizer default)
        X = X.clamp(max=1) + 1.0
        Xn = X / X.norm(dim=1, keepdim=True)
    assert Xn.std() < 0.03 and Xn.abs().max() < 0.1  # what the tiny-spread rule alone would report
    assert "preprocessing.normalised-twice" not in _codes(_train(_mlp(600, 5), Xn, y))
    # the same rows shrunk once more are normalised twice
    report = _train(_mlp(600, 5), Xn / 255, y)
    assert "preprocessing.normalised-twice" in _codes(report)


class _Noisy(nn.Module):
    """A layer that adds noise to its weights in training mode (a book's custom-layer example)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in, n_out) * 0.1)

    def forward(self, x, training=False):
        w = self.w + 0.1 * torch.randn_like(self.w) if training else self.w
        return x @ w


def _fit(model, X, y, steps=12, manual=False):
    opt = None if manual else torch.optim.SGD(model.parameters(), lr=0.01)
    for i in range(steps):
        j = (i * 32) % (len(X) - 32)
        loss = F.cross_entropy(model(X[j:j + 32]), y[j:j + 32])
        if manual:
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.01 * p.grad
        else:
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.parametrize("demo", ["custom-layer", "sequential-batch", "probed-before-its-optimizer"])
def test_a_model_shown_on_zeros_but_not_trained_on_them_is_not_constant_input(cancer, demo):
    """A tutorial calls a layer on zeros to show what it does (rasbt/machine-learning-book ch13's
    NoisyLinear, three calls), or probes a model's output shape several times before building its
    optimizer: no data reaches a training step there. Constant-input was an error on the code before."""
    X, y = cancer
    X = (X - X.mean(0)) / X.std(0)
    torch.manual_seed(0)
    with Observer(checks=CHECKS) as obs:
        if demo == "custom-layer":
            layer = _Noisy(4, 2)
            for training in (True, True, False):
                print(layer(torch.zeros(1, 4), training=training))
            model = _mlp(30, 2)
        elif demo == "sequential-batch":
            shown = nn.Sequential(nn.Linear(30, 8), nn.Tanh())
            print(shown(torch.zeros(16, 30)).shape)
            model = _mlp(30, 2)
        else:
            model = _mlp(30, 2)
            for n in (1, 2, 4, 8):
                print(model(torch.zeros(n, 30)).shape)  # with gradients, before the optimizer exists
        _fit(model, X, y)
    assert not obs.internal_errors, obs.internal_errors
    assert not obs.report().by_code("preprocessing.constant-input"), [f.message for f in obs.report().findings]


@pytest.mark.parametrize("manual", [False, True])
def test_a_trained_model_fed_zeros_is_still_constant_input(cancer, manual):
    """The faulty counterpart: zeros fed to a model that trains, with an optimizer or by hand (no optimizer)."""
    _, y = cancer
    torch.manual_seed(0)
    model = _mlp(30, 2)
    with Observer(checks=CHECKS) as obs:
        _fit(model, torch.zeros(500, 30), y, manual=manual)
    [f] = obs.report().by_code("preprocessing.constant-input")
    assert f.severity.value == "error"


class _AuxFirst(nn.Module):
    """A model whose first argument is an auxiliary input (a zero initial state, an all-ones mask, a fixed
    condition) and whose second carries the data."""

    def __init__(self, style: str, n_in: int = 64, hidden: int = 16) -> None:
        super().__init__()
        self.style = style
        self.rnn = nn.RNN(n_in // 8, hidden, batch_first=True)
        self.lin = nn.Linear(n_in + 1, hidden)
        self.out = nn.Linear(hidden, 10)

    def forward(self, aux: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.style == "state":  # graykode's TextRNN: model(hidden, X), hidden = zeros every step
            o, _ = self.rnn(x.view(len(x), 8, -1), aux)
            return self.out(o[:, -1])
        if self.style == "mask":  # features times an all-ones mask
            return self.out(F.relu(self.lin(torch.cat([x * aux, aux[:, :1]], 1))))
        return self.out(F.relu(self.lin(torch.cat([x, aux], 1))))  # a fixed condition column


def _aux_run(style: str, X: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    model = _AuxFirst(style)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    aux = {"state": torch.zeros(1, 32, 16), "mask": torch.ones(32, 64), "cond": torch.full((32, 1), 0.5)}[style]
    with Observer(checks=CHECKS) as obs:
        for i in range(12):
            opt.zero_grad()
            F.cross_entropy(model(aux, X[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


@pytest.mark.parametrize("style", ["state", "mask", "cond"])
def test_a_constant_first_argument_beside_the_data_is_not_constant_input(digits, style):
    """The constant argument is auxiliary: no constant-input error (old code: an error, 'the model cannot
    learn anything from it'); the data argument is judged instead (raw 0-16 pixels still named), and a
    model whose data argument is zeros too is still told it cannot learn."""
    X, y = digits
    report = _aux_run(style, X / 16, y)
    assert not report.by_code("preprocessing.constant-input"), [f.message for f in report.findings]
    assert not report.at_least("warning"), [f.message for f in report.findings]
    raw = _aux_run(style, X, y)
    assert raw.by_code("preprocessing.unnormalised-pixels"), [f.message for f in raw.findings]
    [f] = _aux_run(style, torch.zeros_like(X), y).by_code("preprocessing.constant-input")
    assert f.severity.value == "error"


class _SeqNet(nn.Module):
    def __init__(self, style: str, n_in: int, classes: int = 10) -> None:
        super().__init__()
        self.style = style
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[style]
        self.rnn = cls(n_in, 12, batch_first=style != "gru", bidirectional=style == "lstm")
        self.out = nn.Linear(24 if style == "lstm" else 12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.style == "gru":  # sequence-first, transposed inside forward (graykode's Bi-LSTM)
            o, _ = self.rnn(x.transpose(0, 1))
            return self.out(o[-1])
        o, _ = self.rnn(x)
        return self.out(o[:, -1])


def _seq_run(style: str, x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    model = _SeqNet(style, x.shape[-1], int(y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(12):
            opt.zero_grad()
            j = (i * 16) % (len(x) - 16)
            F.cross_entropy(model(x[j:j + 16]), y[j:j + 16]).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.report()


@pytest.mark.parametrize("style", ["lstm", "gru", "rnn"])
def test_padded_one_hot_sequences_into_a_recurrent_layer_are_not_images_with_constant_pixels(style):
    """Prefixes of a 20-word sentence, one-hot over its 20 words and padded with word 0 to length 20:
    (N, 20, 20), square like an image. Old code read (position, word) pairs as pixels: the padding and
    the words that never occur at a position made 90%+ of them constant (a warning). Their features are
    the 20 words per step, all of which occur. A sequence whose per-step features really never change
    (16 of 20 stuck at 0.5) still warns."""
    g = torch.Generator().manual_seed(0)
    words = torch.randperm(20, generator=g)
    x = torch.zeros(200, 20, 20)
    y = torch.zeros(200, dtype=torch.long)
    for i in range(200):
        k = 1 + i % 19
        x[i, torch.arange(20), 0] = 1.0  # padding: word 0
        x[i, :k] = F.one_hot(words[:k], 20).float()
        y[i] = words[k] % 10
    report = _seq_run(style, x, y)
    assert not report.by_code("preprocessing.constant-features"), [f.message for f in report.findings]
    stuck = torch.randn(200, 20, 20, generator=g)
    stuck[:, :, 4:] = 0.5
    [f] = _seq_run(style, stuck, y).by_code("preprocessing.constant-features")
    assert f.evidence["n_constant"] == 16 and f.evidence["n_features"] == 20
