"""lr_findings: each comparison of the current lr with the range test gives its catalogue code and fixes."""

from __future__ import annotations

from nndoctor.tune.lr_find import LRFindResult, lr_findings


def _result(suggested: float | None, **kw) -> LRFindResult:
    return LRFindResult(lrs=[1e-5, 1e-3, 1e-1], losses=[2.0, 1.0, 9.0], raw_losses=[2.0, 1.0, 9.0],
                        suggested_lr=suggested, reason="the loss never fell", **kw)


def test_no_decrease_points_to_a_bug():
    (f,) = lr_findings(_result(None), current_lr=0.01).findings
    assert f.code == "lr.range-test-no-decrease" and f.severity.value == "info"
    assert f.fixes == ("Run `nndoctor overfit EXP`: a model whose loss never falls usually has a bug.",)


def test_far_from_the_suggestion_is_advice_with_the_suggested_lr():
    (f,) = lr_findings(_result(3e-4), current_lr=1e-6).findings
    assert f.code == "lr.range-test-suggestion" and f.severity.value == "info" and "below" in f.message
    assert f.fixes == ("Try lr 0.0003, then confirm with a short run.",)
    assert lr_findings(_result(3e-4), current_lr=5e-4).findings == []  # close to it: nothing to say


def test_above_divergence_is_a_warning():
    (f,) = lr_findings(_result(3e-3, stopped="diverged"), current_lr=0.5).findings
    assert f.code == "lr.above-divergence" and f.severity.value == "warning"
    assert f.fixes == ("Use lr 0.003 (the range test's suggestion).",)
