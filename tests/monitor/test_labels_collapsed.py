"""labels.single-class and preprocessing.labels-scaled-like-pixels: labels destroyed by scaling them like pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.preprocessing import BinaryTargetRange, ScaledClassTargets
from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.balance import ClassBalance, UnshuffledBatches
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.data.targets import LabelsSingleClass

CHECKS = [DataCollector, LabelsSingleClass, ClassBalance, UnshuffledBatches, ScaledClassTargets, BinaryTargetRange]


def _found(obs, code, severities=("warning", "error")):
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == code and f.severity.value in severities]


def _net(d=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, classes))


def test_class_ids_divided_by_255_and_cast_back_sequential_loader_adam():
    x, y = blobs(n=1024, seed=1)
    y_bad = (y.float() / 255).long()  # every id < 255 becomes 0
    loader = DataLoader(TensorDataset(x, y_bad), batch_size=64, shuffle=True)
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        for _ in range(4):
            for xb, yb in loader:
                opt.zero_grad()
                nn.CrossEntropyLoss()(model(xb), yb).backward()
                opt.step()
    (f,) = _found(obs, "labels.single-class")
    assert f.evidence["label"] == 0 and f.evidence["model_classes"] == 4
    assert f.evidence["final_train_loss"] < 0.1 and "255" in f.fixes[0]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(16, 32), nn.Linear(32, 5)

    def forward(self, x):
        return F.log_softmax(self.b(torch.tanh(self.a(x))), dim=1)


def test_collapsed_labels_manual_slices_nll_main_sgd_with_clean_eval_labels():
    x, y = blobs(n=800, classes=5, seed=2)

    def main():
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        y_train = torch.div(y[:600], 255, rounding_mode="floor")  # "normalised" like the images
        for _ in range(8):
            for i in range(0, 600, 50):
                loss = F.nll_loss(model(x[i:i + 50]), y_train[i:i + 50])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                F.nll_loss(model(x[600:]), y[600:])

    with Observer(checks=CHECKS) as obs:
        main()
    (f,) = _found(obs, "labels.single-class")
    assert f.evidence["eval_classes"] == [0, 1, 2, 3, 4] and "evaluation targets" in f.message


def test_balanced_binary_small_batches_and_a_short_sorted_run_stay_quiet():
    x, y = blobs(n=1024, classes=2, seed=3)
    model = _net(classes=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y.float()), batch_size=4, shuffle=True)  # many one-class batches
    with Observer(checks=CHECKS) as obs:
        for _ in range(2):
            for xb, yb in loader:
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(model(xb).squeeze(1), yb).backward()
                opt.step()
    assert not _found(obs, "labels.single-class", ("info", "warning", "error"))
    # class-sorted data, a run that only reaches the first (class 0) batches: not a label collapse
    order = torch.argsort(y)
    model = _net(classes=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer(checks=CHECKS) as obs:
        for i in range(0, 320, 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    assert not _found(obs, "labels.single-class", ("info", "warning", "error"))


def test_contrastive_targets_all_at_index_zero_are_at_most_info():
    x, _ = blobs(n=512, seed=4)
    enc = _net(classes=8)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for _ in range(3):
            for i in range(0, 512, 64):
                q = F.normalize(enc(x[i:i + 64] + 0.1 * torch.randn(64, 16)), dim=1)
                k = F.normalize(enc(x[i:i + 64] + 0.1 * torch.randn(64, 16)), dim=1).detach()
                neg = F.normalize(torch.randn(64, 32, 8), dim=2)
                logits = torch.cat([(q * k).sum(1, keepdim=True), torch.einsum("nd,nkd->nk", q, neg)], 1) / 0.5
                loss = F.cross_entropy(logits, torch.zeros(64, dtype=torch.long))  # positives at index 0
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not _found(obs, "labels.single-class")


def test_masks_and_labels_divided_by_255_two_losses():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 8, 8, generator=g)
    mask = (x > 0.5).float() / 255  # a {0, 1} mask read like an image: {0, 1/255}
    torch.manual_seed(0)
    seg = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    opt = torch.optim.Adam(seg.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(0, 256, 32):
            opt.zero_grad()
            nn.BCEWithLogitsLoss()(seg(x[i:i + 32]), mask[i:i + 32]).backward()
            opt.step()
    (f,) = _found(obs, "preprocessing.labels-scaled-like-pixels")
    assert f.evidence["ids"] == [0, 1]
    xt, yt = blobs(n=512, classes=3, seed=5)
    model = _net(classes=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Observer(checks=CHECKS) as obs:
        for i in range(0, 512, 64):
            opt.zero_grad()
            F.mse_loss(model(xt[i:i + 64]).squeeze(1), yt[i:i + 64].float() / 255.0).backward()
            opt.step()
    (f,) = _found(obs, "preprocessing.labels-scaled-like-pixels")
    assert f.evidence["ids"] == [0, 1, 2] and "2/255" in f.message


def test_pixel_targets_and_binary_targets_are_not_scaled_labels():
    g = torch.Generator().manual_seed(1)
    imgs = torch.randint(0, 256, (256, 64), generator=g).float() / 255  # an autoencoder's pixel targets
    torch.manual_seed(0)
    ae = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 64), nn.Sigmoid())
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    x, y = blobs(n=256, classes=2, seed=6)
    clf = _net(classes=1)
    opt2 = torch.optim.Adam(clf.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for i in range(0, 256, 32):
            opt.zero_grad()
            F.binary_cross_entropy(ae(imgs[i:i + 32]), imgs[i:i + 32]).backward()
            opt.step()
            opt2.zero_grad()
            F.binary_cross_entropy_with_logits(clf(x[i:i + 32]).squeeze(1), y[i:i + 32].float()).backward()
            opt2.step()
    assert not [f for f in obs.findings if f.severity is not Severity.INFO], obs.findings


@pytest.mark.parametrize("style", ["shuffled-slices-cross-entropy", "manual-slices-nll", "three-classes-sgd"])
def test_a_rare_class_the_sample_missed_is_not_called_collapsed_labels(style):
    """99.5:0.5 data: the sampled training batches hold no minority example, the evaluation set 2 of 400.
    At that share a few hundred sampled targets miss the rare class by chance: imbalance, not a collapse."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1000, 16, generator=g)
    y = torch.zeros(1000, dtype=torch.long)
    y[[700, 900]] = 2 if style == "three-classes-sgd" else 1  # the only minority rows fell into evaluation
    model = _net(classes=3 if style == "three-classes-sgd" else 2)
    if style == "three-classes-sgd":
        y[650] = 1
    opt = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if style == "three-classes-sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    with Observer(checks=CHECKS) as obs:
        for _ in range(3):
            perm = torch.randperm(600)
            for i in range(0, 600, 32):
                xb, yb = x[perm[i:i + 32]], y[perm[i:i + 32]]
                opt.zero_grad()
                if style == "manual-slices-nll":
                    F.nll_loss(F.log_softmax(model(xb), dim=1), yb).backward()
                else:
                    F.cross_entropy(model(xb), yb).backward()
                opt.step()
            with torch.no_grad():
                F.cross_entropy(model(x[600:]), y[600:])
    assert _found(obs, "labels.single-class") == [], [(f.code, f.message) for f in obs.findings]
    (f,) = _found(obs, "data.class-imbalance")  # read from the evaluation targets
    assert f.evidence["training_classes"] == [0] and "evaluation targets" in f.message
