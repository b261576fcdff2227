"""The data part of `nndoctor start`: each rule on the measured statistics gives its catalogue code."""

from __future__ import annotations

from nndoctor.start.review import _data


def _codes(**stats):
    return {f.code: f for f in _data({"examples_read": 2000, "kind": "tabular", **stats})}


def test_input_scale_rules():
    far = _codes(mean=120.0, std=60.0, min=0.0, max=255.0)
    assert far["preprocessing.start-inputs-not-normalised"].fixes[0].startswith("Standardise each input feature")
    rough = _codes(mean=2.0, std=1.5, min=-1.0, max=6.0)
    assert set(rough) == {"preprocessing.start-inputs-roughly-normalised"}
    assert _codes(mean=0.0, std=1.0, min=-3.0, max=3.0) == {}


def test_nonfinite_constant_and_target_rules():
    found = _codes(nonfinite=3, mean=0.0, std=1.0, min=-3.0, max=3.0, constant_features=4,
                   target_mean=5e4, target_std=2e4)
    assert found["preprocessing.start-nonfinite-inputs"].severity.value == "error"
    assert {"preprocessing.start-constant-features", "preprocessing.start-targets-not-scaled"} <= set(found)


def test_dataset_size_and_classes_rules():
    counts = {i: 100 for i in range(30)}
    found = _codes(train_size=60_000, class_counts=counts)
    assert {"data.start-simplify", "data.start-fewer-classes"} <= set(found)
    assert "data.start-class-imbalance" not in found
    skewed = _codes(class_counts={0: 1900, 1: 100}, examples_read=2000)
    assert skewed["data.start-class-imbalance"].severity.value == "warning"


def test_init_scale_far_from_he_names_the_scheme_and_layer():
    import types

    import torch
    from torch import nn

    from nndoctor.start.review import _init

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
    nn.init.normal_(model[0].weight, std=5.0)  # He std for fan_in 256 is ~0.088: ~57x too large
    (f,) = _init(types.SimpleNamespace(model=model), {"relu"})
    assert f.code == "init.start-scale" and f.location == "0" and f.severity.value == "warning"
    assert f.fixes == ("Use nn.init.kaiming_normal_(weight, nonlinearity='relu') for 0.",)
    nn.init.kaiming_normal_(model[0].weight, nonlinearity="relu")
    nn.init.kaiming_normal_(model[2].weight, nonlinearity="relu")
    assert _init(types.SimpleNamespace(model=model), {"relu"}) == []


def test_a_large_model_is_advice():
    import types

    from torch import nn

    from nndoctor.start.review import _architecture

    big = nn.Sequential(nn.Linear(2300, 2300))
    found = _architecture(types.SimpleNamespace(model=big), "tabular", set(), None, ())
    assert [f.code for f in found] == ["fit.start-large-model"] and found[0].severity.value == "info"
    assert _architecture(types.SimpleNamespace(model=nn.Linear(10, 2)), "tabular", set(), None, ()) == []
