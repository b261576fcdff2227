"""HTML rendering of report objects: self-contained, escaped, every finding present."""

from __future__ import annotations

from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.report.html import render_html
from nndoctor.report.svg import line_chart, stacked_bar


def _report():
    return Report(
        findings=[
            Finding("loss-input.probabilities-into-logit-loss", Severity.ERROR, Step.DEBUG,
                    "softmax <into> CE", {"shape": (32, 10)}, ("remove the softmax",), "model.3", 1, 8),
            Finding("fit.variance", Severity.WARNING, Step.EVALUATE, "variance 0.2", {}, ("more data",), "variance"),
        ],
        facts={"steps": 10, "curves": {"loss": {"steps": [1, 2, 3], "values": [2.0, 1.0, None]}},
               "evaluation": {"decomposition": {"errors": {"train": 0.1, "train_val": 0.3}, "irreducible": 0.0,
                                                "terms": [{"name": "variance", "value": 0.2, "low": 0.1,
                                                           "high": 0.3, "significant": True}],
                                                "dominant": "variance", "notes": ["n"]},
                              "plan": [{"rank": 1, "action": "Add data", "because": "b", "code": "fit.variance",
                                        "blocking": False}]},
               "lr_find": {"lrs": [1e-5, 1e-3, 1e-1], "losses": [2, 1, 3], "suggested_lr": 1e-3}})


def test_self_contained_and_complete():
    html = render_html(_report())
    assert html.startswith("<!DOCTYPE html>")
    for banned in ("http://", "https://", "<script", "<link"):
        assert banned not in html
    assert "softmax &lt;into&gt; CE" in html and "<into>" not in html
    assert html.count('class="card finding"') == 2
    assert "What is wrong" in html and "remove the softmax" in html
    assert html.count("<svg") == 3  # loss curve, decomposition bar, LR range test
    assert 'name="viewport"' in html


def test_no_findings_headline():
    html = render_html(Report(findings=[], facts={}))
    assert "No problems found" in html


def test_svg_helpers_handle_empty_and_nonfinite():
    assert "no data" in line_chart({"a": ([], [])}, title="t")
    svg = line_chart({"a": ([1, 2, 3], [1.0, float("nan"), 0.5])}, log_y=True, markers=[(2, "x")])
    assert svg.startswith("<svg") and "x</text>" in svg
    assert stacked_bar([("a", 0.1), ("b", -1.0)]).count("<rect") == 4
