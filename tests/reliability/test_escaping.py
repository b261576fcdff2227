"""User strings reach the terminal (rich markup) and the HTML report verbatim, never as markup.

A module named ``evil[/]`` or a script path with ``[/x]`` used to raise rich's MarkupError at the
end of the run: no summary, no JSON, no HTML, exit 1.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
from helpers import run_cli
from rich.console import Console

from nndoctor.findings import Finding, InternalError, Report, Severity, Step
from nndoctor.report.html import render_html
from nndoctor.report.terminal import finding_line, render_report

NASTY = ["evil[/]", "head[/red]", "[/x]", "[bold]x", "[link=https://e.x]y[/link]", "a\\", "w[/]x\\[/]",
         "<script>alert(1)</script>", "&amp; \"q\" 'q'"]

BUGGY = """
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential()
model.add_module("evil[/]", nn.Linear(4, 16))
model.add_module("act[/]", nn.ReLU())
model.add_module("head[/red]", nn.Linear(16, 1))
nn.init.constant_(model[0].bias, -20.0)  # every unit of evil[/] is dead
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(128, 4), torch.randn(128, 1)
for step in range(30):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
"""


def _report(s: str) -> Report:
    f = Finding(code="activation.dead-relu", severity=Severity.WARNING, step=Step.DEBUG, message=f"msg {s}",
                evidence={"layer": s, f"key {s}": [s, 1.5]}, fixes=(f"fix {s}",), location=s, first_step=2)
    facts = {"steps": 3, "script": f"/tmp/{s}/train.py", "duration_s": 1.0,
             "models": [{"name": s, "class": s, "parameters": 3}],
             "optimizers": [{"name": s, "class": "SGD", "lr": 0.1}],
             "curves": {"loss": {"steps": [1, 2, 3], "values": [1.0, 0.5, 0.25]}},
             "grad_norms": {s: {"steps": [1, 2, 3], "values": [1.0, 0.1, 0.01]}},
             "activation_health": {s: 1.0},
             "evaluation": {"error_analysis": [{"slice": s, "train_val_error": 0.1, "test_val_error": 0.2,
                                                "contribution": 0.5, "shifted": True}],
                            "plan": [{"rank": 1, "action": f"do {s}", "because": s, "blocking": False}]}}
    return Report(findings=[f], facts=facts, internal_errors=[InternalError(probe=s, error=f"err {s}")])


@pytest.mark.parametrize("s", NASTY)
def test_terminal_prints_user_strings_verbatim(s):
    console = Console(file=io.StringIO(), width=400, color_system=None)
    report = _report(s)
    render_report(report, console, title=f"nndoctor: {s}")
    console.print(finding_line(report.findings[0]))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    for text in (f"msg {s}", f"fix {s}", f"err {s}", f"nndoctor: {s}", f"{s}, step 2"):
        assert text in out, (text, out)


@pytest.mark.parametrize("s", NASTY)
def test_html_escapes_user_strings(s):
    from html import escape

    page = render_html(_report(s), title=s)
    assert "<script" not in page.lower()
    assert escape(f"msg {s}") in page and escape(f"fix {s}") in page and escape(f"do {s}") in page
    if "<" in s:
        assert s not in page  # only its escaped form


def test_run_with_brackets_in_module_names_and_paths(tmp_path: Path):
    folder = tmp_path / "dir[" / "x]"  # the path contains "[/x]"
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(textwrap.dedent(BUGGY))
    html = folder / "r[" / "red].html"
    out = tmp_path / "r.json"
    res = run_cli("run", "--json", str(out), "--html", str(html), str(folder / "train.py"))
    assert res.code == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "MarkupError" not in res.stderr
    assert "model.evil[/]" in res.stderr
    report = json.loads(out.read_text())
    assert any(f["location"] == "model.evil[/]" for f in report["findings"])
    assert "model.evil[/]" in html.read_text()


def test_run_no_model_message_with_brackets_in_the_script_path(tmp_path: Path):
    folder = tmp_path / "a[" / "x]"
    folder.mkdir(parents=True)
    (folder / "noop.py").write_text("print('nothing to train')\n")
    res = run_cli("run", str(folder / "noop.py"))
    assert res.code == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert f"no model was trained by {folder / 'noop.py'}" in res.stderr.replace("\n", "")
