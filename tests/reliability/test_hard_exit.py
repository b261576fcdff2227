"""A script that ends the process with ``os._exit`` keeps its report, its exit code and its forked children."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli, run_script

_TRAIN = """
import os, sys, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(128, 4); y = (x[:, 0] > 0).long()
for step in range(40):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
print("final loss", round(loss.item(), 4), flush=True)
"""


@pytest.mark.parametrize("ending", [
    "os._exit(CODE)",  # at module level
    "def main():\n    try:\n        os._exit(CODE)\n    finally:\n        print('finally ran')\nmain()",  # inside a try
    "import threading\nt = threading.Thread(target=os._exit, args=(CODE,))\nt.start(); t.join()",  # another thread
])
@pytest.mark.parametrize("code", [0, 3])
def test_report_and_exit_code_survive_os_exit(tmp_path: Path, ending: str, code: int) -> None:
    result = run_script(tmp_path, _TRAIN + ending.replace("CODE", str(code)))  # asserts the report exists
    assert result.code == code, result.stderr
    assert result.report["facts"]["steps"] == 40
    assert result.report["facts"]["exit_code"] == code
    assert "final loss" in result.stdout
    assert "finally ran" not in result.stdout  # the script's behaviour is unchanged: os._exit skips finally


def test_fail_on_applies_after_os_exit(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(_TRAIN.replace("opt.zero_grad()", "pass") + "os._exit(0)")
    result = run_cli("run", "--fail-on", "warning", str(script))
    assert result.report is not None and "zero-grad.not-cleared" in result.codes("warning")
    assert result.code != 0


def test_forked_child_os_exit_is_left_alone(tmp_path: Path) -> None:
    """A forked worker ending with os._exit (as multiprocessing does) neither reports nor changes its code."""
    source = _TRAIN + (
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print('child exit', os.waitstatus_to_exitcode(status), flush=True)\n"
    )
    result = run_script(tmp_path, source)
    assert result.code == 0
    assert "child exit 7" in result.stdout
    assert result.stderr.count("nndoctor: train.py") <= 1  # one report (the parent's), none from the child


def test_fix_reruns_of_an_os_exit_script_report(tmp_path: Path) -> None:
    """``nndoctor fix`` re-runs the script in child processes: each writes its result before os._exit."""
    import json

    script = tmp_path / "train.py"
    script.write_text(_TRAIN.replace("opt.zero_grad()", "pass") + "os._exit(0)")
    out = tmp_path / "fix.json"
    result = run_cli("fix", "--json", str(out), str(script), timeout=300)
    assert result.code == 0, result.stderr
    tried = json.loads(out.read_text())["remedies"]
    assert tried and all(r["verdict"] != "failed" for r in tried), tried
