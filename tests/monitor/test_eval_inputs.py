"""preprocessing.eval-inputs-differ: evaluation inputs on another scale than the training inputs."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.debug.preprocessing import feature_matrix
from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.eval_inputs import EvalInputScale, InputStats

CODE = "preprocessing.eval-inputs-differ"


def _images(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (n, 1, 8, 8), generator=g).float()
    y = (raw[:, 0, :4].mean((1, 2)) > raw[:, 0, 4:].mean((1, 2))).long()
    return raw, y


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1))


def _warnings(obs: Observer) -> list:
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE and f.severity is not Severity.INFO]


def _train_eval(model, train_x, train_y, eval_x, eval_y, *, epochs=2, bs=32, augment=None, sgd=False):
    opt = (torch.optim.SGD(model.parameters(), lr=0.05) if sgd else torch.optim.Adam(model.parameters(), lr=1e-3))
    with Observer(checks=[EvalInputScale]) as obs:
        for _ in range(epochs):
            model.train()
            for i in range(0, len(train_x), bs):
                xb = train_x[i:i + bs]
                if augment is not None:
                    xb = augment(xb)
                loss = F.cross_entropy(model(xb), train_y[i:i + bs])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for i in range(0, len(eval_x), 64):
                    (model(eval_x[i:i + 64]).argmax(1) == eval_y[i:i + 64]).float().mean()
    return _warnings(obs)


def test_normalised_training_images_raw_test_images_subclass_top_level():
    raw, y = _images()
    mean, std = raw[:384].mean(), raw[:384].std()
    train = (raw[:384] - mean) / std
    found = _train_eval(ConvNet(), train, y[:384], raw[384:], y[384:])  # test set never normalised
    assert len(found) == 1, found
    f = found[0]
    assert f.location == "model" and f.evidence["std_ratio"] > 20
    assert abs(f.evidence["train_mean"]) < 0.1 and f.evidence["eval_mean"] > 50
    assert "x / 255" in f.fixes[0]


def test_standardised_train_table_raw_test_table_with_loaders_in_main():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 5, generator=g) * torch.tensor([3.0, 40.0, 900.0, 0.5, 12.0]) + 100.0
    y = (x[:, 0] > 100).long()
    mu, sd = x[:400].mean(0), x[:400].std(0)

    def main():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        train = DataLoader(TensorDataset((x[:400] - mu) / sd, y[:400]), batch_size=40, shuffle=True)
        test = DataLoader(TensorDataset(x[400:], y[400:]), batch_size=50)  # forgot the scaler
        for _ in range(3):
            for xb, yb in train:
                opt.zero_grad()
                nn.CrossEntropyLoss()(model(xb), yb).backward()
                opt.step()
            with torch.no_grad():
                for xb, yb in test:
                    F.cross_entropy(model(xb), yb)

    with Observer(checks=[EvalInputScale]) as obs:
        main()
    found = _warnings(obs)
    assert len(found) == 1 and found[0].location == "model", found


def test_same_preprocessing_and_training_only_augmentation_stay_quiet():
    raw, y = _images()
    scaled = raw / 255.0
    mean, std = scaled[:384].mean(), scaled[:384].std()
    norm = (scaled - mean) / std  # one pipeline for both splits

    def noisy_flips(xb: torch.Tensor) -> torch.Tensor:
        xb = torch.where(torch.rand(len(xb), 1, 1, 1) < 0.5, xb.flip(-1), xb)
        return xb + 0.3 * torch.randn_like(xb)

    assert not _train_eval(ConvNet(), norm[:384], y[:384], norm[384:], y[384:])
    assert not _train_eval(ConvNet(), norm[:384], y[:384], norm[384:], y[384:], augment=noisy_flips, sgd=True)
    # a different split of the same scale, drawn with another seed
    other, y2 = _images(seed=5)
    assert not _train_eval(ConvNet(), scaled[:384], y[:384], other / 255.0, y2)


def test_a_teacher_or_ema_model_only_run_without_gradient_is_not_compared():
    raw, y = _images()
    x = (raw - raw.mean()) / raw.std()
    student, teacher = ConvNet(), ConvNet()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    with Observer(checks=[EvalInputScale]) as obs:
        for i in range(0, 384, 32):
            with torch.no_grad():
                soft = teacher(raw[i:i + 32]).softmax(1)  # the teacher takes its own (raw) inputs
            loss = F.kl_div(student(x[i:i + 32]).log_softmax(1), soft, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not _warnings(obs)


# ---------------------------------------------------------------- evaluation batches standardised per batch
def _table(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g) * torch.tensor([1.0, 5, 20, 0.5, 3, 100]) + torch.tensor([2.0, 50, -3, 0, 7, 400])
    return x, (x[:, 1] > 50).long()


def _per_batch(xb: torch.Tensor) -> torch.Tensor:
    return (xb - xb.mean(0)) / (xb.std(0) + 1e-6)


def _tabular(*, eval_norm, train_norm=None, bs_eval: int = 16, loaders: bool = False, epochs: int = 2) -> list:
    x, y = _table(640)
    mu, sd = x[:512].mean(0), x[:512].std(0)
    train_norm = train_norm or (lambda xb: (xb - mu) / sd)
    torch.manual_seed(0)
    if loaders:
        model: nn.Module = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        train = DataLoader(TensorDataset(x[:512], y[:512]), batch_size=32, shuffle=True)
        test = DataLoader(TensorDataset(x[512:], y[512:]), batch_size=bs_eval)
    else:
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        train = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 512, 32)]
        test = [(x[i:i + bs_eval], y[i:i + bs_eval]) for i in range(512, 640, bs_eval)]
    with Observer(checks=[EvalInputScale]) as obs:
        for _ in range(epochs):
            for xb, yb in train:
                loss = F.cross_entropy(model(train_norm(xb)), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                for xb, _ in test:
                    model(eval_norm(xb, mu, sd)).argmax(1)
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def test_evaluation_batches_standardised_with_their_own_statistics_sliced_sgd():
    found = _tabular(eval_norm=lambda xb, mu, sd: _per_batch(xb))
    assert len(found) == 1 and found[0].severity is Severity.WARNING and found[0].evidence["kind"] == "per-batch"


def test_evaluation_batches_standardised_per_batch_loaders_adam_population_std():
    def norm(xb: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
        return (xb - xb.mean(dim=0, keepdim=True)) / xb.std(dim=0, unbiased=False, keepdim=True)
    found = _warnings_of(_tabular(eval_norm=norm, loaders=True, bs_eval=32))
    assert len(found) == 1


def _warnings_of(found: list) -> list:
    return [f for f in found if f.severity is not Severity.INFO]


def test_large_evaluation_batches_standardised_per_batch_are_info():
    found = _tabular(eval_norm=lambda xb, mu, sd: _per_batch(xb), bs_eval=128, epochs=3)
    assert len(found) == 1 and found[0].severity is Severity.INFO


def test_training_statistics_or_the_same_per_batch_pipeline_are_quiet():
    assert _tabular(eval_norm=lambda xb, mu, sd: (xb - mu) / sd) == []
    assert _tabular(eval_norm=lambda xb, mu, sd: _per_batch(xb), train_norm=_per_batch, loaders=True) == []
    x, _ = _table(640)
    whole = _per_batch(x[512:])  # the test set standardised as a whole, evaluated in chunks

    def chunk(xb: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
        i = int(torch.nonzero((x[512:] == xb[0]).all(1))[0])
        return whole[i:i + len(xb)]
    assert _tabular(eval_norm=chunk) == []


def test_input_stats_read_in_one_transfer_are_the_plain_sums():
    """InputStats.add (one host transfer, a table's squares reused) keeps exactly the float64 sums,
    extremes and per-column sums the plain reductions give, for tables and images alike."""
    g = torch.Generator().manual_seed(3)
    for shape in ((40, 7), (6, 3, 5, 5)):
        stats, batches = InputStats(), [torch.randn(*shape, generator=g) * 3 + 1 for _ in range(3)]
        for step, x in enumerate(batches):
            assert stats.add(x, step)
        flats = [feature_matrix(x)[0].double() for x in batches]
        chans = [feature_matrix(x)[1].double() for x in batches]
        assert stats.total == sum(float(f.sum()) for f in flats)
        assert stats.sq == sum(float(f.square().sum()) for f in flats)
        assert (stats.lo, stats.hi) == (min(float(x.min()) for x in batches), max(float(x.max()) for x in batches))
        assert torch.equal(stats.csum, chans[0].sum(0) + chans[1].sum(0) + chans[2].sum(0))
        assert torch.equal(stats.csq, chans[0].square().sum(0) + chans[1].square().sum(0) + chans[2].square().sum(0))


def _per_batch_by_std(x: torch.Tensor) -> bool | None:
    """standardised_per_batch without its min/max pre-test: every column's std read first."""
    t = x[:256].double()  # (its first MAX_ROWS rows)
    sd0 = t.std(0, unbiased=False)
    keep = sd0 > 1e-3
    if int(keep.sum()) < 2:
        return None
    t = t[:, keep]
    if not bool((t.mean(0).abs() <= 2e-3).all()):
        return False
    sd0, sd1 = t.std(0, unbiased=False), t.std(0, unbiased=True)
    return float(((sd0 - 1).abs() <= 2e-3).double().mean()) >= 0.9 or \
        float(((sd1 - 1).abs() <= 2e-3).double().mean()) >= 0.9


def test_a_batch_not_standardised_per_batch_is_told_without_a_per_column_std(monkeypatch):
    """A training batch off zero mean is ruled out from per-column ranges and means (no std pass:
    ~10x cheaper on CPU, read on every sampled step); the verdict is the std-first one on tables
    that are raw, standardised (population or sample std), near-constant, or with a column just off
    the tolerance."""
    from nndoctor.monitor.checks.data import eval_inputs

    g = torch.Generator().manual_seed(5)
    cases = []
    for rows, cols in ((4, 2), (8, 3), (64, 100), (256, 12), (300, 5)):
        raw = torch.randn(rows, cols, generator=g) * 2 + 0.5
        cases += [raw, (raw - raw.mean(0)) / raw.std(0, unbiased=False), (raw - raw.mean(0)) / raw.std(0)]
        tiny = raw.clone()
        tiny[:, 1:] = 3.0 + 1e-4 * torch.randn(rows, cols - 1, generator=g)  # near-constant columns
        cases.append(tiny)
        edge = (raw - raw.mean(0)) / raw.std(0, unbiased=False)
        edge[:, 0] += 2.1e-3  # a mean just past the tolerance
        cases.append(edge)
    for x in cases:
        assert eval_inputs.standardised_per_batch(x) == _per_batch_by_std(x), tuple(x.shape)
    stds: list[int] = []
    real_std = torch.Tensor.std
    monkeypatch.setattr(torch.Tensor, "std", lambda self, *a, **k: stds.append(1) or real_std(self, *a, **k))
    raw = torch.randn(64, 100, generator=g) + 1.0
    assert eval_inputs.standardised_per_batch(raw) is False and stds == []


def _regression_then(evaluate, *, features: int = 1, steps: int = 150) -> list:
    """A small regression on inputs in [-1, 1] (full batch, Adam), then ``evaluate(model)`` once."""
    torch.manual_seed(0)
    x = torch.rand(200, features) * 2 - 1
    y = torch.sin(3 * x).sum(1, keepdim=True)
    model = nn.Sequential(nn.Linear(features, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[EvalInputScale]) as obs:
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            evaluate(model)
    return _warnings(obs)


def _linspace_curve(model):  # the fitted curve drawn far beyond the training range (an extrapolation plot)
    model(torch.linspace(-5, 5, 1001).unsqueeze(1))


def _arange_curve(model):
    model(torch.arange(-6.0, 6.0, 0.01)[:, None])


def _meshgrid_surface(model):  # a decision surface over a padded box
    g = torch.linspace(-6, 6, 120)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    model(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1))


def test_a_grid_drawn_over_a_wider_range_than_the_training_inputs_is_no_evaluation():
    """A regression trained on [-1, 1] and plotted over [-5, 5] or [-6, 6] with linspace, arange or a
    meshgrid: points made to draw the fitted function, not test data (seen on a public regression
    notebook that shows how ReLU and tanh networks extrapolate). The old code compared them (and read
    only a sorted batch's first rows) and warned."""
    assert _regression_then(_linspace_curve) == []
    assert _regression_then(_arange_curve) == []
    assert _regression_then(_meshgrid_surface, features=2) == []


def test_test_rows_on_another_scale_are_still_caught_beside_the_grid_exemption():
    """Raw (unscaled) test rows of one or two features, not a grid: still another preprocessing."""
    def raw_rows(model):
        model(torch.rand(300, 1) * 200 + 50)

    def raw_sorted_two(model):
        t = torch.rand(500, 2) * 200 + 50
        model(t[t[:, 0].argsort()])

    assert len(_regression_then(raw_rows)) == 1
    assert len(_regression_then(raw_sorted_two, features=2)) == 1


def test_a_sorted_evaluation_batch_is_read_through_rows_spread_over_it():
    """Test rows of the training distribution, sorted (a table ordered by its feature), in one large
    batch: the statistics come from rows spread over the batch, not its first (lowest) 256 values."""
    def sorted_rows(model):
        model(torch.sort(torch.rand(60_000, 1) * 2 - 1, dim=0).values)

    assert _regression_then(sorted_rows) == []
