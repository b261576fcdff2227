"""fit.restored-checkpoint-not-best: the weights a script restores as its "best" are those of a
clearly worse evaluation (flipped comparison, a reference instead of a copy, the snapshot taken
before the epoch that earned the score, the training loss compared), in several coding styles;
correct best-checkpointing by loss or by accuracy, resets to the initial weights between folds,
a checkpoint round trip that training goes on from, and a model selected by a metric nndoctor
cannot see stay quiet (or info)."""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.best_restore import RestoredNotBest

CODE = "fit.restored-checkpoint-not-best"
EPOCHS = 12


def _data(task: str, seed: int = 2, noise: float = 1.5) -> tuple[torch.Tensor, ...]:
    """A small noisy training set a wide MLP overfits: the validation loss bottoms out after a few
    epochs and then rises."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(900, 20, generator=g)
    w = torch.randn(20, 4, generator=g)
    scores = x @ w + noise * torch.randn(900, 4, generator=g)
    y = scores.argmax(1) if task == "cls" else scores[:, :1]
    return x[:200], y[:200], x[200:600], y[200:600]


def _mlp(out: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, out))


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        self.head = nn.Linear(256, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))


def _epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
           loss_fn: Callable[..., torch.Tensor]) -> float:
    model.train()
    total = 0.0
    for i in range(0, len(x), 20):
        loss = loss_fn(model(x[i:i + 20]), y[i:i + 20])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return total / (len(x) // 20)


def _val_cls(model: nn.Module, x: torch.Tensor, y: torch.Tensor, accuracy: bool = True) -> tuple[float, float]:
    model.eval()
    loss = correct = 0.0
    with torch.no_grad():
        for i in range(0, len(x), 100):
            out = model(x[i:i + 100])
            loss += F.cross_entropy(out, y[i:i + 100]).item()
            if accuracy:
                correct += (out.argmax(1) == y[i:i + 100]).sum().item()
    return loss / (len(x) // 100), correct / len(x)


def _val_reg(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    crit = nn.MSELoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=100)
    with torch.no_grad():
        return sum(crit(model(xb), yb).item() for xb, yb in loader) / len(loader)


def _observe(run: Callable[[], None]) -> list:
    with Observer(checks=[RestoredNotBest]) as obs:
        run()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


# -- faults ---------------------------------------------------------------------------------
def _flipped_accuracy_file(tmp_path) -> None:
    """`if acc < best_acc` with the checkpoint written to a file and read back."""
    xt, yt, xv, yv = _data("cls")
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    best_acc, path = 1.0, tmp_path / "best.pt"
    for _ in range(EPOCHS):
        _epoch(model, opt, xt, yt, F.cross_entropy)
        _, acc = _val_cls(model, xv, yv)
        if acc < best_acc:
            best_acc = acc
            torch.save(model.state_dict(), path)
    model.load_state_dict(torch.load(path))


def _reference_not_copy(tmp_path) -> None:
    """`best_state = model.state_dict()`: a reference that follows training (a regressor, MSELoss)."""
    xt, yt, xv, yv = _data("reg")
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    crit = nn.MSELoss()
    best, best_state = float("inf"), None
    for _ in range(20):
        _epoch(model, opt, xt, yt, crit)
        val = _val_reg(model, xv, yv)
        if val < best:
            best, best_state = val, model.state_dict()
    model.load_state_dict(best_state)


def _snapshot_before_epoch(tmp_path) -> None:
    """The snapshot is taken before the epoch whose evaluation earns it (a regressor)."""
    xt, yt, xv, yv = _data("reg", noise=0.3)
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=0.005)
    best, best_state = float("inf"), None
    for _ in range(6):
        before = copy.deepcopy(model.state_dict())
        _epoch(model, opt, xt, yt, F.mse_loss)
        val = _val_reg(model, xv, yv)
        if val < best:
            best, best_state = val, before
    model.load_state_dict(best_state)


def _flipped_loss_clone(tmp_path) -> None:
    """`best_loss = 0; if val_loss > best_loss`, the state copied with clone() per tensor."""
    xt, yt, xv, yv = _data("cls")
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    best_loss, best_state = 0.0, None
    for _ in range(EPOCHS):
        _epoch(model, opt, xt, yt, F.cross_entropy)
        val_loss, _ = _val_cls(model, xv, yv)
        if val_loss > best_loss:
            best_loss = val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)


def _training_loss_compared(tmp_path) -> None:
    """Early stopping that saves the state when the *training* loss improves."""
    xt, yt, xv, yv = _data("cls")
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    best_train, best_state = float("inf"), None
    for _ in range(EPOCHS):
        train_loss = _epoch(model, opt, xt, yt, F.cross_entropy)
        _val_cls(model, xv, yv)
        if train_loss < best_train:
            best_train, best_state = train_loss, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)


class EarlyStopping:
    """The widely copied early-stopping helper, with the score's sign lost (``score = val_loss``
    where ``-val_loss`` was meant): it saves the checkpoint whenever the loss gets worse."""

    def __init__(self, path, patience: int = 3) -> None:
        self.path, self.patience, self.counter, self.best_score, self.early_stop = path, patience, 0, None, False

    def __call__(self, val_loss: float, model: nn.Module) -> None:
        score = val_loss
        if self.best_score is None or score > self.best_score:
            self.best_score, self.counter = score, 0
            torch.save(model.state_dict(), self.path)
        else:
            self.counter += 1
            self.early_stop = self.counter >= self.patience


def _early_stopping_class_sign_lost(tmp_path) -> None:
    xt, yt, xv, yv = _data("reg")
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    stopper = EarlyStopping(tmp_path / "checkpoint.pt")
    for _ in range(EPOCHS):
        _epoch(model, opt, xt, yt, F.mse_loss)
        stopper(_val_reg(model, xv, yv), model)
        if stopper.early_stop:
            break
    model.load_state_dict(torch.load(tmp_path / "checkpoint.pt"))


@pytest.mark.parametrize("run", [_flipped_accuracy_file, _reference_not_copy, _snapshot_before_epoch,
                                 _flipped_loss_clone, _training_loss_compared, _early_stopping_class_sign_lost])
def test_restoring_a_worse_state_is_a_warning(run, tmp_path) -> None:
    found = _observe(lambda: run(tmp_path))
    assert len(found) == 1, found
    f = found[0]
    assert f.severity is Severity.WARNING
    assert f.evidence["restored_evaluation"] != f.evidence.get("best_loss_evaluation", f.evidence.get(
        "best_accuracy_evaluation"))
    assert "clearly better" in f.message


def test_a_reference_is_named_in_the_message(tmp_path) -> None:
    found = _observe(lambda: _reference_not_copy(tmp_path))
    assert found and found[0].evidence["aliased"] is True and "copy.deepcopy" in found[0].message
    assert found[0].evidence["restored_evaluation"] == found[0].evidence["evaluations"]  # the last one


# -- healthy lookalikes ------------------------------------------------------------------------
def _best_by(metric: str) -> Callable[[], None]:
    def run() -> None:
        xt, yt, xv, yv = _data("cls")
        model = _mlp(4)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        best_loss, best_acc, best_state = float("inf"), 0.0, None
        for _ in range(EPOCHS):
            _epoch(model, opt, xt, yt, F.cross_entropy)
            loss, acc = _val_cls(model, xv, yv)
            if (metric == "loss" and loss < best_loss) or (metric == "accuracy" and acc > best_acc):
                best_loss, best_acc, best_state = loss, acc, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
    return run


@pytest.mark.parametrize("metric", ["loss", "accuracy"])
def test_correct_best_checkpoint_is_quiet(metric: str) -> None:
    assert _observe(_best_by(metric)) == []


def test_best_by_accuracy_when_the_loss_disagrees_is_quiet() -> None:
    """Overfitting: the validation loss is lowest at one epoch, the accuracy highest at a later one;
    restoring the most accurate state is right."""
    xt, yt, xv, yv = _data("cls", seed=1)
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history, best_acc, best_state = [], -1.0, None

    def run() -> None:
        nonlocal best_acc, best_state
        for _ in range(EPOCHS):
            _epoch(model, opt, xt, yt, F.cross_entropy)
            loss, acc = _val_cls(model, xv, yv)
            history.append((loss, acc))
            if acc > best_acc:
                best_acc, best_state = acc, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)

    found = _observe(run)
    losses = [h[0] for h in history]
    accs = [h[1] for h in history]
    best_loss_epoch = losses.index(min(losses))
    assert accs.index(max(accs)) != best_loss_epoch  # the two metrics disagree
    assert losses[accs.index(max(accs))] > 1.05 * min(losses)  # by more than the check's margin
    assert found == []


@pytest.mark.parametrize("reset", ["load-initial", "reinitialise"])
def test_folds_restarted_from_scratch_are_judged_apart(reset: str) -> None:
    """K folds on one model, each started from scratch (the initial weights loaded back after a
    baseline evaluation of them, or the layers re-initialised with a new optimizer), then
    best-checkpointing per fold; the second fold's validation data is harder, so its best is worse
    than the first fold's."""
    folds = [_data("cls", seed=0, noise=0.5), _data("cls", seed=1, noise=3.0)]
    model = _mlp(4)
    initial = copy.deepcopy(model.state_dict())

    def run() -> None:
        for xt, yt, xv, yv in folds:
            if reset == "load-initial":
                model.load_state_dict(initial)
            else:
                for layer in model:
                    if isinstance(layer, nn.Linear):
                        layer.reset_parameters()
            _val_cls(model, xv, yv)  # the baseline
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            best, best_state = float("inf"), None
            for _ in range(6):
                _epoch(model, opt, xt, yt, F.cross_entropy)
                loss, _ = _val_cls(model, xv, yv)
                if loss < best:
                    best, best_state = loss, copy.deepcopy(model.state_dict())
            model.load_state_dict(best_state)

    assert _observe(run) == []


def test_checkpoint_round_trip_that_training_continues_from_is_quiet(tmp_path) -> None:
    """Each epoch writes the latest state and reads it back (a resume) and training goes on: the
    latest state is not the best, but nothing was restored as the best."""
    xt, yt, xv, yv = _data("cls")
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    path = tmp_path / "last.pt"

    def run() -> None:
        for _ in range(EPOCHS):
            _epoch(model, opt, xt, yt, F.cross_entropy)
            _val_cls(model, xv, yv)
            torch.save(model.state_dict(), path)
            model.load_state_dict(torch.load(path))

    assert _observe(run) == []


def test_ema_weights_swapped_in_for_evaluation_are_quiet() -> None:
    """The EMA of the weights is loaded for each evaluation and the training weights back after it;
    the best EMA state is restored at the end."""
    xt, yt, xv, yv = _data("cls")
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def run() -> None:
        best, best_ema = float("inf"), None
        for _ in range(EPOCHS):
            model.train()
            for i in range(0, len(xt), 20):
                loss = F.cross_entropy(model(xt[i:i + 20]), yt[i:i + 20])
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        ema[k].mul_(0.8).add_(v, alpha=0.2)
            backup = copy.deepcopy(model.state_dict())
            model.load_state_dict(ema)
            loss, _ = _val_cls(model, xv, yv)
            model.load_state_dict(backup)
            if loss < best:
                best, best_ema = loss, copy.deepcopy(ema)
        model.load_state_dict(best_ema)

    assert _observe(run) == []


def test_classifier_selected_by_an_unseen_metric_is_info_only() -> None:
    """Only the loss is seen (the script scores with its own metric outside torch) and the restored
    state is later than the lowest loss: it may be the best by that metric, so info, not a warning."""
    xt, yt, xv, yv = _data("cls")
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def run() -> None:
        state = None
        for epoch in range(EPOCHS):
            _epoch(model, opt, xt, yt, F.cross_entropy)
            _val_cls(model, xv, yv, accuracy=False)
            if epoch == EPOCHS - 2:  # picked by a score nndoctor does not see
                state = copy.deepcopy(model.state_dict())
        model.load_state_dict(state)

    found = _observe(run)
    assert found and all(f.severity is Severity.INFO for f in found)
