"""Output paths: checked before any work, written atomically, a late failure is one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import run_cli

from nndoctor.cli import UsageError
from nndoctor.report.output import check_output_path, check_outputs, write_outputs, write_text


@pytest.mark.parametrize("path, why", [
    ("/proc/nndoctor/x.json", "cannot create a file"),
    ("/proc/x.json", "cannot create a file"),
    ("", "empty path"),
])
def test_unwritable_paths_refused(path, why):
    with pytest.raises(UsageError, match=why):
        check_output_path(path, "--json")


def test_folder_and_file_in_the_way(tmp_path: Path):
    with pytest.raises(UsageError, match="is a folder"):
        check_output_path(str(tmp_path), "--json")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_path(str(tmp_path / "f" / "r.json"), "--html")
    assert not list(tmp_path.glob(".nndoctor-write-check*"))


def test_good_paths_accepted_without_leaving_anything(tmp_path: Path):
    check_output_path(str(tmp_path / "new" / "deeper" / "r.json"), "--json")  # folders made when written
    check_output_path("-", "--json", allow_stdout=True)
    check_output_path("/dev/null", "--json")
    with pytest.raises(UsageError, match="standard output"):
        check_output_path("-", "--html")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match="both name"):
        check_outputs({"--json": str(tmp_path / "a"), "--html": str(tmp_path / "." / "a")})


def test_write_text_atomic_and_stdout(tmp_path: Path, capsys):
    target = tmp_path / "sub" / "r.json"
    write_text(str(target), "{}\n")
    assert target.read_text() == "{}\n"
    write_text("-", "hello\n")
    assert capsys.readouterr().out == "hello\n"
    with pytest.raises(OSError):
        write_text(str(tmp_path), "x")  # a folder: nothing left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_write_outputs_goes_on_after_a_failure(tmp_path: Path):
    lines: list[str] = []
    (tmp_path / "blocker").write_text("a file where a folder should be")

    def broken() -> str:
        raise ValueError("renderer bug")

    failed = write_outputs([("--json", str(tmp_path / "blocker" / "r.json"), lambda: "{}"),
                            ("--html", str(tmp_path / "x.html"), broken),
                            ("--out", str(tmp_path / "ok.json"), lambda: "{}"),
                            ("--none", None, broken)], say=lines.append)
    assert failed == ["--json", "--html"]
    assert (tmp_path / "ok.json").read_text() == "{}"
    assert len(lines) == 2 and all(line.startswith("nndoctor: error: could not write") for line in lines)
    assert "renderer bug" in lines[1]


LATE = """
import os, shutil, sys
import torch
from torch import nn

model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for _ in range(3):
    opt.zero_grad()
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
shutil.rmtree("out")                                # the report's folder goes away during the run
open("out", "w").write("now a file")
sys.exit(3)
"""


def test_run_late_write_failure_keeps_exit_code_and_other_output(tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "train.py").write_text(textwrap.dedent(LATE))
    res = run_cli("run", "--json", "out/r.json", "--html", "r.html", "train.py", cwd=tmp_path)
    assert res.code == 3, res.stderr[-2000:]  # the script's own exit code
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("nndoctor: error:")]
    assert len(errors) == 1 and "--json out/r.json" in errors[0]
    assert (tmp_path / "r.html").read_text().rstrip().endswith("</html>")


def test_run_refuses_bad_json_before_running(tmp_path: Path):
    (tmp_path / "train.py").write_text("open('ran', 'w').write('yes')\n")
    (tmp_path / "folder").mkdir()
    res = run_cli("run", "--json", "folder", "--html", "/proc/x.html", "train.py", cwd=tmp_path)
    assert res.code == 2 and res.stderr.startswith("nndoctor: error: --json folder: is a folder")
    assert not (tmp_path / "ran").exists() and not list(tmp_path.glob("*.tmp"))
    res = run_cli("run", "--json", "-", "train.py", cwd=tmp_path)  # '-' stays standard output
    assert res.code == 0 and json.loads(res.stdout)["schema_version"] == 2
