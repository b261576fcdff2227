from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import run_cli

from nndoctor.cli import main

HERE = Path(__file__).parent


def test_tune_cli_writes_best_and_resumes(tmp_path):
    exp = tmp_path / "exp.py"
    shutil.copy(HERE.parent / "evaluate" / "exp_digits.py", exp)
    r = run_cli("tune", str(exp), "--trials", "4", "--epochs", "1", "--method", "random", "--seed", "0",
                "--set", "n_train=300", "--json", str(tmp_path / "t.json"))
    assert r.code == 0, r.stderr[-3000:]
    best = json.loads((tmp_path / "best.json").read_text())
    assert set(best["params"]) == {"lr", "hidden"}  # derived space; n_train fixed by --set
    assert best["set"].startswith("--set ")
    assert "lr: log-uniform" in r.stderr
    again = run_cli("tune", str(exp), "--trials", "4", "--epochs", "1")
    assert again.code == 2 and "--resume" in again.stderr
    more = run_cli("tune", str(exp), "--trials", "6", "--epochs", "1", "--resume", "--set", "n_train=300",
                   "--json", str(tmp_path / "t2.json"))
    assert more.code == 0, more.stderr[-2000:]
    assert sum(json.loads((tmp_path / "t2.json").read_text())["counts"].values()) == 6


def test_tune_declared_space_and_bad_input(tmp_path):
    exp = tmp_path / "exp2.py"
    exp.write_text((HERE.parent / "evaluate" / "exp_digits.py").read_text()
                   + "\nimport nndoctor\nSPACE = {'lr': nndoctor.loguniform(1e-3, 1e-1)}\n")
    r = run_cli("tune", str(exp), "--trials", "2", "--epochs", "1", "--set", "n_train=200")
    assert r.code == 0, r.stderr[-2000:]
    assert "SPACE declared" in r.stderr and "hidden" not in r.stderr.split("top trials")[-1].split("best")[0]
    bad = tmp_path / "exp3.py"
    bad.write_text(exp.read_text() + "\nSPACE = {'nope': nndoctor.choice([1])}\n")
    r = run_cli("tune", str(bad), "--trials", "2")
    assert r.code == 2 and "not a keyword argument" in r.stderr and "Traceback" not in r.stderr


TINY = '''
import torch
from torch import nn

import nndoctor


def experiment(lr: float = 1e-2, act: str = "relu", hidden: int = 8, epochs: int = 1) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = (x.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def step(model, batch):
        xb, yb = batch
        return nn.functional.cross_entropy(model(xb), yb)

    return nndoctor.Experiment(model=model, step=step, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                               train=[(x, y)], train_val=[(x, y)])
'''


def _tune(capsys, *args: str) -> tuple[int, str]:
    """``nndoctor tune ARGS`` in this process (a subprocess costs seconds of imports): (exit code, stderr)."""
    code = main(["tune", *args])
    return code, capsys.readouterr().err


def test_brackets_in_names_and_per_study_best_files(tmp_path, capsys):
    exp = tmp_path / "tiny.py"
    exp.write_text(TINY + "\nSPACE = {'lr': nndoctor.loguniform(1e-3, 1e-1), 'act': nndoctor.choice(['w[/]x', '[b]'])}\n")
    code, err = _tune(capsys, str(exp), "--trials", "3", "--method", "random", "--seed", "0", "--study", "s[/]1")
    assert code == 0, err[-3000:]
    assert "s[/]1" in err and "w[/]x" in err and "[b]" in err.split("top trials")[1]
    code, err = _tune(capsys, str(exp), "--trials", "2", "--method", "random", "--seed", "1")
    assert code == 0, err[-3000:]
    own = json.loads((tmp_path / "best-s_1.json").read_text())
    default = json.loads((tmp_path / "best.json").read_text())
    assert own["study"] == "s[/]1" and default["study"] == "tiny"
