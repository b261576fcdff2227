"""``nndoctor run``: nndoctor's options before or after the script, and ``--`` in every position."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nndoctor.cli import main
from nndoctor.cli.run import split_command_line

SCRIPT = """
import json, os, sys
import torch
from torch import nn

with open(os.environ["ARGV_OUT"], "w") as fh:
    json.dump(sys.argv[1:], fh)
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(16, 3), torch.randn(16, 1)
for _ in range(10):
    opt.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
"""


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "argv.py"
    path.write_text(textwrap.dedent(SCRIPT))
    monkeypatch.setenv("ARGV_OUT", str(tmp_path / "argv.json"))
    return path


# (command line with S for the script and R for the report, the script's argv, nndoctor's max steps or None)
CASES = [
    ("run S -- --max-steps 5", ["--max-steps", "5"], None),                     # issue 13: '--' right after
    ("run --max-steps 3 -- S --json x", ["--json", "x"], 3),                   # '--' before the script
    ("run S --max-steps 3 -- --lr 1 -- y", ["--lr", "1", "--", "y"], 3),       # options, then '--'
    ("run --quiet S a --max-steps 3 b", ["a", "b"], 3),                        # options on both sides
    ("run S --max-steps=4 -- --json other", ["--json", "other"], 4),
    ("run -- S", [], None),
    ("run S --", [], None),
    ("-v run S -- -- --", ["--", "--"], None),
    ("run S --lr 0.1", ["--lr", "0.1"], None),                                 # unknown options: the script's
]


@pytest.mark.parametrize("line, argv, max_steps", CASES)
def test_separator_positions(line, argv, max_steps, script, tmp_path, capsys):
    report = tmp_path / "r.json"
    words = [str(script) if w == "S" else w for w in line.split()]
    words.insert(words.index("run") + 1, f"--json={report}")
    assert main(words) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "argv.json").read_text()) == argv
    steps = json.loads(report.read_text())["facts"]["steps"]
    assert steps == (max_steps if max_steps else 10)


def test_split_command_line():
    assert split_command_line(["t.py", "--json", "a", "--", "--json", "b"]) == ("t.py", ["--json", "a"],
                                                                                 ["--json", "b"])
    assert split_command_line(["--", "t.py", "--quiet"]) == ("t.py", [], ["--quiet"])


@pytest.mark.parametrize("line", ["run", "run --", "run --quiet --"])
def test_no_script_is_one_usage_line(line, capsys):
    assert main(line.split()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nndoctor: error: give the training script")


def test_help_documents_the_separator(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "[--] SCRIPT" in out and "-- --max-steps 5" in out.replace("\n", " ").replace("  ", " ")
