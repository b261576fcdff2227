"""Root cause first in the terminal and HTML reports: the headline is the cause, symptoms sit under it."""

from __future__ import annotations

import io
import re

from rich.console import Console

from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.report.html import render_html
from nndoctor.report.terminal import finding_line, render_report

FACTS = {"steps": 120, "models": [{"name": "net", "class": "Net", "parameters": 8970}],
         "optimizers": [{"name": "opt", "class": "SGD", "lr": 5.0, "models": ["net"]}]}


def _f(code: str, severity: Severity, location: str, step: int, message: str) -> Finding:
    return Finding(code, severity, Step.DEBUG, message, {"n": 1}, (f"fix {code}",), location, step)


def _report() -> Report:
    # arrival order as a run sees them: the dead ReLUs long before the lr check has enough steps
    return Report(findings=[
        _f("activation.dead-relu", Severity.WARNING, "net.fc1", 4, "90% of net.fc1 dead"),
        _f("loss-curve.plateaus", Severity.WARNING, "loss", 60, "the loss is flat"),
        _f("data.class-imbalance", Severity.WARNING, "training targets", 100, "one class is 90%"),
        _f("lr.too-high", Severity.ERROR, "opt", 101, "lr 5.0 is too high"),
        _f("fit.model-at-chance", Severity.INFO, "training", 121, "at chance"),
    ], facts=FACTS)


def _text(report: Report) -> str:
    buf = io.StringIO()
    render_report(report, Console(file=buf, width=120, color_system=None, force_terminal=False))
    return buf.getvalue()


def test_terminal_table_and_list_start_with_the_root_cause_and_indent_its_symptoms() -> None:
    out = _text(_report())
    rows = [m.group(1) for m in re.finditer(r"│ \w+\s+│ ([ -]*[a-z-]+\.[a-z-]+)", out)]
    assert rows == ["lr.too-high", "  - activation.dead-relu", "  - loss-curve.plateaus", "  - fit.model-at-chance",
                    "data.class-imbalance"]
    listed = re.findall(r"^\s*(\d+(?:\.\d+)?)\.? ([a-z-]+\.[a-z-]+)  ", out, flags=re.M)
    assert listed == [("1", "lr.too-high"), ("1.1", "activation.dead-relu"), ("1.2", "loss-curve.plateaus"),
                      ("1.3", "fit.model-at-chance"), ("2", "data.class-imbalance")]
    assert "      symptom of: lr.too-high (opt)\n" in out
    assert "symptom of: activation.dead-relu (net.fc1), lr.too-high (opt)\n" in out
    # two root causes: listed under the first, both named
    assert "symptom of: activation.dead-relu (net.fc1), loss-curve.plateaus (loss), data.class-imbalance" in out
    assert out.index("lr 5.0 is too high") < out.index("90% of net.fc1 dead") < out.index("one class is 90%")
    assert "   fix 1: fix lr.too-high" in out and "      fix 1: fix activation.dead-relu" in out


def test_live_lines_are_unchanged() -> None:
    f = _report().findings[0]
    assert finding_line(f).plain.startswith("nndoctor warning activation.dead-relu [net.fc1, step 4]: 90%")
    assert not re.search("symptom", finding_line(_report().linked()[0]).plain)


def test_html_headline_is_the_root_cause_with_its_symptoms_linked() -> None:
    html = render_html(_report())
    head = html[html.index('<section class="headline'):html.index("</section>")]
    assert "lr 5.0 is too high" in head and "90% of net.fc1 dead" not in head
    assert "It explains" in head and "activation.dead-relu" in head
    cards = re.findall(r'<div class="card finding" id="([^"]+)"( data-symptom-of="([^"]+)")?>', html)
    ids = [c[0] for c in cards]
    assert [i.rsplit("-", 1)[0] for i in ids] == ["lr.too-high", "activation.dead-relu", "loss-curve.plateaus",
                                                  "fit.model-at-chance", "data.class-imbalance"]
    lr_id = ids[0]
    dead = cards[1]
    assert dead[2] == lr_id                                     # the symptom's card points at its cause's card
    assert f'Symptom of: <a href="#{lr_id}">' in html
    assert "Root cause of:" in html
    assert cards[4][1] == ""                                    # another root cause: no link
