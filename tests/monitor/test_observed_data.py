"""Dataset checks of `nndoctor run`: each bug injected into a healthy loop, and the healthy loops stay quiet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs
from torch.utils.data import DataLoader, Subset, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.balance import ClassBalance, UnseenClasses, UnshuffledBatches
from nndoctor.monitor.checks.data.leakage import TrainEvalLeakage
from nndoctor.monitor.checks.data.probe import LabelsUnrelated, probe
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.fit import Fit

CHECKS = [DataCollector, TrainEvalLeakage, ClassBalance, UnseenClasses, UnshuffledBatches, LabelsUnrelated, Fit]
DATA_CODES = ("data.", "labels.", "fit.model-at-chance")


def _net(d=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, classes))


def _fit_loader(model, loader, epochs, lr=1e-3, eval_loaders=(), weight=None):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    crit = nn.CrossEntropyLoss(weight=weight)
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            crit(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for ev in eval_loaders:
                for xb, yb in ev:
                    (model(xb).argmax(1) == yb).float().mean()


def _data_findings(obs, severity=("warning", "error")):
    return [f for f in obs.report().findings
            if f.code.startswith(DATA_CODES) and f.severity.value in severity]


def _codes(obs, severity=("warning", "error")):
    return sorted({f.code for f in _data_findings(obs, severity)})


# ---------------------------------------------------------------------------------- leakage
def test_overlapping_split_is_leakage_with_the_loader_name_and_share():
    x, y = blobs(n=2400, seed=1)
    train_loader = DataLoader(TensorDataset(x[:1600], y[:1600]), batch_size=32, shuffle=True)
    test_loader = DataLoader(TensorDataset(x[1200:], y[1200:]), batch_size=100)  # 400 of 1200 are training rows
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(), train_loader, 4, eval_loaders=[test_loader])
    (f,) = obs.report().by_code("data.train-test-leakage")
    assert f.location == "test_loader"  # the name in the outermost user frame, not the helper's
    assert f.evidence["n_other"] == 1200
    assert 0.15 <= f.evidence["estimated_share"] <= 0.5  # truth: 1/3


def test_full_batch_eval_of_partly_duplicated_rows_is_leakage():
    x, y = blobs(n=1000, seed=2)
    x_test = torch.cat([x[900:], x[:100]])  # 100 training rows copied into the test set
    y_test = torch.cat([y[900:], y[:100]])
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for step in range(200):
            opt.zero_grad()
            F.cross_entropy(model(x[:900]), y[:900]).backward()  # full-batch training
            opt.step()
            if step % 20 == 0:
                with torch.no_grad():
                    F.cross_entropy(model(x_test), y_test)
    (f,) = obs.report().by_code("data.train-test-leakage")
    assert f.evidence["n_shared"] == 100 and f.evidence["n_other"] == 200


def test_training_accuracy_passes_are_not_leakage():
    x, y = blobs(n=3000, seed=3)
    train_set = TensorDataset(x[:2000], y[:2000])
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    same_loader_eval = DataLoader(train_set, batch_size=500)
    subset_eval = DataLoader(Subset(train_set, range(300)), batch_size=100)
    test_loader = DataLoader(TensorDataset(x[2000:], y[2000:]), batch_size=250)
    model = _net()
    with Observer(checks=CHECKS) as obs:
        _fit_loader(model, loader, 3, eval_loaders=[same_loader_eval, subset_eval, test_loader])
        model.eval()
        with torch.no_grad():  # full-batch training accuracy, and on a slice of the training tensors
            (model(x[:2000]).argmax(1) == y[:2000]).float().mean()
            (model(x[:500]).argmax(1) == y[:500]).float().mean()
    assert _codes(obs) == []


def test_a_look_at_the_batch_just_trained_on_is_not_an_evaluation():
    # a VAE-style reconstruction preview (yunjey/pytorch-tutorial): at each epoch's end the last
    # training batch (a view of it) is run under no_grad, and no other evaluation is done (its rows
    # were fingerprinted in later epochs only in part: it read as a partly leaked evaluation set)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(640, 64, generator=g)
    loader = DataLoader(TensorDataset(x, torch.zeros(640)), batch_size=64, shuffle=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for _ in range(20):
            for xb, _ in loader:
                xb = xb.view(-1, 64)
                opt.zero_grad()
                F.mse_loss(model(xb), xb).backward()
                opt.step()
            with torch.no_grad():
                model(xb)  # the preview: the step's own batch
    assert _codes(obs) == []
    # the same kind of pass over rows copied from the training set is still a leak
    held_out = torch.cat([torch.rand(32, 64, generator=g), x[:32].clone()])
    with Observer(checks=CHECKS) as obs:
        for _ in range(20):
            for xb, _ in loader:
                opt.zero_grad()
                F.mse_loss(model(xb), xb).backward()
                opt.step()
            with torch.no_grad():
                model(held_out)
    assert "data.train-test-leakage" in _codes(obs)


# ---------------------------------------------------------------------------------- classes
def test_class_sorted_split_leaves_classes_unseen():
    x, y = blobs(n=2000, classes=5, seed=4)
    order = torch.argsort(y, stable=True)
    x, y = x[order], y[order]
    cut = int((y < 4).sum())  # the last class falls entirely into the validation split
    train_loader = DataLoader(TensorDataset(x[:cut], y[:cut]), batch_size=64, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[cut:], y[cut:]), batch_size=64)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=5), train_loader, 3, eval_loaders=[val_loader])
    (f,) = obs.report().by_code("data.unseen-classes")
    assert f.evidence["classes"] == "4"
    assert f.evidence["eval_examples"] == len(y) - cut  # once, not once per epoch


def test_imbalanced_training_targets_with_minority_error():
    g = torch.Generator().manual_seed(5)
    n0, n1 = 4000, 200
    x = torch.cat([torch.randn(n0, 16, generator=g), torch.randn(n1, 16, generator=g) + 0.7])
    y = torch.cat([torch.zeros(n0, dtype=torch.long), torch.ones(n1, dtype=torch.long)])
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    val = DataLoader(TensorDataset(x[::7], y[::7]), batch_size=200)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=2), loader, 2, eval_loaders=[val])
    (f,) = obs.report().by_code("data.class-imbalance")
    assert f.severity.value == "warning" and f.evidence["ratio"] >= 10
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=2), loader, 2, weight=torch.tensor([1.0, 20.0]))
    (f,) = obs.report().by_code("data.class-imbalance")
    assert f.severity.value == "info" and "already weighted" in f.message


def test_unshuffled_class_sorted_batches():
    x, y = blobs(n=1600, classes=8, seed=6)
    order = torch.argsort(y, stable=True)
    loader = DataLoader(TensorDataset(x[order], y[order]), batch_size=32, shuffle=False)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=8), loader, 2)
    assert obs.report().by_code("data.unshuffled-batches")
    assert not obs.report().by_code("data.class-imbalance")  # the sampled class mix is an artefact


def test_healthy_imbalanced_shuffled_batches_are_not_called_unshuffled():
    g = torch.Generator().manual_seed(7)
    y = torch.cat([torch.zeros(4900, dtype=torch.long), torch.ones(50, dtype=torch.long),
                   torch.full((50,), 2, dtype=torch.long)])
    x = torch.randn(5000, 16, generator=g) + y[:, None].float()
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=3), loader, 1)
    assert not obs.report().by_code("data.unshuffled-batches")


# ---------------------------------------------------------------------------------- labels
def _manual_loop(model, x, y, epochs, lr, batch=64):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            b = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()


def test_labels_shuffled_apart_from_inputs():
    x, y = blobs(n=2000, seed=8)
    y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    with Observer(checks=CHECKS) as obs:
        _manual_loop(_net(), x, y, 4, lr=1e-3)
    (f,) = obs.report().by_code("labels.unrelated-to-inputs")
    assert f.evidence["z"] < 3


@pytest.mark.parametrize("xor", [False, True])
def test_model_stuck_at_chance_with_learnable_labels_is_not_a_label_problem(xor):
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2000, 16, generator=g)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long() if xor else blobs(n=2000, seed=9)[1]
    if not xor:
        x = blobs(n=2000, seed=9)[0]
    with Observer(checks=CHECKS) as obs:
        _manual_loop(_net(classes=2 if xor else 4), x, y, 4, lr=1e-7)  # lr far too low: stays at chance
    assert not obs.report().by_code("labels.unrelated-to-inputs")
    (f,) = obs.report().by_code("fit.model-at-chance")
    assert f.severity.value == "info"


@pytest.mark.parametrize("shuffled", [False, True])
def test_probes_read_the_data_not_the_activation_a_separate_head_receives(shuffled):
    # an RNN and its head are two top-level modules (the last state fed to a nn.Linear): the head's input
    # is what the model, still at chance, made of the data (its state has forgotten the first token,
    # which is the label); the probes must read the data
    g = torch.Generator().manual_seed(12)
    first = torch.randint(0, 6, (1500,), generator=g)
    tokens = torch.randint(0, 6, (1500, 30), generator=g)
    tokens[:, 0] = first
    x = F.one_hot(tokens, 6).float()
    y = first[torch.randperm(1500, generator=g)] if shuffled else first
    torch.manual_seed(0)
    rnn, head = nn.RNN(6, 32, batch_first=True), nn.Linear(32, 6)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-7)  # stays at chance
    with Observer(checks=CHECKS) as obs:
        for _ in range(4):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 64):
                b = perm[i:i + 64]
                opt.zero_grad()
                F.cross_entropy(head(rnn(x[b])[0][:, -1]), y[b]).backward()
                opt.step()
    unrelated = obs.report().by_code("labels.unrelated-to-inputs")
    if shuffled:
        assert unrelated
    else:
        assert not unrelated and obs.report().by_code("fit.model-at-chance")


def test_probes_never_pair_labels_with_another_batch_of_the_same_step():
    # domain adaptation: a source and a target batch go through one encoder each step, the labelled head
    # reads the source features; pairing the labels with the latest data batch (the target's) would
    # make learnable labels look unrelated
    xs, ys = blobs(n=2000, seed=13)
    xt, _ = blobs(n=2000, seed=14)
    torch.manual_seed(0)
    enc, head = nn.Sequential(nn.Linear(16, 32), nn.Tanh()), nn.Linear(32, 4)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-7)  # stays at chance
    with Observer(checks=CHECKS) as obs:
        for _ in range(4):
            for i in range(0, 2000, 64):
                fs, ft = enc(xs[i:i + 64]), enc(xt[i:i + 64] + 1.0)
                loss = F.cross_entropy(head(fs), ys[i:i + 64]) + 0.0 * ft.pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.report().by_code("labels.unrelated-to-inputs")


def test_token_inputs_use_bag_of_ids():
    g = torch.Generator().manual_seed(10)
    y = torch.randint(0, 2, (1500,), generator=g)
    tokens = torch.randint(2, 200, (1500, 12), generator=g)
    tokens[:, 0] = y  # the first token carries the label
    emb = nn.Sequential(nn.Embedding(200, 8), nn.Flatten(), nn.Linear(96, 2))
    with Observer(checks=CHECKS) as obs:
        _manual_loop(emb, tokens, y, 3, lr=1e-8)
    assert not obs.report().by_code("labels.unrelated-to-inputs")


def test_probe_separates_random_from_real_labels():
    x, y = blobs(n=1200, seed=11)
    real = probe(x.numpy(), y.numpy())
    fake = probe(x.numpy(), np.random.default_rng(0).permutation(y.numpy()))
    assert real.z > 6 and real.gain > 0.3 * real.prior_loss
    assert fake.z < 3 and fake.gain < 0.05 * fake.prior_loss


# ---------------------------------------------------------------------------------- hygiene
def test_dataloader_wrappers_are_removed_and_batches_unchanged():
    x, y = blobs(n=256, seed=12)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=False)
    before_iter, before_next = DataLoader.__iter__, torch.utils.data.dataloader._BaseDataLoaderIter.__next__
    plain = [b[0].clone() for b in loader]
    with Observer(checks=CHECKS):
        assert DataLoader.__iter__ is not before_iter
        seen = [b[0].clone() for b in loader]
    assert DataLoader.__iter__ is before_iter
    assert torch.utils.data.dataloader._BaseDataLoaderIter.__next__ is before_next
    assert all(torch.equal(a, b) for a, b in zip(plain, seen))


def test_healthy_loops_are_quiet():
    x, y = blobs(n=3000, seed=13)
    loader = DataLoader(TensorDataset(x[:2400], y[:2400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[2400:], y[2400:]), batch_size=200)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(), loader, 3, eval_loaders=[val, loader])
    assert _codes(obs, ("info", "warning", "error")) == []


@pytest.mark.parametrize("flatten", [False, True])
def test_token_targets_of_a_language_model_are_not_called_imbalanced(flatten):
    g = torch.Generator().manual_seed(14)
    vocab = 40
    zipf = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float)
    tokens = torch.multinomial(zipf / zipf.sum(), 64 * 600, replacement=True, generator=g).view(600, 64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(vocab, 16), nn.Linear(16, vocab))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=CHECKS) as obs:
        for i in range(0, 600, 20):
            x, y = tokens[i:i + 20, :-1], tokens[i:i + 20, 1:]
            logits = model(x)
            loss = (F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1)) if flatten
                    else F.cross_entropy(logits.transpose(1, 2), y))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _codes(obs, ("info", "warning", "error")) == []


def test_random_split_siblings_are_judged_by_their_examples():
    from torch.utils.data import random_split

    x, y = blobs(n=3000, classes=5, seed=15)
    full = TensorDataset(x, y)
    train_set, val_set = random_split(full, [2400, 600], generator=torch.Generator().manual_seed(0))
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=100)
    with Observer(checks=CHECKS) as obs:  # disjoint halves of one dataset: quiet
        _fit_loader(_net(classes=5), loader, 2, eval_loaders=[val_loader])
    assert _codes(obs, ("info", "warning", "error")) == []

    doubled = TensorDataset(torch.cat([x, x[:600]]), torch.cat([y, y[:600]]))  # 600 rows stored twice
    train_set, val_set = random_split(doubled, [2880, 720], generator=torch.Generator().manual_seed(0))
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=120)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=5), loader, 3, eval_loaders=[val_loader])
    (f,) = obs.report().by_code("data.train-test-leakage")
    assert f.location == "val_loader"


# ------------------------------------------- leakage: passes that mix splits, data that repeat by nature
def _random_batch_training(model, x, y, steps, evaluate, every=100, lr=1e-3, seed=0):
    """Training on random batches the script draws itself; ``evaluate()`` every ``every`` steps."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        ix = torch.randint(len(x), (32,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[ix]), y[ix]).backward()
        opt.step()
        if step % every == 0:
            model.eval()
            with torch.no_grad():
                evaluate(g)
            model.train()


def test_one_loop_over_train_then_val_batches_is_not_leakage_and_a_leaky_val_still_is():
    x, y = blobs(n=2400, seed=7)
    xtr, ytr = x[:1600], y[:1600]
    model = _net()

    def estimate_loss(g, val=(x[1600:], y[1600:])):  # nanoGPT style: random batches of each split
        for xs, ys in ((xtr, ytr), val):
            for _ in range(20):
                ix = torch.randint(len(xs), (32,), generator=g)
                F.cross_entropy(model(xs[ix]), ys[ix])

    with Observer(checks=CHECKS) as obs:
        _random_batch_training(model, xtr, ytr, 300, estimate_loss)
    assert _codes(obs) == []

    def sliced(g):  # the other style: every split in order, slices of 50 (no smaller last batch)
        for xs, ys in ((xtr[:800], ytr[:800]), (x[1600:], y[1600:])):
            for i in range(0, len(xs), 50):
                F.cross_entropy(model(xs[i:i + 50]), ys[i:i + 50])

    with Observer(checks=CHECKS) as obs:
        _random_batch_training(_net(), xtr, ytr, 300, sliced)
    assert _codes(obs) == []

    perm = torch.randperm(800, generator=torch.Generator().manual_seed(1))
    leaky_x = torch.cat([x[1600:2000], xtr[:400]])[perm]  # half of the validation rows are training rows
    leaky_y = torch.cat([y[1600:2000], ytr[:400]])[perm]

    def leaky(g):
        for i in range(0, 800, 50):
            F.cross_entropy(model(leaky_x[i:i + 50]), leaky_y[i:i + 50])

    model = _net()
    with Observer(checks=CHECKS) as obs:
        _random_batch_training(model, xtr, ytr, 300, leaky)
    (f,) = obs.report().by_code("data.train-test-leakage")
    assert f.severity.value == "warning" and 0.25 <= f.evidence["estimated_share"] <= 0.8


def _token_stream(n, vocab=60, branches=4, seed=0):
    """Text-like tokens: a Markov chain with one likely successor, so short windows recur by nature."""
    g = torch.Generator().manual_seed(seed)
    nxt = torch.randint(vocab, (vocab, branches), generator=g)
    p = torch.tensor([0.7] + [0.3 / (branches - 1)] * (branches - 1))
    choice = torch.multinomial(p, n, replacement=True, generator=g)
    out, t = [0], 0
    for i in range(1, n):
        t = int(nxt[t, choice[i]])
        out.append(t)
    return torch.tensor(out)


def test_short_token_windows_that_recur_by_nature_are_not_a_leakage_warning():
    data, length = _token_stream(60_000), 12
    train, val = data[:54_000], data[54_000:]  # disjoint splits: no window is copied
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(60, 16), nn.Flatten(), nn.Linear(16 * length, 60))

    def batch(src, g):
        ix = torch.randint(len(src) - length - 1, (256,), generator=g)
        return torch.stack([src[i:i + length] for i in ix]), torch.stack([src[i + length] for i in ix])

    g = torch.Generator().manual_seed(3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=CHECKS) as obs:
        for step in range(1, 401):
            xb, yb = batch(train, g)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            if step % 100 == 0:
                with torch.no_grad():
                    for _ in range(4):  # validation windows only, yet ~5% of them equal a training window
                        xb, yb = batch(val, g)
                        F.cross_entropy(model(xb), yb)
    found = obs.report().by_code("data.train-test-leakage")
    assert found and all(f.severity.value == "info" for f in found)  # said, as chance, not as a copy


# ------------------------------------------- a teacher / target network running on the training batch
@pytest.mark.parametrize("order", ["teacher-first", "student-first"])
def test_a_model_run_without_gradient_on_the_training_batch_is_not_an_evaluation(order):
    """Distillation: a frozen teacher runs under no_grad on each training batch (before or after the
    student). It is part of the training step: its forwards make no evaluation passes (they matched
    the training fingerprints at a rate unlike the training set's and read as leakage), while a leaky
    validation set evaluated by the student in the same run is still found."""
    x, y = blobs(n=2400, seed=7)
    xtr, ytr = x[:800], y[:800]
    teacher = _net(seed=3).eval()
    perm = torch.randperm(600, generator=torch.Generator().manual_seed(1))
    leaky_x = torch.cat([x[1600:1900], xtr[:300]])[perm]  # half of these validation rows are training rows
    leaky_y = torch.cat([y[1600:1900], ytr[:300]])[perm]

    def run(student, steps, leaky_eval):
        g = torch.Generator().manual_seed(0)
        opt = torch.optim.Adam(student.parameters(), lr=1e-3)
        for step in range(1, steps + 1):
            ix = torch.randint(len(xtr), (32,), generator=g)
            xb, yb = xtr[ix], ytr[ix]
            if order == "teacher-first":
                with torch.no_grad():
                    soft = F.softmax(teacher(xb) / 2, -1)
                out = student(xb)
            else:
                out = student(xb)
                with torch.no_grad():
                    soft = F.softmax(teacher(xb) / 2, -1)
            loss = F.cross_entropy(out, yb) + F.kl_div(F.log_softmax(out / 2, -1), soft, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            if leaky_eval and step % 100 == 0:
                student.eval()
                with torch.no_grad():
                    for i in range(0, 600, 50):
                        F.cross_entropy(student(leaky_x[i:i + 50]), leaky_y[i:i + 50])
                student.train()

    with Observer(checks=CHECKS) as obs:
        run(_net(), 150, leaky_eval=False)
    from nndoctor.monitor.checks.data.sample import ObservedData
    data = ObservedData.of(obs.state)
    assert data is not None and len(data.companions) == 1 and data.passes == []
    assert _codes(obs, ("info", "warning", "error")) == []

    with Observer(checks=CHECKS) as obs:
        run(_net(), 200, leaky_eval=True)
    (f,) = obs.report().by_code("data.train-test-leakage")
    assert f.severity.value == "warning" and 0.25 <= f.evidence["estimated_share"] <= 0.8


# ------------------------------------------------------------------ a semi-supervised GAN's targets
class _SemiD(nn.Module):
    """A discriminator with a real/fake head (BCE) and a class head with one extra 'fake' class."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2))
        self.adv, self.aux = nn.Linear(64, 1), nn.Linear(64, classes + 1)

    def forward(self, x):
        h = self.body(x)
        return torch.sigmoid(self.adv(h)), self.aux(h)


def _semi_supervised_gan(loader, classes=8, steps=60):
    """The PyTorch-GAN sgan.py loop: BCE against all-ones / all-zeros targets, cross entropy against
    the batch's labels and against a constant 'fake' class index (filled, not data)."""
    torch.manual_seed(0)
    gen, disc = nn.Sequential(nn.Linear(8, 16)), _SemiD(classes)
    opt_g, opt_d = torch.optim.Adam(gen.parameters(), 2e-4), torch.optim.Adam(disc.parameters(), 2e-4)
    bce, ce = nn.BCELoss(), nn.CrossEntropyLoss()
    done = 0
    while done < steps:
        for xb, yb in loader:
            n = len(xb)
            valid, fake = torch.ones(n, 1), torch.zeros(n, 1)
            fake_class = torch.LongTensor(n).fill_(classes)
            opt_g.zero_grad()
            made = gen(torch.randn(n, 8))
            bce(disc(made)[0], valid).backward()
            opt_g.step()
            opt_d.zero_grad()
            real_p, real_aux = disc(xb)
            fake_p, fake_aux = disc(made.detach())
            d_loss = (bce(real_p, valid) + ce(real_aux, yb) + bce(fake_p, fake) + ce(fake_aux, fake_class)) / 4
            d_loss.backward()
            opt_d.step()
            done += 1
            if done >= steps:
                break


@pytest.mark.parametrize("sort", [False, True])
def test_semi_supervised_gan_constant_targets_are_not_unshuffled_data_but_sorted_labels_are(sort):
    x, y = blobs(n=1600, classes=8, seed=6)
    order = torch.arange(len(y))
    if sort:  # grouped by class in runs of one batch (the sampled steps come early: many classes)
        by_class = [torch.nonzero(y == c).flatten() for c in range(8)]
        order = torch.cat([by_class[k % 8][(k // 8) * 32:(k // 8 + 1) * 32] for k in range(8 * 5)])
    loader = DataLoader(TensorDataset(x[order], y[order]), batch_size=32, shuffle=not sort)
    with Observer(checks=CHECKS) as obs:
        _semi_supervised_gan(loader)
    assert bool(obs.report().by_code("data.unshuffled-batches")) is sort, [f.message for f in obs.findings]


def test_a_domain_head_with_constant_targets_beside_a_classifier_stays_quiet():
    """One optimizer; a domain head trained with BCE against all-ones (source batch) and all-zeros
    (target batch) beside the class head's cross entropy on shuffled labels: the two-class space is
    constant by construction, not sorted data."""
    x, y = blobs(n=1600, classes=8, seed=6)
    xt = blobs(n=1600, classes=8, seed=7)[0]
    loader = DataLoader(TensorDataset(x, y, xt), batch_size=32, shuffle=True)
    torch.manual_seed(0)
    model = _SemiD(7)  # (an 8-way class head and a one-logit domain head)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    bce, ce = nn.BCELoss(), nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for _ in range(2):
            for xb, yb, tb in loader:
                src_dom, src_cls = model(xb)
                tgt_dom, _ = model(tb)
                loss = ce(src_cls, yb) + bce(src_dom, torch.ones(len(xb), 1)) + bce(tgt_dom, torch.zeros(len(tb), 1))
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.report().by_code("data.unshuffled-batches"), [f.message for f in obs.findings]


@pytest.mark.parametrize("rare", [False, True])
def test_semi_supervised_gan_fake_class_is_not_imbalance_but_a_rare_data_class_is(rare):
    """The constant 'fake' class (half of the class head's targets) is made by the script, not data;
    a data class 20x rarer than the others is still an imbalance."""
    x, y = blobs(n=3200, classes=8, seed=6)
    if rare:  # class 0 about 40x rarer than the others
        keep = (y != 0) | (torch.arange(len(y)) % 40 == 0)
        x, y = x[keep], y[keep]
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    with Observer(checks=CHECKS) as obs:
        _semi_supervised_gan(loader, steps=60)
    assert bool(obs.report().by_code("data.class-imbalance")) is rare, [f.message for f in obs.findings]


@pytest.mark.parametrize("order", ["train-first", "test-first"])
def test_one_forward_over_every_example_sliced_by_the_script_is_not_leakage(order):
    """A nearest-centroid / k-NN evaluation embeds every example at once (the whole training split
    and the test split in one batch) and slices the outputs itself: the training rows are the
    training set, not copies in a test set. Copied training rows in a test batch still are
    (test_full_batch_eval_of_partly_duplicated_rows_is_leakage)."""
    x, y = blobs(n=1000, seed=2)
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    every = torch.cat([x[:800], x[800:]]) if order == "train-first" else torch.cat([x[800:], x[:800]])
    with Observer(checks=CHECKS) as obs:
        for step in range(200):
            i = (step * 64) % 768
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
            if step % 50 == 49:
                model.eval()
                with torch.no_grad():
                    emb = model(every)
                    train_emb, test_emb = (emb[:800], emb[800:]) if order == "train-first" else (emb[200:], emb[:200])
                    cent = torch.stack([train_emb[y[:800] == c].mean(0) for c in range(4)])
                    (test_emb @ cent.T).argmax(1)
                model.train()
    assert obs.report().by_code("data.train-test-leakage") == []


# ------------------------------------------------------- unshuffled batches: said within the first epochs
def _sorted_small(classes=3, per_class=100, seed=8):
    x, y = blobs(n=classes * per_class, classes=classes, seed=seed)
    order = torch.argsort(y, stable=True)
    return x[order], y[order]


def _sorted_loader_run(x, y):
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=int(y.max()) + 1), loader, 6)
    return obs


def _sorted_numpy_slices_run(x, y):
    xs, ys = x.numpy(), y.numpy()  # a Keras-style port: numpy arrays sliced in order, no shuffling
    model = _net(classes=int(ys.max()) + 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for _ in range(6):
            for i in range(0, len(xs), 25):
                xb, yb = torch.from_numpy(xs[i:i + 25]), torch.from_numpy(ys[i:i + 25])
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    return obs


def _per_class_datasets_run(x, y):
    parts = [TensorDataset(x[y == c], y[y == c]) for c in range(int(y.max()) + 1)]  # ConcatDataset of class folders
    loader = DataLoader(torch.utils.data.ConcatDataset(parts), batch_size=20)
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=len(parts)), loader, 5)
    return obs


@pytest.mark.parametrize("run", [_sorted_loader_run, _sorted_numpy_slices_run, _per_class_datasets_run])
def test_class_sorted_batches_are_named_within_the_first_curve_reads(run):
    x, y = _sorted_small()
    obs = run(x, y)
    (f,) = obs.report().by_code("data.unshuffled-batches")
    assert f.first_step <= 50 < obs.state.step, (f.first_step, obs.state.step)


@pytest.mark.parametrize("seed", range(12))
def test_tiny_shuffled_batches_of_two_classes_are_never_called_unshuffled_early(seed):
    """Batches of 3 from two balanced classes are single-class a quarter of the time: not evidence of sorting."""
    x, y = blobs(n=240, classes=2, seed=seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(seed))
    with Observer(checks=CHECKS) as obs:
        _fit_loader(_net(classes=2), loader, 2)
    assert not [f for f in obs.report().by_code("data.unshuffled-batches") if f.first_step < obs.state.step]
