"""Dataset checks on real (scikit-learn digits) and generated data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from nndoctor.evaluate.balance import class_balance
from nndoctor.evaluate.duplicates import find_duplicates
from nndoctor.evaluate.error_analysis import error_table, slice_findings
from nndoctor.evaluate.labels import find_label_issues, out_of_sample_probs
from nndoctor.evaluate.shift import domain_shift


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    return x[perm], y[perm]


def test_label_noise_30_percent_flips(digits):
    x, y = digits
    clean = find_label_issues(out_of_sample_probs(x, y), y)
    assert clean.noise_rate < 0.05 and clean.finding() is None
    rng = np.random.default_rng(1)
    flip = rng.random(len(y)) < 0.30
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10
    result = find_label_issues(out_of_sample_probs(x, noisy), noisy)
    assert flip[result.issues].mean() >= 0.80  # precision of the flagged examples
    assert flip[result.issues].sum() / flip.sum() >= 0.5  # and they are not a token few
    assert abs(result.noise_rate - flip.mean()) <= 0.10
    f = result.finding()
    assert f.code == "labels.noisy" and f.evidence["top_indices"]


def test_label_issue_input_validation():
    with pytest.raises(ValueError, match="labels must be in"):
        find_label_issues(np.full((3, 2), 0.5), np.array([0, 1, 2]))


def test_duplicates_exact_and_near(digits):
    x, _ = digits
    train, test = x[:1200], x[1200:]
    assert not find_duplicates(train, test).shared
    leaked = np.concatenate([test, train[:30], train[30:50] * 1.001 + 0.01])
    res = find_duplicates(train, leaked)
    assert len(res.exact) == 30 and len(res.near) == 20
    f = res.finding()
    assert f.code == "data.train-test-leakage" and f.severity.value == "warning"
    assert f.evidence["n_shared"] == 50


def test_duplicates_scale_linear():
    rng = np.random.default_rng(0)
    big = rng.random((200_000, 8)).astype(np.float32)
    res = find_duplicates(big[:100_000], np.concatenate([big[100_000:], big[:5]]))
    assert len(res.exact) == 5


def test_shift_detected_and_quiet(digits):
    x, y = digits
    train, test = x[:1200], x[1200:]
    quiet = domain_shift(train, test)
    assert not quiet.shifted and quiet.finding() is None
    inverted = domain_shift(train, 16 - test)
    assert inverted.shifted and inverted.auc > 0.9
    assert inverted.finding().code == "data.distribution-shift"
    mix = domain_shift(train, test[y[1200:] < 4])
    assert mix.shifted


def test_class_imbalance_with_per_class_error():
    y = np.array([0] * 200 + [1] * 10)
    err = np.concatenate([np.zeros(200), np.ones(10) * 0.6 > 0.5])
    bal = class_balance(y, err)
    assert bal.ratio == 20
    f = bal.finding()
    assert f.code == "data.class-imbalance" and "minority-class error 1.00" in f.message
    assert class_balance(np.array([0, 1] * 50)).finding() is None


def test_error_table_marks_shifted_slice():
    rng = np.random.default_rng(0)
    tv_s = rng.choice(["day", "night"], 2000)
    tv_e = rng.random(2000) < 0.01
    te_s = rng.choice(["day", "night"], 2000)
    te_e = np.where(te_s == "night", rng.random(2000) < 0.10, rng.random(2000) < 0.01)
    rows = error_table(tv_e, tv_s, te_e, te_s)
    assert rows[0].slice == "night" and rows[0].shifted
    assert not rows[1].shifted
    assert [f.location for f in slice_findings(rows)] == ["slice night"]
