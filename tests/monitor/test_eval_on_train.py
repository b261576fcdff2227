"""data.evaluated-on-training-data: every evaluation of the run scores training examples."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.eval_on_train import EvaluatedOnTrainingData
from nndoctor.monitor.checks.data.leakage import TrainEvalLeakage
from nndoctor.monitor.checks.data.sample import DataCollector

CHECKS = [DataCollector, TrainEvalLeakage, EvaluatedOnTrainingData]
CODE = "data.evaluated-on-training-data"


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))


def _tensor_loop(x_tr, y_tr, evals, epochs=6, batch=32, final_only=False):
    """Manual mini-batches over tensors; ``evals`` (x, y) scored under no_grad every epoch (or once, at the end)."""
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for ep in range(epochs):
            perm = torch.randperm(len(x_tr))
            for i in range(0, len(x_tr), batch):
                idx = perm[i:i + batch]
                opt.zero_grad()
                F.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
                opt.step()
            if final_only and ep < epochs - 1:
                continue
            model.eval()
            with torch.no_grad():
                for xe, ye in evals:
                    out = model(xe)
                    (out.argmax(1) == ye).float().mean()
                    F.cross_entropy(out, ye)
            model.train()
    return obs


def _loader_loop(train_loader, eval_loaders, epochs=5):
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for xb, yb in train_loader:
                opt.zero_grad()
                crit(model(xb), yb).backward()
                opt.step()
            with torch.no_grad():
                for ev in eval_loaders:
                    correct = 0
                    for xb, yb in ev:
                        correct += int((model(xb).argmax(1) == yb).sum())
    return obs


def _loader_then_tensors(train_loader, evals, epochs=5):
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for xb, yb in train_loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            with torch.no_grad():
                for xe, ye in evals:
                    (model(xe).argmax(1) == ye).float().mean()
    return obs


def _codes(obs):
    return {f.code for f in obs.report().at_least("warning")}


@pytest.mark.parametrize("style", ["val-subset-of-train-tensors", "val-loader-over-train-dataset",
                                   "test-appended-to-train"])
def test_every_evaluation_on_training_examples_is_found(style):
    x, y = blobs(n=1200, seed=4)
    if style == "val-subset-of-train-tensors":  # a DataLoader over the training set, X_val = X_train[-200:]
        train_loader = DataLoader(TensorDataset(x[:800], y[:800]), batch_size=32, shuffle=True)
        model_eval = [(x[600:800].clone(), y[600:800].clone())]
        obs = _loader_then_tensors(train_loader, model_eval)
    elif style == "val-loader-over-train-dataset":
        train_set = TensorDataset(x[:800], y[:800])
        obs = _loader_loop(DataLoader(train_set, batch_size=32, shuffle=True),
                           [DataLoader(train_set, batch_size=200)])
    else:  # train_set = ConcatDataset(train, test): the test rows are trained on
        train_set = torch.utils.data.ConcatDataset([TensorDataset(x[:800], y[:800]), TensorDataset(x[800:], y[800:])])
        obs = _loader_loop(DataLoader(train_set, batch_size=32, shuffle=True),
                           [DataLoader(TensorDataset(x[800:].clone(), y[800:].clone()), batch_size=100)])
    (f,) = obs.report().by_code(CODE)
    assert f.severity.value == "warning" and f.evidence["evaluations"] >= 5, f.message


def test_held_out_training_accuracy_single_passes_and_previews_stay_quiet():
    x, y = blobs(n=1200, seed=5)
    # a real held-out split, evaluated every epoch
    assert CODE not in _codes(_tensor_loop(x[:800], y[:800], [(x[800:], y[800:])]))
    # training accuracy every epoch next to a held-out split (the usual "train acc / val acc" print)
    assert CODE not in _codes(_tensor_loop(x[:800], y[:800], [(x[:800], y[:800]), (x[800:], y[800:])]))
    # one training-accuracy pass at the end (a tutorial's final print)
    assert CODE not in _codes(_tensor_loop(x[:800], y[:800], [(x[:800], y[:800])], final_only=True))
    # a small fixed training batch scored every epoch (a preview), and a loader-based held-out split
    assert CODE not in _codes(_tensor_loop(x[:800], y[:800], [(x[:16], y[:16])]))
    train_set = TensorDataset(x[:800], y[:800])
    obs = _loader_loop(DataLoader(train_set, batch_size=32, shuffle=True),
                       [DataLoader(train_set, batch_size=200), DataLoader(TensorDataset(x[800:], y[800:]), 100)])
    assert CODE not in _codes(obs)


@pytest.mark.parametrize("style", ["training-loader-itself", "whole-training-tensors", "tensors-appended"])
def test_scoring_the_whole_training_set_is_info(style):
    # a tutorial with no split printing its training accuracy each epoch (the very DataLoader it trains
    # from, or model(X) on the tensors it slices batches from) reads the same as X_val = X_train, and
    # without a Dataset's length a part of those tensors cannot be told from all of them: the run has no
    # held-out measure, said as info, not as a warning (tests/corpus healthy_onecycle_sgd)
    x, y = blobs(n=800, seed=6)
    if style == "training-loader-itself":
        train_loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
        obs = _loader_loop(train_loader, [train_loader])
    elif style == "whole-training-tensors":
        obs = _tensor_loop(x, y, [(x, y)])
    else:  # slices of its own tensors give no training-set size: a part of them cannot be told from all
        obs = _tensor_loop(x, y, [(x[600:].clone(), y[600:].clone())])
    (f,) = obs.report().by_code(CODE)
    assert f.severity.value == "info" and f.evidence["whole_training_set"], f.message


def _kfold(models_per_fold: bool, folds: int = 4, epochs: int = 3):
    """Lightning's Fabric k-fold example: folds of one dataset, a DataLoader per fold over it
    (SubsetRandomSampler), one model per fold (or, the bug, one model for every fold)."""
    from torch.utils.data import SubsetRandomSampler

    x, y = blobs(n=800, seed=7)
    dataset = TensorDataset(x, y)
    n_models = folds if models_per_fold else 1
    models = [_net(seed=i) for i in range(n_models)]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]
    idx = torch.arange(800)
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for fold in range(folds):
                val_ids = idx[fold * 200:(fold + 1) * 200]
                train_ids = torch.cat([idx[:fold * 200], idx[(fold + 1) * 200:]])
                model, opt = models[fold % n_models], opts[fold % n_models]
                model.train()
                for xb, yb in DataLoader(dataset, batch_size=32, sampler=SubsetRandomSampler(train_ids.tolist())):
                    opt.zero_grad()
                    F.cross_entropy(model(xb), yb).backward()
                    opt.step()
                model.eval()
                with torch.no_grad():
                    for xb, yb in DataLoader(dataset, batch_size=64, sampler=SubsetRandomSampler(val_ids.tolist())):
                        (model(xb).argmax(1) == yb).float().mean()
    return obs


def test_k_fold_cross_validation_with_a_model_per_fold_is_no_evaluation_on_training_data():
    assert CODE not in _codes(_kfold(models_per_fold=True))


def test_one_model_cross_validated_over_folds_does_evaluate_on_its_training_data():
    """The same folds with a single model: by the second fold it has trained on every row it scores."""
    assert CODE in {f.code for f in _kfold(models_per_fold=False).findings}
