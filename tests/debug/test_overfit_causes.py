"""The likely causes `nndoctor overfit` ranks for each symptom carry their catalogue fixes."""

from __future__ import annotations

from nndoctor.debug.overfit import _rank_causes


def _facts(**kw):
    return {"lr": 0.5, "update_ratio": 0.3, "optimizer": "SGD", "steps": 40, "initial_loss": 2.0,
            "final_loss": float("nan"), **kw}


def test_explosion_with_huge_updates_ranks_lr_first_and_names_the_non_finite_loss():
    causes = _rank_causes("explodes", _facts(), [], [], [], (0, 0))
    codes = [c.code for c in causes]
    assert codes[0] == "lr.overfit-batch-lr-too-high" and "numerics.overfit-batch-non-finite-loss" in codes
    assert causes[0].fixes[0] == "Lower the learning rate 10x (to 0.05) or run `nndoctor lr-find`."


def test_rising_loss_with_small_updates_suspects_the_sign():
    causes = _rank_causes("goes-up", _facts(update_ratio=1e-3, final_loss=3.0), [], [], [], (0, 0))
    codes = [c.code for c in causes]
    assert "loss-curve.overfit-batch-flipped-sign" in codes and "lr.overfit-batch-lr-too-high" in codes
    assert "numerics.overfit-batch-non-finite-loss" not in codes


def test_plateau_causes():
    causes = _rank_causes("plateaus", _facts(lr=1e-5, update_ratio=1e-6, final_loss=1.9), [], ["fc1.weight"],
                          [("fc1", 1e-9), ("fc2", 1.0)], (4, 2))
    by_code = {c.code: c for c in causes}
    assert set(by_code) == {"grad-flow.overfit-batch-no-gradient", "grad.overfit-batch-vanishing",
                            "lr.overfit-batch-lr-too-low", "loss-input.overfit-batch-check-output",
                            "labels.overfit-batch-conflicting-labels"}
    assert by_code["lr.overfit-batch-lr-too-low"].fixes[0] == (
        "Raise the learning rate (try 0.0001) or run `nndoctor lr-find`.")
    assert causes[0].code == "labels.overfit-batch-conflicting-labels"  # identical inputs, different labels
