"""The run zoo (benchmarks/zoo.py): the generator covers every kind, and a fast subset runs here.

The subset is a contract: healthy zoo runs that train well raise no warning, and mutants
that break training the way a common bug does are named in the right category.
"""

from __future__ import annotations

import functools
from collections import Counter

import pytest

from benchmarks.runzoo.config import sample_config, sample_recipe
from benchmarks.runzoo.data import DATA_KINDS
from benchmarks.runzoo.models import MODELS_FOR
from benchmarks.runzoo.mutations import MUTATIONS, effective, mutate
from benchmarks.runzoo.train import run_config
from benchmarks.zoo import healthy_summary, mutant_summary, plan_mutants

CONFIGS = [sample_config(s) for s in range(300)]
_CHEAP = {"mlp", "mlp_class", "bigram", "autoencoder"}


def _quick(n: int, half: str = "tune") -> list:
    """The first ``n`` cheap, short configs of one calibration half (deterministic)."""
    return [c for c in CONFIGS if c.model in _CHEAP and c.steps <= 150 and c.half == half][:n]


@functools.cache
def _healthy_run(config):
    """``run_config`` of an unmutated config, once per test process: the healthy subset and the
    mutation tests train several of the same parents (runs are seeded by the config)."""
    return run_config(config)


def test_sampler_is_deterministic_and_covers_every_kind():
    assert [sample_config(s) for s in range(20)] == CONFIGS[:20]
    assert {c.data for c in CONFIGS} == set(DATA_KINDS)
    assert {c.model for c in CONFIGS} == {m for ms in MODELS_FOR.values() for m in ms}
    optimizers = Counter(c.optimizer for c in CONFIGS)
    assert set(optimizers) == {"sgd", "sgd_momentum", "adam", "adamw", "rmsprop", "adagrad", "lbfgs"}
    assert {c.schedule for c in CONFIGS} == {"none", "step", "cosine", "onecycle", "warmup", "restarts", "plateau"}
    assert {c.steps for c in CONFIGS} >= {30, 60, 150, 400, 1000}
    assert any(c.float64 for c in CONFIGS) and any(c.zero_grad == "accumulate" for c in CONFIGS)
    assert {c.half for c in CONFIGS} == {"tune", "holdout"}


def test_every_mutation_applies_somewhere_and_only_where_it_can():
    mutants = plan_mutants(CONFIGS, limit=len(CONFIGS))
    assert {m.mutation for m in mutants} == {op.name for op in MUTATIONS}
    lbfgs = next(c for c in CONFIGS if c.optimizer == "lbfgs")
    no_zero_grad = next(op for op in MUTATIONS if op.name == "no-zero-grad")
    with pytest.raises(ValueError, match="does not apply"):
        mutate(lbfgs, no_zero_grad)
    for m in mutants:  # a mutant differs from its parent in what the operator changes, and is named
        assert m.mutation and m != sample_config(m.seed)


def test_effective_counts_only_mutants_that_train_worse():
    assert effective(0.5, 0.9, "")
    assert effective(0.5, float("nan"), "")
    assert effective(0.5, 0.5, "RuntimeError: boom")
    assert not effective(0.5, 0.55, "")


def test_healthy_subset_trains_well_and_raises_no_warning():
    configs = _quick(5)
    assert len(configs) == 5
    outcomes = [_healthy_run(c) for c in configs]
    summary = healthy_summary(outcomes)
    # the sampler makes runs that train well (the zoo discards and counts the others)
    assert summary["kept"] >= 4, [(o.config["seed"], o.init_quality, o.quality) for o in outcomes]
    assert summary["internal_errors"] == 0
    assert summary["tune"]["false_alarm_runs"] == 0, summary["tune"]["per_code"]


@pytest.mark.parametrize("operator", ["freeze-all", "float64-inputs", "no-zero-grad", "detach-hidden"])
def test_mutant_of_a_healthy_parent_is_named_in_its_category(operator):
    op = next(o for o in MUTATIONS if o.name == operator)
    candidates = [c for c in _quick(40) + _quick(40, "holdout") if op.applies(c)]
    for parent in candidates[:4]:  # the first applicable parent that trains well
        parent_outcome = _healthy_run(parent)
        if parent_outcome.trained_well:
            break
    else:
        pytest.fail(f"none of {[c.seed for c in candidates[:4]]} trained well")
    mutant = run_config(mutate(parent, op))
    rows = mutant_summary({parent.seed: parent_outcome}, [mutant])
    row = rows[operator][parent.half]
    assert row["applied"] == 1
    if row["effective"]:  # a mutation that did not hurt this parent cannot be asked to be found
        assert row["detected"] == 1, (mutant.crashed, mutant.findings)
    else:
        assert operator not in ("freeze-all", "float64-inputs"), "a crashing mutant is always effective"


RECIPE_CONFIGS = [sample_recipe(s) for s in range(96)]


def test_recipes_cover_every_kind_and_take_only_the_mutations_they_support():
    from benchmarks.runzoo.recipes import RECIPE_MUTATIONS, RECIPES

    assert {c.recipe for c in RECIPE_CONFIGS} == set(RECIPES)
    assert [sample_recipe(s) for s in range(8)] == RECIPE_CONFIGS[:8]
    assert {c.half for c in RECIPE_CONFIGS} == {"tune", "holdout"}
    assert any(c.steps < 30 for c in RECIPE_CONFIGS) and any(c.float64 for c in RECIPE_CONFIGS)
    assert "warmup_restarts" in {c.schedule for c in RECIPE_CONFIGS}
    assert {c.loss for c in RECIPE_CONFIGS if c.recipe == "padded"} == {"ignore_default", "ignore_pad_module",
                                                                         "ignore_pad_fn"}
    mutants = plan_mutants(RECIPE_CONFIGS, limit=len(RECIPE_CONFIGS))
    assert {m.mutation for m in mutants} <= RECIPE_MUTATIONS and len({m.mutation for m in mutants}) >= 4
    softmax = next(op for op in MUTATIONS if op.name == "softmax-into-ce")
    assert not any(softmax.applies(c) for c in RECIPE_CONFIGS)


@pytest.mark.parametrize("kind", ["gan", "vae", "simclr", "triplet", "distill", "finetune", "curriculum", "mixup",
                                  "weighted", "multitask", "padded", "short"])
def test_a_healthy_recipe_run_trains_well_and_raises_no_warning(kind):
    cfg = min((c for c in RECIPE_CONFIGS if c.recipe == kind and c.half == "tune"), key=lambda c: (c.steps, c.seed))
    out = run_config(cfg)
    assert not out.internal_errors, out.internal_errors
    assert out.trained_well, (out.init_quality, out.quality, out.crashed)
    assert not out.warnings(), out.warnings()


def test_a_frozen_recipe_mutant_is_named_in_its_category():
    parent = next(c for c in RECIPE_CONFIGS if c.recipe == "mixup" and c.half == "tune")
    op = next(o for o in MUTATIONS if o.name == "freeze-all")
    mutant = run_config(mutate(parent, op))
    assert any(f["category"] == "grad-flow" for f in mutant.warnings()), (mutant.crashed, mutant.findings)
