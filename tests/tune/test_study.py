"""Tuning strategy on an analytic objective (fast, no training)."""

from __future__ import annotations

import math

import optuna
import pytest

from nndoctor.tune import study as st
from nndoctor.tune.space import (
    Choice,
    IntUniform,
    LogUniform,
    choice,
    default_space,
    intuniform,
    loguniform,
    narrow,
)


def _objective(params, report):
    # best at lr=1e-2, hidden=128; the lr term dominates (like the guide's sensitivity table)
    value = (math.log10(params["lr"]) + 2) ** 2 + 0.05 * (math.log2(params["hidden"]) - 7) ** 2
    for step in range(3):
        if report(value + (2 - step) * 0.1, step):
            raise optuna.TrialPruned()
    return value


SPACE = {"lr": loguniform(1e-5, 1.0), "hidden": intuniform(8, 1024, log=True)}


@pytest.mark.parametrize("method", ["bayes", "coarse-to-fine", "random", "grid"])
def test_methods_find_good_region(method, tmp_path):
    storage = st.make_storage(None, str(tmp_path / "j.log"))
    study = st.make_study("s", storage, method, SPACE, seed=0)
    result = st.run_trials(study, _objective, SPACE, n_trials=30, method=method)
    counts = result.counts()
    assert counts.get("complete", 0) + counts.get("pruned", 0) == 30
    assert result.best.value < (0.6 if method == "grid" else 0.3)


def test_coarse_to_fine_narrows_around_best(tmp_path):
    study = st.make_study("c2f", st.make_storage(None, str(tmp_path / "j.log")), "coarse-to-fine", SPACE, seed=1)
    result = st.run_trials(study, _objective, SPACE, n_trials=30, method="coarse-to-fine")
    assert len(result.funnel) == 3
    stage, sp = st.narrowed_space(study, SPACE, 30)
    assert stage == 2
    assert sp["lr"].low > SPACE["lr"].low and sp["lr"].high < SPACE["lr"].high
    assert sp["lr"].low < 1e-2 < sp["lr"].high
    imp = st.importance(study, SPACE)
    assert max(imp, key=imp.get) == "lr"
    assert "as the guide expects" in st.compare_with_guide(imp)[0]


def test_diverging_trial_is_failed_with_reason(tmp_path):
    def obj(params, report):
        if params["lr"] > 0.1:
            report(float("nan"), 1)
        return params["lr"]

    study = st.make_study("d", st.make_storage(None, str(tmp_path / "j.log")), "random", SPACE, seed=0)
    st.run_trials(study, obj, SPACE, n_trials=20, method="random")
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and all("diverged" in t.user_attrs["fail_reason"] for t in failed)
    assert len([t for t in study.trials if t.state.is_finished()]) == 20


def test_resume_continues_same_study(tmp_path):
    path = str(tmp_path / "j.log")
    study = st.make_study("r", st.make_storage(None, path), "bayes", SPACE, seed=0)
    st.run_trials(study, _objective, SPACE, n_trials=5, method="bayes")
    again = st.make_study("r", st.make_storage(None, path), "bayes", SPACE, seed=0)
    assert len(again.trials) == 5
    st.run_trials(again, _objective, SPACE, n_trials=9, method="bayes")
    assert len([t for t in again.trials if t.state.is_finished()]) == 9


def test_default_space_follows_sensitivity_table():
    space, why = default_space({"lr": 3e-4, "hidden": 128, "batch_size": 64, "weight_decay": 0.0, "name": "x",
                                "use_bn": True})
    assert isinstance(space["lr"], LogUniform) and space["lr"].low == pytest.approx(1e-5)
    assert isinstance(space["hidden"], IntUniform) and space["hidden"].log
    assert isinstance(space["batch_size"], Choice) and 64 in space["batch_size"].options
    assert "name" not in space and "use_bn" not in space
    assert why[0].startswith("lr: log-uniform")


def test_narrow_and_bad_ranges():
    assert narrow(choice([1, 2, 3]), [2, 2]).options == (2,)
    with pytest.raises(ValueError, match="0 < low < high"):
        loguniform(0, 1)
