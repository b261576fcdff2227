"""Remedies of optimizer.full-batch-method-on-minibatches (Adam instead of Rprop/L-BFGS),
regularization.input-noise-too-strong (the noise shrunk at the lines that draw it, by the measured
ratio) and dtype.continuous-values-truncated (the conversion keeps floats): each injected bug,
found by its detector in-process, then trains like its fixed twin under the remedy; healthy code
and the same calls on other lines are left bit-identical."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import finding_of, remedied
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.truncation import ContinuousValuesTruncated
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.fullbatch import FullBatchOptimizerOnMiniBatches
from nndoctor.monitor.checks.input_noise import InputNoiseDrownsSignal


# -- Rprop / L-BFGS on mini-batches -----------------------------------------------------------
def _digits(n: int = 480) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:n] / 16.0, dtype=torch.float32), torch.tensor(y[:n])


def _blobs(n: int = 480) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=g)
    return x, (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 0.5).long()


def _fit(make_opt: Callable[[nn.Module], torch.optim.Optimizer], closure: bool = False, full: bool = False) -> float:
    """Cross-entropy on the training digits after two epochs of batches of 8 (or 60 full-batch steps)."""
    torch.manual_seed(0)
    x, y = _digits()
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = make_opt(model)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    batches = [[(x, y)] * 60] if full else [loader, loader]
    for xb, yb in (b for epoch in batches for b in epoch):
        def step(xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            return loss

        if closure:
            opt.step(step)
        else:
            step()
            opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def _rprop_plain(m: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Rprop(m.parameters())


def _rprop_imported(m: nn.Module) -> torch.optim.Optimizer:
    from torch.optim import Rprop  # looked up after the remedy is installed, as a script's import is

    return Rprop(m.parameters(), 0.003, etas=(0.3, 1.5))


def _rprop_groups(m: nn.Module) -> torch.optim.Optimizer:
    from torch.optim.rprop import Rprop

    return Rprop([{"params": m[0].parameters(), "lr": 0.02}, {"params": m[2].parameters()}])


def _adam(m: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.Adam(m.parameters(), lr=lr)


def test_rprop_on_minibatches_becomes_adam_and_trains_like_the_twin_in_three_styles():
    finding = finding_of(lambda: _fit(_rprop_plain), [FullBatchOptimizerOnMiniBatches],
                       "optimizer.full-batch-method-on-minibatches")
    # Adam at Rprop's initial step size (at most Rprop's default 0.01): 0.01, 0.003, 0.02 -> 0.01
    for style, lr in ((_rprop_plain, 0.01), (_rprop_imported, 0.003), (_rprop_groups, 0.01)):
        twin, bug = _fit(functools.partial(_adam, lr=lr)), _fit(style)
        with remedied(finding):
            fixed = _fit(style)
            net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
            assert isinstance(style(net), torch.optim.Rprop)  # isinstance checks still hold
        assert bug > 1.3 * twin, (style, bug, twin)
        assert fixed == twin  # Adam over the same parameters at that rate: the twin exactly


def test_lbfgs_with_a_closure_becomes_adam():
    finding = {"code": "optimizer.full-batch-method-on-minibatches", "location": "opt",
               "evidence": {"optimizer": "opt", "optimizer_class": "LBFGS"}}
    with remedied(finding):
        fixed = _fit(lambda m: torch.optim.LBFGS(m.parameters()), closure=True)
    assert fixed == _fit(_adam, closure=True)


def test_other_optimizers_and_full_batch_rprop_are_untouched():
    finding = {"code": "optimizer.full-batch-method-on-minibatches", "location": "opt",
               "evidence": {"optimizer": "opt", "optimizer_class": "Rprop"}}
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    plain = (_fit(_adam), _fit(sgd), _fit(lambda m: torch.optim.LBFGS(m.parameters()), closure=True, full=True))
    with remedied(finding):
        again = (_fit(_adam), _fit(sgd),
                 _fit(lambda m: torch.optim.LBFGS(m.parameters()), closure=True, full=True))
    assert again == plain
    assert torch.optim.Rprop.__name__ == "Rprop"  # put back when the stack closes


# -- input noise drowning the signal ----------------------------------------------------------------
def _noise_fit(augment: Callable[[torch.Tensor], torch.Tensor], epochs: int = 6) -> float:
    torch.manual_seed(0)
    x, y = _blobs(600)
    xt, yt, xv, yv = x[:480], y[:480], x[480:], y[480:]
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for i in range(0, 480, 32):
            xb = augment(xt[i:i + 32])
            opt.zero_grad()
            F.cross_entropy(model(xb), yt[i:i + 32]).backward()
            opt.step()
    with torch.no_grad():
        return float((model(xv).argmax(1) == yv).float().mean())


def _separate_line(std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def augment(xb: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(xb.shape) * std  # drawn here, added on the next line
        return xb + noise

    return augment


def _uniform(std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda xb: xb + (torch.rand_like(xb) - 0.5) * (std * 12 ** 0.5)


def _normal_about(std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda xb: torch.normal(xb, std)


def test_strong_input_noise_is_shrunk_to_the_measured_target_in_three_styles():
    for style in (_separate_line, _uniform, _normal_about):
        bug_run = style(4.0)
        finding = finding_of(functools.partial(_noise_fit, bug_run, epochs=1), [InputNoiseDrownsSignal],
                           "regularization.input-noise-too-strong")
        scale = 0.3 / finding["evidence"]["noise_ratio"]
        bug, twin = _noise_fit(bug_run), _noise_fit(style(4.0 * scale))
        with remedied(finding):
            fixed = _noise_fit(bug_run)
        assert twin > bug + 0.1, (style, bug, twin)
        assert abs(fixed - twin) <= 0.05, (style, fixed, twin)


def test_noise_remedy_leaves_draws_on_other_lines_and_without_gradients_alone():
    bug_run = _separate_line(4.0)
    finding = finding_of(lambda: _noise_fit(bug_run, epochs=1), [InputNoiseDrownsSignal],
                       "regularization.input-noise-too-strong")
    mild = lambda xb: xb + 0.1 * torch.randn_like(xb)  # noqa: E731 - another line's noise
    plain = (_noise_fit(mild), _noise_fit(lambda xb: xb))
    torch.manual_seed(1)
    data = torch.randn(50, 4)
    with remedied(finding):
        again = (_noise_fit(mild), _noise_fit(lambda xb: xb))
        torch.manual_seed(1)
        assert torch.equal(torch.randn(50, 4), data)
        with torch.no_grad():  # the noise line itself, outside training: untouched
            torch.manual_seed(1)
            assert torch.equal(bug_run(torch.zeros(50, 4)), 4.0 * data)
    assert again == plain


# -- continuous values truncated ------------------------------------------------------------
def _regression(convert: Callable[[np.ndarray], torch.Tensor]) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(400, 4)).astype(np.float32)
    y = 2.0 + 1.5 * np.sin(2 * x[:, 0]) + 0.4 * x[:, 1]
    yt = convert(y)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt = torch.from_numpy(x)
    for _ in range(12):
        for xb, yb in DataLoader(TensorDataset(xt[:320], yt[:320]), batch_size=32):
            opt.zero_grad()
            F.mse_loss(model(xb).squeeze(1), yb.float()).backward()
            opt.step()
    with torch.no_grad():
        return float(F.mse_loss(model(xt[320:]).squeeze(1), torch.tensor(y[320:], dtype=torch.float32)))


_TRUNCATIONS: list[Callable[[np.ndarray], torch.Tensor]] = [
    lambda y: torch.tensor(y, dtype=torch.long),
    lambda y: torch.from_numpy(y).float().long(),
    lambda y: torch.as_tensor(y).to(torch.int64),
]


def test_truncated_values_stay_floats_and_train_like_the_twin_in_three_styles():
    twin = _regression(lambda y: torch.tensor(y, dtype=torch.float32))
    for convert in _TRUNCATIONS:
        finding = finding_of(functools.partial(_regression, convert), [ContinuousValuesTruncated, DataCollector],
                           "dtype.continuous-values-truncated")
        bug = _regression(convert)
        with remedied(finding):
            fixed = _regression(convert)
        assert bug > 1.5 * twin, (bug, twin)
        assert abs(fixed - twin) <= 0.05 * twin, (fixed, twin)


def test_keep_float_leaves_whole_numbers_and_other_lines_alone():
    convert = _TRUNCATIONS[0]
    finding = finding_of(lambda: _regression(convert), [ContinuousValuesTruncated, DataCollector],
                       "dtype.continuous-values-truncated")
    ids = np.array([0.0, 1.0, 2.0, 1.0])
    with remedied(finding):
        assert torch.tensor(np.array([0.5, 1.7]), dtype=torch.long).dtype == torch.int64  # another line
        assert torch.tensor(np.array([0.5, 1.7])).long().tolist() == [0, 1]
        assert torch.from_numpy(ids).to(torch.int64).dtype == torch.int64
        assert convert(ids).dtype == torch.int64  # the finding's line, whole numbers: converted as written
        assert convert(np.array([0.5, 2.25])).dtype == torch.get_default_dtype()
        assert torch.ones(3).to(torch.float16).dtype == torch.float16


# -- the edits to make in the source ----------------------------------------------------------
def _edited(tmp_path: Any, text: str, finding: dict[str, Any]) -> str:
    from helpers import apply_diff

    from nndoctor.fix.edits import source_edit
    from nndoctor.fix.remedies import remedy_for

    script = tmp_path / "train.py"
    script.write_text(text)
    remedy = remedy_for(finding)
    assert remedy is not None
    edit = source_edit([(remedy.name, finding)], remedy.edit(finding), str(script))
    assert edit.diff and edit.line, edit
    return apply_diff(edit.diff, text)


def test_the_edit_replaces_rprop_by_adam_at_the_remedys_rate(tmp_path):
    rprop = {"code": "optimizer.full-batch-method-on-minibatches", "location": "opt",
             "evidence": {"optimizer": "opt", "optimizer_class": "Rprop"}}
    src = "import torch\nmodel = torch.nn.Linear(2, 2)\nopt = torch.optim.Rprop(model.parameters(), lr=0.003)\n"
    assert "opt = torch.optim.Adam(model.parameters(), lr=0.003)" in _edited(tmp_path, src, rprop)
    src = "import torch\nfrom torch.optim import Rprop\nopt = Rprop(torch.nn.Linear(2, 2).parameters())\n"
    assert "opt = torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=0.01)" in _edited(tmp_path, src, rprop)


def test_the_edit_keeps_the_truncated_values_as_floats(tmp_path):
    for line, want in (("yt = torch.tensor(y, dtype=torch.long)", "yt = torch.tensor(y, dtype=torch.float32)"),
                       ("yt = torch.from_numpy(y).long()", "yt = torch.from_numpy(y).float()"),
                       ("yt = torch.as_tensor(y).to(torch.int64)", "yt = torch.as_tensor(y).to(torch.float32)")):
        src = f"import numpy as np\nimport torch\ny = np.linspace(0, 3, 10)\n{line}\n"
        finding = {"code": "dtype.continuous-values-truncated", "location": "train.py:4",
                   "evidence": {"site": "train.py:4", "conversion": "tensor", "dtype": "torch.int64"}}
        assert want in _edited(tmp_path, src, finding)
