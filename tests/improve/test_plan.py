from __future__ import annotations

from nndoctor.evaluate.decompose import decompose
from nndoctor.findings import Finding, Severity, Step
from nndoctor.improve.plan import build_plan


def test_bias_plan_is_concrete_and_ordered():
    d = decompose(train=0.30, train_val=0.31, irreducible=0.02)
    plan = build_plan(d.findings(), dominant=d.dominant.name, hparams={"hidden": 128, "weight_decay": 1e-2})
    assert plan[0].action == "Make the model bigger: hidden 128 -> 256"
    assert plan[1].action == "Reduce regularisation: weight_decay 0.01 -> 0.0001"
    assert all(p.code == "fit.avoidable-bias" for p in plan)


def test_blocking_bug_comes_first():
    bug = Finding("loss-input.probabilities-into-logit-loss", Severity.ERROR, Step.DEBUG, "softmax into CE",
                  fixes=("remove the softmax",), location="model.3")
    d = decompose(train=0.02, train_val=0.20)
    plan = build_plan([*d.findings(), bug], dominant=d.dominant.name)
    assert plan[0].blocking and "remove the softmax" in plan[0].action
    assert plan[1].action.startswith("Add more training data")


def test_shift_and_val_overfitting_plans():
    d = decompose(0.05, 0.06, 0.20, 0.21)
    assert build_plan(d.findings(), dominant=d.dominant.name)[0].action.startswith("Error analysis on test-val")
    d = decompose(0.05, 0.06, 0.07, 0.30)
    assert "re-draw" in build_plan(d.findings(), dominant=d.dominant.name)[0].action
