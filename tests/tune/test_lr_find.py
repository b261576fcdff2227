"""LR range test: sane suggestions on clean, noisy and spiky curves and on a real task; state restored."""

from __future__ import annotations

import math
import random

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor
from nndoctor.tune.lr_find import (
    SAFETY_FACTOR,
    centred_smooth,
    combine_sweeps,
    ema_smooth,
    fastai_valley,
    lightning_steepest,
    lr_find,
    lr_findings,
    lr_range_test,
    suggest_lr,
)

LRS = [1e-7 * (1e8) ** (i / 99) for i in range(100)]


def _curve(noise: float = 0.0, spike_at: int | None = None, seed: int = 0) -> list[float]:
    """Flat at 2.3, falls between lr 1e-4 and 1e-2, turns up for good after lr ~0.1."""
    rnd = random.Random(seed)
    out = []
    for i, lr in enumerate(LRS):
        x = math.log10(lr)
        v = 2.3 - 1.8 / (1 + math.exp(-(x + 3) * 3)) + (max(0.0, x + 1) ** 2) * 4
        v *= 1 + noise * rnd.gauss(0, 1)
        if spike_at is not None and spike_at <= i < spike_at + 2:
            v *= 6
        out.append(v)
    return out


def test_clean_curve_suggests_inside_the_falling_region():
    lr, reason, details = suggest_lr(LRS, _curve())
    assert lr is not None and 3e-4 <= lr <= 3e-2, (lr, reason)
    assert 0.05 <= details["lr_rise"] <= 0.5


def test_noisy_curve_with_an_early_spike_still_gets_a_sane_suggestion():
    for seed in range(5):
        losses = _curve(noise=0.15, spike_at=8, seed=seed)
        lr, reason, _ = suggest_lr(LRS, losses)
        assert lr is not None and 3e-4 <= lr <= 3e-2, (seed, lr, reason)


def test_flat_curve_gives_no_suggestion():
    lr, reason, _ = suggest_lr(LRS, [1.0 + 0.001 * math.sin(i) for i in range(100)])
    assert lr is None
    assert "neither fell" in reason


def test_sweep_cut_by_nan_anchors_on_the_last_finite_lr():
    losses = _curve()[:70] + [math.nan]
    lr, reason, _ = suggest_lr(LRS[:71], losses)
    assert lr is not None and lr < LRS[69]


def test_smoothers():
    assert all(abs(v - 3.0) < 1e-9 for v in ema_smooth([3.0] * 20))
    assert centred_smooth([1, 1, 1, 50, 1, 1, 1], 5)[3] < 2  # the median drops a spike


def test_reference_rules_return_an_lr_from_the_sweep():
    losses = ema_smooth(_curve(noise=0.05))
    assert lightning_steepest(LRS, losses) in LRS
    assert fastai_valley(LRS, losses) in LRS


def _regression_experiment(lr: float = 0.01) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(512, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    return nndoctor.Experiment(model=model, loss=nn.MSELoss(),
                               optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
                               train=DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True))


def test_real_task_suggestion_trains_well_and_state_is_restored():
    exp = _regression_experiment()
    weights = {k: v.clone() for k, v in exp.model.state_dict().items()}
    rng = torch.get_rng_state()
    res = lr_find(exp)
    assert res.suggested_lr is not None
    # SGD+momentum on a standardised regression: good lrs lie around 1e-3 .. 0.1
    assert 1e-3 <= res.suggested_lr <= 0.2, res.reason
    assert res.stopped in ("diverged", "non-finite", "end")
    assert len(res.lrs) == len(res.losses) == len(res.raw_losses)
    assert all(b > a for a, b in zip(res.lrs, res.lrs[1:]))
    for k, v in exp.model.state_dict().items():
        assert torch.equal(v, weights[k])
    assert exp.optimizer.param_groups[0]["lr"] == 0.01
    assert not exp.optimizer.state
    assert torch.equal(torch.get_rng_state(), rng)
    # the suggestion really trains: 150 steps bring the loss far below where it starts
    exp2 = _regression_experiment(lr=res.suggested_lr)
    first = last = None
    for _ in range(5):
        for xb, yb in exp2.train:
            loss = exp2.loss(exp2.model(xb), yb)
            first = first if first is not None else float(loss.detach())
            last = float(loss.detach())
            exp2.optimizer.zero_grad()
            loss.backward()
            exp2.optimizer.step()
    assert last < 0.2 * first


def test_findings_flag_an_lr_beyond_divergence():
    exp = _regression_experiment()
    res = lr_find(exp)
    assert res.stopped in ("diverged", "non-finite")
    report = lr_findings(res, current_lr=res.lrs[-1] * 2)
    assert [f.code for f in report.findings] == ["lr.above-divergence"]
    quiet = lr_findings(res, current_lr=res.suggested_lr)
    assert not quiet.findings


def _noisy_plateau(seed: int, noise: float = 0.35) -> list[float]:
    """Falls from 1.0 to 0.6 around lr 1e-3, a long noisy plateau, rises past lr ~0.3.

    The noise is multiplicative (a batch loss's spread scales with its level)."""
    rnd = random.Random(seed)
    out = []
    for lr in LRS:
        x = math.log10(lr)
        v = 1.0 - 0.4 / (1 + math.exp(-(x + 3) * 3)) + 3 * max(0.0, x + 0.5) ** 2
        out.append(v * (1 + noise * rnd.gauss(0, 1)))
    return out


def test_noise_alone_does_not_pass_for_the_turn_up():
    # the smoothed curve's noise on the plateau (~0.07) is close to 10% of the starting
    # loss, and its minimum sits a few sigmas low: a level-only threshold can anchor on a
    # noisy stretch of the plateau, decades before the rise
    level_only_early = 0
    for seed in range(10):
        lr, reason, details = suggest_lr(LRS, _noisy_plateau(seed))
        assert lr is not None and 0.15 <= details["lr_rise"] <= 1.0, (seed, reason)
        assert details["threshold"] > details["loss_min"] + 0.1 * details["loss_start"]
        _, _, level_only = suggest_lr(LRS, _noisy_plateau(seed), noise_sigmas=0.0)
        level_only_early += level_only["lr_rise"] < 0.15
    assert level_only_early >= 1  # the noise term is what makes the difference


def test_early_spike_on_a_noisy_plateau_is_not_the_turn_up():
    for seed in range(5):
        losses = _noisy_plateau(seed, noise=0.1)
        for i in (20, 21, 22):
            losses[i] *= 8  # an early spike, far above any threshold
        lr, reason, details = suggest_lr(LRS, losses)
        assert lr is not None and 0.1 <= details["lr_rise"] <= 1.0, (seed, reason)


def test_flat_optimum_suggests_inside_the_valley_below_the_turn_up():
    # a broad flat valley from lr 1e-3 to 0.1, then a steep rise: the suggestion sits in the
    # valley, SAFETY_FACTOR below the turn-up
    losses = [0.7 - 0.5 / (1 + math.exp(-(math.log10(lr) + 4) * 4)) + 5 * max(0.0, math.log10(lr) + 1) ** 2
              for lr in LRS]
    lr, reason, details = suggest_lr(LRS, losses)
    assert 0.05 <= details["lr_rise"] <= 0.3, details
    assert 1e-3 <= lr <= 0.05 and math.isclose(lr, details["lr_rise"] / SAFETY_FACTOR)
    assert "turns up for good" in reason


def test_sweeps_combine_by_geometric_mean_and_say_when_they_disagree():
    lr, reason = combine_sweeps([{"suggested_lr": 1e-3, "reason": "a"}, {"suggested_lr": 1e-1, "reason": "b"}])
    assert math.isclose(lr, 1e-2)
    assert "disagree by 100x" in reason and "confirm with a short run" in reason
    lr, reason = combine_sweeps([{"suggested_lr": 1e-3, "reason": "a"}, {"suggested_lr": 4e-3, "reason": "b"}])
    assert math.isclose(lr, 2e-3) and "disagree" not in reason
    # a sweep without a suggestion does not drag the others to None
    lr, reason = combine_sweeps([{"suggested_lr": None, "reason": "flat"}, {"suggested_lr": 5e-3, "reason": "b"}])
    assert lr == 5e-3 and "gave none" in reason
    assert combine_sweeps([{"suggested_lr": None, "reason": "flat"}])[0] is None


def test_repeated_sweeps_start_alike_see_other_batches_and_restore_everything():
    exp = _regression_experiment()
    weights = {k: v.clone() for k, v in exp.model.state_dict().items()}
    rng = torch.get_rng_state()
    seen: list[int] = []
    res = lr_range_test(exp.model, exp.optimizer, lambda b: exp.loss(exp.model(b[0]), b[1]), exp.train,
                        num_steps=60, repeats=3, on_step=lambda i, lr, loss: seen.append(i))
    assert len(res.sweeps) == 3
    firsts = [sw["raw_losses"][0] for sw in res.sweeps]
    # the same starting weights on other batches: first losses alike, not identical
    assert len(set(firsts)) == 3 and max(firsts) < 3 * min(firsts)
    assert res.lrs == res.sweeps[0]["lrs"] and res.raw_losses == res.sweeps[0]["raw_losses"]
    each = [sw["suggested_lr"] for sw in res.sweeps]
    assert all(each)
    assert math.isclose(res.suggested_lr, math.exp(sum(math.log(v) for v in each) / 3), rel_tol=1e-9)
    assert seen[0] == 0 and max(seen) >= 120  # progress counts over all sweeps
    for k, v in exp.model.state_dict().items():
        assert torch.equal(v, weights[k])
    assert not exp.optimizer.state and exp.optimizer.param_groups[0]["lr"] == 0.01
    assert torch.equal(torch.get_rng_state(), rng)
    single = lr_range_test(exp.model, exp.optimizer, lambda b: exp.loss(exp.model(b[0]), b[1]), exp.train,
                           num_steps=60, repeats=1)
    assert len(single.sweeps) == 1 and single.suggested_lr == single.sweeps[0]["suggested_lr"]
