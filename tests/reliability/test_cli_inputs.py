"""Bad input to every command: one line on stderr starting ``nndoctor: error:``, exit 2, no traceback.

The commands come from the parser itself (what ``python -m nndoctor --help`` lists), so a new
command without probes here fails ``test_every_command_has_probes``. Every probe runs in-process
through :func:`nndoctor.cli.main`: an exception escaping it fails the test (it would have been a
traceback). Output paths are checked before any work: the run's script and the experiment
record that they ran, and must not have.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from nndoctor.cli import build_parser, main

EXPERIMENT = """
import pathlib
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import nndoctor

pathlib.Path(__file__).with_suffix(".ran").write_text("ran")
g = torch.Generator().manual_seed(0)
X = torch.randn(64, 4, generator=g)
Y = (X[:, 0] > 0).long()


def experiment(lr: float = 1e-2, epochs: int = 1) -> nndoctor.Experiment:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                               optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                               train=DataLoader(TensorDataset(X[:48], Y[:48]), batch_size=16),
                               train_val=DataLoader(TensorDataset(X[48:], Y[48:]), batch_size=16))
"""

SCRIPT = """
import pathlib
pathlib.Path(__file__).with_suffix(".ran").write_text("ran")
"""

GUIDED = ("evaluate", "data", "start", "overfit", "baseline", "lr-find", "tune", "diagnose")
SCRIPTED = ("run", "fix")  # commands that take a training script
MERGING = ("merge",)  # commands that read the per-rank results of a distributed run

#: per command: option -> bad values (each must be refused with the value echoed)
BAD_NUMBERS: dict[str, dict[str, tuple[str, ...]]] = {
    "run": {"--max-steps": ("0", "-3", "x"), "--sample-every": ("0", "-1"), "--dense-steps": ("-1", "1.5"),
            "--nproc": ("0", "-2", "x")},
    "evaluate": {"--epochs": ("0", "-2"), "--human-error": ("-0.1", "1", "nan"), "--min-gap": ("2",)},
    "data": {},
    "start": {},
    "overfit": {"--max-steps": ("0", "-5"), "--batch-size": ("0", "-3", "ten")},
    "baseline": {"--epochs": ("0", "-1")},
    "lr-find": {"--start-lr": ("0", "-1e-3", "inf"), "--end-lr": ("0", "nan"), "--steps": ("0", "-10"),
                "--repeats": ("0", "-1")},
    "tune": {"--trials": ("0", "-4")},
    "diagnose": {"--tune": ("-1",), "--epochs": ("0", "-3"), "--human-error": ("1.5", "-1")},
    "fix": {"--max-steps": ("0", "-3", "x"), "--timeout": ("0", "-1")},
    "merge": {},
}

#: options naming an output file, per command
OUTPUTS = {"run": ("--json", "--html"), "diagnose": ("--json", "--html"), "tune": ("--json", "--out"),
           "fix": ("--json", "--html"), "merge": ("--json", "--html"),
           **{c: ("--json",) for c in ("evaluate", "data", "start", "overfit", "baseline", "lr-find")}}

def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def _one_error_line(capsys: pytest.CaptureFixture[str], code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("nndoctor: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "exp.py").write_text(textwrap.dedent(EXPERIMENT))
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    (tmp_path / "broken.py").write_text("def experiment(:\n    pass\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain.txt").write_text("not a folder")
    return {"exp": tmp_path / "exp.py", "train": tmp_path / "train.py", "broken": tmp_path / "broken.py",
            "folder": tmp_path / "folder", "plain": tmp_path / "plain.txt", "tmp": tmp_path}


def _target(command: str, files: dict[str, Path]) -> Path:
    return files["train"] if command in SCRIPTED else files["exp"]


#: commands that read no file, take no number and write no output (probed below)
NO_INPUT = ("explain",)


def test_every_command_has_probes():
    assert set(_commands()) - set(NO_INPUT) == set(BAD_NUMBERS) == set(OUTPUTS) == {*SCRIPTED, *GUIDED, *MERGING}


@pytest.mark.parametrize("argv", [["explain", "nope.not-a-code"], ["explain", "loss-input.softmax"],
                                  ["explain", "shape.broadcast-in-loss", "extra"]])
def test_explain_bad_input(argv, capsys):
    _one_error_line(capsys, main(argv))


@pytest.mark.parametrize("what", ["missing", "empty-folder", "not-a-result"])
def test_merge_bad_input(what, files, capsys):
    path = {"missing": str(files["tmp"] / "nope"), "empty-folder": str(files["folder"]),
            "not-a-result": str(files["plain"])}[what]
    _one_error_line(capsys, main(["merge", path]), path)


def test_merge_unwritable_outputs_refused(files, capsys):
    for option in OUTPUTS["merge"]:
        for path in ("/proc/nndoctor-test/x.out", str(files["folder"]), ""):
            _one_error_line(capsys, main(["merge", f"{option}={path}", str(files["folder"])]), option)


@pytest.mark.parametrize("command", [*SCRIPTED, *GUIDED])
@pytest.mark.parametrize("what", ["missing", "folder", "syntax-error"])
def test_bad_input_file(command, what, files, capsys):
    path = {"missing": str(files["tmp"] / "nope.py"), "folder": str(files["folder"]),
            "syntax-error": str(files["broken"])}[what]
    line = _one_error_line(capsys, main([command, path]))
    assert "syntax error" in line if what == "syntax-error" else True


@pytest.mark.parametrize("command", [*SCRIPTED, *GUIDED])
def test_bad_option_values(command, files, capsys):
    for option, values in BAD_NUMBERS[command].items():
        for value in values:
            code = main([command, f"{option}={value}", str(_target(command, files))])
            _one_error_line(capsys, code, option, value)


@pytest.mark.parametrize("command", [*SCRIPTED, *GUIDED])
def test_unwritable_outputs_refused_before_any_work(command, files, capsys):
    target = _target(command, files)
    bad = {"proc": "/proc/nndoctor-test/x.out", "folder": str(files["folder"]),
           "under-a-file": str(files["plain"] / "x.out"), "empty": ""}
    for option in OUTPUTS[command]:
        for kind, path in bad.items():
            code = main([command, f"{option}={path}", str(target)])
            _one_error_line(capsys, code, option)
            assert not target.with_suffix(".ran").exists(), f"{command} ran before refusing {option} {kind}"
    assert not list(files["folder"].parent.glob("folder*.tmp"))


def test_json_and_html_naming_one_file(files, capsys):
    out = str(files["tmp"] / "same")
    _one_error_line(capsys, main(["run", "--json", out, "--html", out, str(files["train"])]), "--html")


def test_overfit_batch_size_zero_is_refused(files, capsys):
    """It used to mean 'the loader's batch' and silently trained on that: now a usage error."""
    _one_error_line(capsys, main(["overfit", str(files["exp"]), "--batch-size", "0"]), "--batch-size", "'0'")


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"\x80\x04K\x01.", b""])
def test_evaluate_checkpoint_that_is_not_one(content, files, capsys):
    bad = files["tmp"] / "model.pt"
    bad.write_bytes(content)
    code = main(["evaluate", str(files["exp"]), "--checkpoint", str(bad)])
    _one_error_line(capsys, code, "--checkpoint", "not a PyTorch checkpoint")


def test_evaluate_checkpoint_with_code_is_not_executed(files, capsys):
    """weights_only stays on: a pickle that would run code is refused, and the code does not run."""
    import pickle

    marker = files["tmp"] / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = files["tmp"] / "evil.pt"
    bad.write_bytes(pickle.dumps(Evil()))
    code = main(["evaluate", str(files["exp"]), "--checkpoint", str(bad)])
    _one_error_line(capsys, code, "--checkpoint")
    assert not marker.exists()


def test_evaluate_checkpoint_missing_and_mismatched(files, capsys):
    import torch
    from torch import nn

    _one_error_line(capsys, main(["evaluate", str(files["exp"]), "--checkpoint", str(files["tmp"] / "no.pt")]),
                    "does not exist")
    other = files["tmp"] / "other.pt"
    torch.save(nn.Linear(3, 3).state_dict(), other)
    _one_error_line(capsys, main(["evaluate", str(files["exp"]), "--checkpoint", str(other)]),
                    "does not fit the experiment's model")

