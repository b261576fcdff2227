"""``nndoctor fix`` end to end: a real re-run per remedy, verdicts in JSON, healthy scripts untouched."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from helpers import ROOT

SCRIPT = textwrap.dedent("""
    import torch, torch.nn as nn
    torch.manual_seed(0)
    y = torch.randint(0, 10, (1200,))
    x = torch.randn(10, 16)[y] + torch.randn(1200, 16)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10){softmax})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(2):
        for i in range(0, 1000, 25):
            opt.zero_grad()
            loss = loss_fn(model(x[i:i + 25]), y[i:i + 25])
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x[1000:]).argmax(1) == y[1000:]).float().mean().item()
    print(f"final: accuracy={{acc:.4f}}")
""")


def _fix(tmp_path, softmax: bool):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(softmax=", nn.Softmax(dim=1)" if softmax else ""))
    out = tmp_path / "fix.json"
    proc = subprocess.run([sys.executable, "-m", "nndoctor", "fix", "--json", str(out), "--html",
                           str(tmp_path / "fix.html"), str(script)],
                          capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    return proc, json.loads(out.read_text()) if out.exists() else None


def test_softmax_before_cross_entropy_is_fixed_and_verified(tmp_path):
    proc, data = _fix(tmp_path, softmax=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tried = {r["remedy"]: r for r in data["remedies"]}
    r = tried["drop-output-activation"]
    assert r["verdict"] == "verified", r
    assert r["metric"] == "script:accuracy" and r["after_figures"]["script_metrics"]["accuracy"] > r["before"]
    assert r["after"] == r["after_figures"]["script_metrics"]["accuracy"]  # the compared value, not the figures
    assert r["finding_gone"] and "Remove the final" in r["edit"]["instruction"]
    assert r["edit"]["file"].endswith("train.py") and "+" in r["edit"]["diff"] and "nn.Identity()" in r["edit"]["diff"]
    assert data["runs"] == 2 + len(data["remedies"]) + (data["combined"] is not None)
    assert "verified" in proc.stderr and "Traceback" not in proc.stderr and "nn.Identity()" in proc.stderr
    page = (tmp_path / "fix.html").read_text()
    assert 'class="verified"' in page and page.count("<svg") >= 1 and "with drop-output-activation" in page
    assert '<pre class="diff">' in page and "nn.Identity()" in page


def test_healthy_script_gets_no_remedy_and_runs_once(tmp_path):
    proc, data = _fix(tmp_path, softmax=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert data["remedies"] == [] and data["runs"] == 1 and data["combined"] is None
    assert "nothing to fix" in proc.stderr


def test_missing_script_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nndoctor", "fix", str(tmp_path / "nope.py")],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("nndoctor: error:") and len(proc.stderr.strip().splitlines()) == 1


ARGV_SCRIPT = textwrap.dedent("""
    import sys, torch
    print("script argv:", sys.argv[1:], flush=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    for _ in range(20):
        opt.zero_grad(); loss = torch.nn.functional.cross_entropy(model(x), y); loss.backward(); opt.step()
    print(f"final: loss={loss.item():.4f}")
""")


def test_options_after_the_script_are_nndoctors_and_after_a_separator_the_scripts(tmp_path):
    """``nndoctor fix train.py --max-steps 10 --json F`` (the documented form) and ``-- ARGS`` for the script,
    as with ``nndoctor run``."""
    script = tmp_path / "train.py"
    script.write_text(ARGV_SCRIPT)
    out = tmp_path / "fix.json"
    proc = subprocess.run([sys.executable, "-m", "nndoctor", "fix", str(script), "--max-steps", "10", "--json",
                           str(out), "--", "--lr", "0.1", "--json", "theirs.json"],
                          capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists(), proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["args"] == ["--lr", "0.1", "--json", "theirs.json"]
    assert "script argv: ['--lr', '0.1', '--json', 'theirs.json']" in data["before"]["last_lines"]
    assert data["before"]["steps"] == 10
