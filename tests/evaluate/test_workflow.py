from __future__ import annotations

import importlib.util
from pathlib import Path

from nndoctor.evaluate.workflow import evaluate_experiment, learning_curve, too_little_data

_spec = importlib.util.spec_from_file_location("exp_digits", Path(__file__).with_name("exp_digits.py"))
exp_digits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exp_digits)


def test_too_little_data_rule():
    assert too_little_data([(0.1, 0.5), (0.25, 0.3), (0.5, 0.2), (1.0, 0.12)]).code == "data.too-little-data"
    assert too_little_data([(0.1, 0.5), (0.25, 0.2), (0.5, 0.1), (1.0, 0.095)]) is None


def test_learning_curve_falls_with_more_data():
    pts = learning_curve(lambda: exp_digits.experiment(n_train=400), epochs=4, fractions=(0.1, 0.5, 1.0))
    assert [p for p, _ in pts] == [0.1, 0.5, 1.0]
    assert pts[0][1] > pts[-1][1]


def test_healthy_experiment_has_no_warning():
    ev = evaluate_experiment(exp_digits.experiment(), epochs=25)
    assert not [f for f in ev.findings if f.severity.value != "info"], [f.message for f in ev.findings]
    assert ev.decomposition.errors["train_val"] < 0.1


def test_variance_scenario_runs_learning_curve():
    ev = evaluate_experiment(exp_digits.experiment(hidden=256, n_train=80, epochs=40), epochs=40,
                             factory=lambda: exp_digits.experiment(hidden=256, n_train=80), n_boot=200)
    assert ev.decomposition.dominant.name == "variance"
    codes = [f.code for f in ev.findings if f.severity.value == "warning"]
    assert "fit.variance" in codes
    assert ev.plan and ev.plan[0].code in ("fit.variance", "data.too-little-data")
