"""Figures and verdicts of ``nndoctor fix``."""

from __future__ import annotations

import math

from nndoctor.fix.metrics import Figures, figures_of, judge, script_metrics, script_yardstick
from nndoctor.fix.session import candidates


def test_script_metrics_read_the_last_lines_in_common_spellings():
    out = script_metrics("noise 1\nepoch 3: loss 0.52  test accuracy 0.91\nfinal: val_loss=0.3 acc 87.5%")
    assert out["loss"] == 0.52 and out["accuracy"] == 0.91 and out["val_loss"] == 0.3 and out["acc"] == 0.875
    assert script_yardstick(out) == "acc"  # accuracy-like beats loss-like; the last printed wins
    assert script_yardstick({"epoch": 3.0}) is None


def _fig(acc=None, train=1.0, code=0):
    return Figures(train_loss=train, script={"accuracy": acc} if acc is not None else {}, exit_code=code)


def test_verdict_beyond_noise_is_verified_within_it_no_effect_and_reverse_worse():
    before, repeat = _fig(0.60), _fig(0.62)   # run-to-run difference 0.02 -> threshold 0.06
    assert judge(before, _fig(0.80), repeat).verdict == "verified"
    assert judge(before, _fig(0.64), repeat).verdict == "no-effect"
    assert judge(before, _fig(0.50), repeat).verdict == "worse"
    # a remedy that did nothing (a healthy script's weak finding) or harm is never an edit to make
    assert "not an edit to make" in judge(before, _fig(0.64), repeat).reason
    assert "not an edit to make" in judge(before, _fig(0.50), repeat).reason
    assert judge(before, _fig(0.90), repeat).threshold == 0.06000000000000005 or math.isclose(
        judge(before, _fig(0.90), repeat).threshold, 0.06)


def test_verdict_on_losses_and_failures():
    assert judge(_fig(train=2.0), _fig(train=1.0), None).verdict == "verified"   # lower loss is better
    assert judge(_fig(train=math.inf), _fig(train=1.0), None).verdict == "verified"
    assert judge(_fig(train=1.0), _fig(train=math.inf), None).verdict == "worse"
    assert judge(_fig(0.5), _fig(0.9, code=1), None).verdict == "failed"
    assert judge(_fig(0.5), _fig(0.9), None, error="boom").verdict == "failed"


def test_figures_from_a_report_and_non_finite_curves():
    result = {"exit_code": 0, "report": {"facts": {"steps": 30, "curves": {
        "loss": {"steps": list(range(30)), "values": [2.0] * 27 + [1.0, 1.0, 1.0]},
        "eval_loss": {"steps": [10, 20], "values": [1.5, 1.2]}}}}}
    fig = figures_of(result, "final: accuracy=0.9\n")
    assert fig.train_loss == 1.0 and fig.eval_loss == 1.2 and fig.script == {"accuracy": 0.9} and fig.steps == 30
    result["report"]["facts"]["curves"]["loss"]["values"][-1] = "nan"
    assert figures_of(result, "").train_loss == math.inf
    result["report"]["facts"]["curves"]["loss"]["values"][-1] = None  # never a crash on odd JSON
    assert figures_of(result, "").train_loss == math.inf


def test_candidates_are_root_causes_with_a_remedy_grouped_by_remedy():
    findings = [
        {"code": "loss-input.probabilities-into-logit-loss", "severity": "error", "location": "model.3"},
        {"code": "loss-curve.plateaus", "severity": "warning", "caused_by": ["loss-input.x"]},
        {"code": "preprocessing.unnormalised-pixels", "severity": "warning", "location": "model"},
        {"code": "preprocessing.unnormalised-features", "severity": "warning", "location": "other"},
        {"code": "activation.saturated", "severity": "warning",     # (the rescaling needs a symptom of it)
         "caused_by": [{"code": "preprocessing.unnormalised-pixels", "location": "model"}]},
        {"code": "lr.too-low", "severity": "info"},
        {"code": "fit.overfitting", "severity": "warning"},
    ]
    got = candidates(findings)
    assert [name for name, _ in got] == ["drop-output-activation", "normalise-inputs"]
    assert [f["location"] for f in got[1][1]] == ["model"]   # "other" shows no harm: not tried


def test_a_remedy_whose_loss_rises_again_late_is_not_verified():
    from nndoctor.fix.metrics import gives_back

    falling = [2.0 * 0.97 ** i for i in range(100)]
    late_rise = falling[:70] + [falling[69] + 0.05 * i for i in range(30)]    # falls, then diverges
    noisy = [v + (0.05 if i % 2 else -0.05) for i, v in enumerate(falling)]   # noise is no rise
    assert gives_back(late_rise) and not gives_back(falling) and not gives_back(noisy)
    before, repeat = _fig(0.60), _fig(0.61)
    stable = Figures(train_loss=0.1, script={"accuracy": 0.8}, exit_code=0, curve=falling)
    unstable = Figures(train_loss=0.1, script={"accuracy": 0.8}, exit_code=0, curve=late_rise)
    assert judge(before, stable, repeat).verdict == "verified"
    v = judge(before, unstable, repeat)
    assert v.verdict == "no-effect" and "rises again late" in v.reason
    # a curve that already rose late before the remedy (a cyclic schedule) does not count against it
    cyclic = Figures(train_loss=1.0, script={"accuracy": 0.6}, exit_code=0, curve=late_rise)
    assert judge(cyclic, unstable, repeat).verdict == "verified"
    # nor against a regulariser (weight decay on a memorised regression): its training loss rising back
    # is the penalty at work (nndoctor fix on 100 noisy rows: mse 1.379 -> 0.872, 'no-effect' before)
    assert judge(before, unstable, repeat, regularises=True).verdict == "verified"


def test_a_remedy_that_changes_the_objective_is_not_judged_by_a_printed_loss():
    # the script prints loss = data + penalty; scaling the penalty down makes the printed figure larger
    before = Figures(train_loss=13.9, script={"loss": 13.1}, exit_code=0)
    after = Figures(train_loss=1.6, script={"loss": 23.2}, exit_code=0)
    repeat = Figures(train_loss=13.9, script={"loss": 13.1}, exit_code=0)
    assert judge(before, after, repeat).verdict == "worse"
    changed = judge(before, after, repeat, loss_changed=True)
    assert changed.verdict == "verified" and changed.metric == "train_loss"
    # an accuracy the script prints stays the yardstick
    acc = judge(Figures(script={"loss": 1.0, "acc": 0.5}, exit_code=0),
                Figures(script={"loss": 2.0, "acc": 0.9}, exit_code=0), None, loss_changed=True)
    assert acc.metric == "script:acc" and acc.verdict == "verified"
