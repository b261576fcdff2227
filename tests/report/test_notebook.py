"""Jupyter: a watch session and a Report render as HTML, and findings point at the notebook cell."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import nndoctor
from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.monitor import notebook
from nndoctor.monitor.notebook import cell_label, code_site

ROOT = Path(__file__).parent.parent.parent


def _check_fragment(html: str) -> None:
    assert html.startswith("<div") and html.endswith("</div>")
    for banned in ("<html", "<body", "<head", "<script", "http://", "https://", "<link"):
        assert banned not in html, banned
    style = html[html.index("<style>") + 7:html.index("</style>")]
    rules = [r for r in style.split("}") if "{" in r]
    # every rule is scoped to the report: the notebook's own page keeps its styles
    assert all(all(sel.strip().startswith(".nndoctor-report") for sel in r.split("{")[0].split(","))
               for r in rules), [r for r in rules if "nndoctor-report" not in r.split("{")[0]][:3]


def test_report_repr_html_is_a_scoped_fragment():
    f = Finding("loss-input.probabilities-into-logit-loss", Severity.ERROR, Step.DEBUG, "softmax <into> CE",
                {"site": "Cell In[3], line 5"}, ("remove the softmax",), "Cell In[3], line 5", 1, 2)
    report = Report(findings=[f], facts={"steps": 3, "grad_norms": {"fc1": {"steps": [1, 2], "values": [1.0, 0.5]}}})
    html = report._repr_html_()
    _check_fragment(html)
    assert "softmax &lt;into&gt; CE" in html and "Cell In[3], line 5" in html
    assert "Gradient norm per layer" in html


def test_repr_html_never_raises(monkeypatch):
    import nndoctor.report.html as html_mod

    def broken(*a, **k):
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(html_mod, "render_fragment", broken)
    html = Report(findings=[], facts={})._repr_html_()
    assert html.startswith("<pre>") and "No problems found" in html


def test_watch_session_repr_html_in_process():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with nndoctor.watch(model, opt) as doctor:
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(torch.softmax(model(x), dim=1), y).backward()
            opt.step()
        running = doctor._repr_html_()
    assert "session running" in running
    html = doctor._repr_html_()
    assert "session ended" in html and "step 6" in html
    _check_fragment(html[html.index('<div class="nndoctor-report">'):-len("</div>")])
    assert "probabilities-into-logit-loss" in html


def test_cell_labels_for_ipython_file_names(monkeypatch):
    assert code_site("/home/u/train.py", 41) == "train.py:41"
    assert code_site("<ipython-input-7-0123abcd>", 2) == "Cell In[7], line 2"
    # Jupyter (ipykernel): the file name is a temporary file; IPython maps it to the execution count
    shell = types.SimpleNamespace(compile=types.SimpleNamespace(
        format_code_name=lambda name: ("Cell", "In[4]") if name == "/tmp/ipykernel_1/abc.py" else None))
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setattr(notebook, "_LABELS", {})
    assert cell_label("/tmp/ipykernel_1/abc.py") == "Cell In[4]"
    assert code_site("/tmp/ipykernel_1/abc.py", 3) == "Cell In[4], line 3"
    assert code_site("/tmp/ipykernel_1/other.py", 3) == "other.py:3"


NOTEBOOK_CELLS = [
    "import os, sys\nsys.path.insert(0, os.environ['NNDOCTOR_ROOT'])\n"
    "import torch, torch.nn as nn, torch.nn.functional as F, nndoctor\ntorch.manual_seed(0)",
    "model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))",
    "with nndoctor.watch(model, opt) as doctor:\n"
    "    for _ in range(5):\n"
    "        opt.zero_grad()\n"
    "        loss = F.cross_entropy(torch.softmax(model(x), dim=1), y)\n"
    "        loss.backward()\n"
    "        opt.step()\n"
    "doctor",
    "print([f.location for f in doctor.findings])\ndoctor.report()",
]


@pytest.mark.slow
def test_watch_and_report_render_in_a_real_jupyter_kernel(tmp_path):
    """A real kernel (nbclient + ipykernel): the cell output is our HTML; sites name the cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    os.environ["NNDOCTOR_ROOT"] = str(ROOT)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    watch_out = [o for o in nb.cells[2].outputs if o.get("output_type") == "execute_result"]
    assert watch_out and "text/html" in watch_out[0]["data"]
    html = watch_out[0]["data"]["text/html"]
    assert 'class="nndoctor-report"' in html and "session ended" in html
    report_out = [o for o in nb.cells[3].outputs if o.get("output_type") == "execute_result"]
    assert report_out and 'class="nndoctor-report"' in report_out[0]["data"]["text/html"]
    printed = "".join(o.get("text", "") for o in nb.cells[3].outputs if o.get("output_type") == "stream")
    assert "Cell In[3], line 4" in printed, printed  # the loss line of the third cell
    assert "Cell In[3], line 4" in html


def test_findings_name_the_cell_for_code_run_from_an_ipython_cell():
    """Code compiled under IPython's cell file name: the finding's site is the cell, not '<...>'."""
    src = ("with nndoctor.watch(model, opt) as doctor:\n"
           "    for _ in range(3):\n"
           "        opt.zero_grad()\n"
           "        loss = F.cross_entropy(torch.softmax(model(x), dim=1), y)\n"
           "        loss.backward()\n"
           "        opt.step()\n")
    torch.manual_seed(0)
    scope = {"nndoctor": nndoctor, "torch": torch, "F": nn.functional,
             "model": nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)),
             "x": torch.randn(64, 8), "y": torch.randint(0, 3, (64,))}
    scope["opt"] = torch.optim.SGD(scope["model"].parameters(), lr=0.1)
    exec(compile(src, "<ipython-input-9-0123abcd>", "exec"), scope)
    found = scope["doctor"].findings
    assert [f.location for f in found if f.code == "loss-input.probabilities-into-logit-loss"] == [
        "Cell In[9], line 4"]
