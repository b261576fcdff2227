"""The guided commands through the real CLI: results, JSON, exit codes, one-line usage errors."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
from helpers import run_cli

from nndoctor.cli import main

HEADER = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import nndoctor

g = torch.Generator().manual_seed(0)
X = torch.randn(256, 10, generator=g)
Y = (X[:, 0] + X[:, 1] > 0).long()
"""

GOOD = HEADER + """
def experiment(lr: float = 3e-3, hidden: int = 32, softmax: bool = False) -> nndoctor.Experiment:
    torch.manual_seed(0)
    layers = [nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, 2)]
    model = nn.Sequential(*layers, *([nn.Softmax(dim=1)] if softmax else []))
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                               optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                               train=DataLoader(TensorDataset(X[:200], Y[:200]), batch_size=32, shuffle=True),
                               train_val=DataLoader(TensorDataset(X[200:], Y[200:]), batch_size=64))
"""


def _write(tmp_path: Path, text: str, name: str = "exp.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_start_and_overfit_on_a_healthy_experiment(tmp_path):
    exp = _write(tmp_path, GOOD)
    out = tmp_path / "start.json"
    res = run_cli("start", exp, "--json", str(out))
    assert res.code == 0, res.stderr[-2000:]
    report = _json(out)
    assert report["facts"]["hyperparameters"] == {"lr": 3e-3, "hidden": 32, "softmax": False}
    assert not [f for f in report["findings"] if f["severity"] != "info"]
    out = tmp_path / "overfit.json"
    res = run_cli("overfit", exp, "--json", str(out))
    assert res.code == 0, res.stderr[-2000:]
    data = _json(out)
    assert data["passed"] is True and data["symptom"] is None
    assert "PASS" in res.stderr


def test_overfit_fails_with_the_symptom_and_cause_of_a_softmax_bug(tmp_path):
    exp = _write(tmp_path, GOOD)
    out = tmp_path / "overfit.json"
    res = run_cli("overfit", exp, "--set", "softmax=true", "--max-steps", "300", "--json", str(out))
    assert res.code == 1, res.stderr[-2000:]
    data = _json(out)
    assert data["passed"] is False and data["symptom"] == "plateaus"
    assert data["causes"][0]["code"].startswith("loss-input.")
    assert "FAIL" in res.stderr and "plateaus" in res.stderr


def test_lr_find_json_and_baseline(tmp_path):
    exp = _write(tmp_path, GOOD)
    out = tmp_path / "lr.json"
    res = run_cli("lr-find", exp, "--json", str(out))
    assert res.code == 0, res.stderr[-2000:]
    data = _json(out)
    assert 1e-4 <= data["suggested_lr"] <= 0.3
    assert len(data["lrs"]) == len(data["losses"]) >= 20
    # three sweeps by default; the suggestion is the geometric mean of theirs
    assert len(data["sweeps"]) == 3
    each = [sw["suggested_lr"] for sw in data["sweeps"]]
    assert math.isclose(data["suggested_lr"], math.prod(each) ** (1 / 3), rel_tol=1e-9)
    assert "suggested lr" in res.stderr
    out = tmp_path / "base.json"
    res = run_cli("baseline", exp, "--epochs", "3", "--json", str(out))
    assert res.code == 0, res.stderr[-2000:]
    data = _json(out)
    assert [r["name"] for r in data["rows"]] == ["constant", "linear", "start-simple", "yours"]


@pytest.mark.parametrize("source, args, message", [
    (None, (), "does not exist"),
    ("x = 1\n", (), "defines no function experiment"),
    ("def experiment():\n    return 42\n", (), "must return nndoctor.Experiment"),
    (HEADER + "def experiment():\n    m = nn.Linear(10, 2)\n    return nndoctor.Experiment(model=m, "
     "loss=nn.CrossEntropyLoss(), train=[X[:8]])\n", (), "loaders must yield (inputs, target)"),
    (GOOD, ("--set", "depth=3"), "no hyperparameter 'depth'"),
    (GOOD, ("--set", "hidden=wide"), "expected a int"),
    ("def experiment(:\n", (), "syntax error"),
])
@pytest.mark.parametrize("command", ["start", "overfit", "baseline", "lr-find"])
def test_bad_experiments_get_one_line_and_exit_2(tmp_path, capsys, source, args, message, command):
    exp = str(tmp_path / "missing.py") if source is None else _write(tmp_path, source)
    code = main([command, exp, *args])  # in-process: the same code path as the console script
    err = capsys.readouterr().err
    assert code == 2, (code, err[-2000:])
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("nndoctor: error:"), err
    assert message in lines[0], lines[0]


def test_bad_option_values_exit_2(tmp_path, capsys):
    exp = _write(tmp_path, GOOD)
    assert main(["overfit", exp, "--max-steps", "0"]) == 2
    assert main(["lr-find", exp, "--start-lr", "1", "--end-lr", "0.1"]) == 2
    assert main(["lr-find", exp, "--repeats", "0"]) == 2
    assert main(["start", exp, "--set", "novalue"]) == 2
    err = capsys.readouterr().err
    assert "--max-steps: expected a number >= 1, got '0'" in err and "--start-lr" in err and "name=value" in err
    assert "--repeats: expected a number >= 1, got '0'" in err


def test_sparkline_and_json_to_stdout(tmp_path, capsys):
    from nndoctor.cli.common import sparkline

    line = sparkline([1.0, 2.0, 3.0, float("nan")])
    assert line[0] == "▁" and line[2] == "█" and line[3] == "×"
    assert len(sparkline(list(range(500)), width=40)) == 40
    assert sparkline([0.1, 1.0, 10.0], log=True) == "▁▄█"
    exp = _write(tmp_path, GOOD)
    assert main(["start", exp, "--json", "-", "--set", "lr=0.5"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["facts"]["hyperparameters"]["lr"] == 0.5
    assert "lr" in {f["category"] for f in data["findings"] if f["severity"] == "warning"}
