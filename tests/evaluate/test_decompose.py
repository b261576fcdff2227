from __future__ import annotations

import numpy as np
import pytest

from nndoctor.evaluate.decompose import decompose, decompose_errors


def test_field_guide_worked_example():
    d = decompose(train=0.27, train_val=0.29, test_val=0.32, test=0.34, irreducible=0.25)
    values = {t.name: round(t.value, 6) for t in d.terms}
    assert values == {"avoidable_bias": 0.02, "variance": 0.02, "distribution_shift": 0.03,
                      "val_overfitting": 0.02}
    assert d.dominant.name == "distribution_shift"
    warnings = [f for f in d.findings() if f.severity.value == "warning"]
    assert [f.code for f in warnings] == ["fit.distribution-shift"]
    assert warnings[0].fixes[0].startswith("Do error analysis on test-val")


def test_one_validation_set_omits_shift_and_says_why():
    d = decompose(train=0.05, train_val=0.20)
    assert {t.name for t in d.terms} == {"avoidable_bias", "variance"}
    assert any("distribution-shift term is omitted" in n for n in d.notes)
    assert any("irreducible" in n and "default" in n for n in d.notes)
    assert d.dominant.name == "variance"


def test_gap_inside_noise_is_not_a_finding():
    rng = np.random.default_rng(0)
    train = rng.random(200) < 0.10
    val = rng.random(200) < 0.11  # same distribution: any gap is noise
    d = decompose_errors(train, val, n_boot=300)
    var = d.term("variance")
    assert var.low < 0 < var.high
    assert not [f for f in d.findings() if f.code == "fit.variance"]


def test_real_gap_is_significant():
    rng = np.random.default_rng(0)
    d = decompose_errors(rng.random(2000) < 0.02, rng.random(2000) < 0.15, n_boot=300)
    assert d.dominant.name == "variance"
    assert d.term("variance").low > 0.08


def test_sizes_give_intervals():
    d = decompose(0.10, 0.12, sizes={"train": 100, "train_val": 100})
    assert d.term("variance").low is not None and not d.term("variance").significant


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_bad_rate_is_rejected_with_value(bad):
    with pytest.raises(ValueError, match="train"):
        decompose(train=bad, train_val=0.1)


def test_validation_overfitting_dominates_when_test_is_far_worse_than_test_val():
    d = decompose(train=0.05, train_val=0.06, test_val=0.07, test=0.20)
    (top,) = [f for f in d.findings() if f.severity.value == "warning"]
    assert top.code == "fit.validation-overfitting" and top.location == "val_overfitting"
    assert top.fixes and top.docs == "docs/findings/fit.validation-overfitting.md"


def test_one_shifted_slice_is_a_finding_with_its_share():
    from nndoctor.evaluate.error_analysis import error_table, slice_findings

    rng = np.random.default_rng(0)
    slices = np.repeat(["day", "dusk", "night"], 300)
    train_val = rng.random(900) < 0.05
    test_val = rng.random(900) < np.where(slices == "night", 0.30, 0.05)
    (f,) = slice_findings(error_table(train_val, slices, test_val, slices))
    assert f.code == "fit.slice-worse-on-test-val" and f.location == "slice night"
    assert f.evidence["contribution"] > 0.5 and f.fixes
