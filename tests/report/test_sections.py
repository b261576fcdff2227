"""Typed report sections: the checks record their per-layer series, the report draws them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from nndoctor.findings import SCHEMA_VERSION, Report
from nndoctor.monitor.observer import Observer
from nndoctor.monitor.sampling import Schedule
from nndoctor.report.html import render_html
from nndoctor.report.sections import (
    MAX_LAYERS,
    MAX_POINTS,
    ActivationHealth,
    GradientNorms,
    Series,
    TrainingCurves,
    read,
    sections_of,
)
from nndoctor.report.sections_eval import Evaluation, LrRangeTest, Tuning

GRAD_CHART = "Gradient norm per layer"
ACT_CHART = "Dead or saturated units per layer"


def _run(model: nn.Module, steps: int, opt_cls=torch.optim.SGD, schedule: Schedule | None = None,
         width: int = 20) -> Report:
    torch.manual_seed(1)
    opt = opt_cls(model.parameters(), lr=0.05)
    x, y = torch.randn(256, width), torch.randint(0, 4, (256,))
    with Observer(models=[model], optimizers=[opt], discover=False, schedule=schedule) as obs:
        for i in range(steps):
            j = (i * 32) % 224
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[j:j + 32]), y[j:j + 32]).backward()
            opt.step()
    return obs.report()


class _Net(nn.Module):  # a subclass with functional activations (the other coding style)
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(20, 32), nn.Linear(32, 32), nn.Linear(32, 4)

    def forward(self, x):
        return self.out(torch.sigmoid(self.fc2(torch.relu(self.fc1(x)))))


@pytest.mark.parametrize("style", ["sequential", "subclass"])
def test_checks_record_per_layer_series_and_the_html_draws_them(style):
    torch.manual_seed(0)
    model = (nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
             if style == "sequential" else _Net())
    report = _run(model, 60, torch.optim.SGD if style == "sequential" else torch.optim.Adam)
    grads = report.section(GradientNorms)
    acts = report.section(ActivationHealth)
    assert grads is not None and acts is not None
    names = ["model.0", "model.2", "model.4"] if style == "sequential" else ["model.fc1", "model.fc2", "model.out"]
    assert list(grads.layers) == names  # forward order
    for s in grads.layers.values():
        assert s.steps and len(s.steps) == len(s.values) and all(v > 0 for v in s.values)
    assert set(acts.layers) == {names[0], names[1]}  # hidden activations; the output layer has none
    assert {layer.activation for layer in acts.layers.values()} == {"relu", "sigmoid" if style == "subclass"
                                                                    else "tanh"}
    assert all(0.0 <= v <= 1.0 for layer in acts.layers.values() for v in layer.shares)
    html = render_html(report)
    assert GRAD_CHART in html and ACT_CHART in html
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert set(data["facts"]["grad_norms"]) == set(names)
    assert data["facts"]["activation_health"][names[0]]["activation"] == "relu"


def test_series_are_recorded_only_on_sampled_steps_and_stay_bounded():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
    report = _run(model, 400, schedule=Schedule(dense=4, every=3))
    grads = report.section(GradientNorms)
    steps = grads.layers["model.0"].steps
    assert 0 < len(steps) <= MAX_POINTS
    assert steps[0] == 1 and steps[-1] > 300 and steps == sorted(set(steps))  # thinned: start and end kept
    plain = _run(nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4)), 40,
                 schedule=Schedule(dense=2, every=1000))
    assert plain.section(GradientNorms).layers["model.0"].steps == [1, 2]  # nothing between sampled steps


def test_recorders_are_bounded_in_layers_and_points():
    g = GradientNorms()
    for step in range(1, 1000):
        g.record(step, [f"l{i}" for i in range(MAX_LAYERS + 10)], [1.0] * (MAX_LAYERS + 10))
    assert len(g.layers) == MAX_LAYERS and all(len(s.steps) <= MAX_POINTS for s in g.layers.values())
    a = ActivationHealth()
    for step in range(1, 1000):
        a.record("fc1", "relu", step, 0.5)
    a.record("fc1", "tanh", 1000, 0.9)  # another activation on the same layer's output
    assert len(a.layers["fc1"].shares) <= MAX_POINTS and a.layers["fc1 (tanh)"].share == 0.9


def test_sections_round_trip_through_json_and_read_tolerates_bad_data():
    sections = [
        TrainingCurves({"loss": Series([1, 2], [2.0, None]), "lr": Series([1, 2], [0.1, 0.05])}),
        GradientNorms({"fc1": Series([1, 51], [0.1, 0.2])}),
        LrRangeTest([1e-5, 1e-3], [2.0, 1.0], 1e-3, {"reason": "steepest"}),
        Evaluation({"terms": []}, [], [{"action": "a", "because": "b", "blocking": False}], {"metric": "loss"}),
        Tuning([0.5, 0.4], {"lr": 0.9}, {"lr": 0.01}, None),
    ]
    acts = ActivationHealth()
    acts.record("fc1", "relu", 3, 0.25)
    sections.append(acts)
    facts = {s.key: json.loads(json.dumps(s.to_dict())) for s in sections}
    for s in sections:
        back = read(facts, type(s))
        assert back is not None and back.to_dict() == s.to_dict(), type(s).__name__
    assert [type(s).__name__ for s in sections_of(facts)] == [
        "TrainingCurves", "GradientNorms", "ActivationHealth", "Evaluation", "LrRangeTest", "Tuning"]
    # the short form {layer: share}, and garbage, never raise
    assert read({"activation_health": {"fc1": 0.7}}, ActivationHealth).layers["fc1"].share == 0.7
    assert read({"grad_norms": "nonsense"}, GradientNorms).layers == {}
    html = render_html(Report(facts={"grad_norms": {"a": {"steps": "x", "values": 3}}, "curves": [1]}))
    assert "No problems found" in html


def test_producers_json_layout_unchanged_by_the_sections():
    """The evaluation section writes the producer's layout back in the same key order."""
    ev = {"decomposition": {"terms": []}, "actionable_term": "variance", "sizes": {"train": 3},
          "metric": "error rate", "error_analysis": [], "plan": [], "findings": []}
    assert list(Evaluation.from_dict(ev).to_dict()) == [k for k in ev if k != "error_analysis"]


def test_demo_like_diagnose_html_has_the_per_layer_charts(tmp_path):
    """The demo's experiment (examples/buggy_experiment.py) through diagnose, fewer epochs."""
    from rich.console import Console

    from nndoctor.diagnose import diagnose
    from nndoctor.report.html import write_html

    exp = str(Path(__file__).parent.parent.parent / "examples" / "buggy_experiment.py")
    result = diagnose(exp, epochs=3, console=Console(file=open(os.devnull, "w")))
    path = tmp_path / "report.html"
    write_html(result.report, str(path))
    html = path.read_text()
    assert GRAD_CHART in html and ACT_CHART in html
    grads = result.report.section(GradientNorms)
    assert list(grads.layers) == ["model.0", "model.2", "model.4"]
