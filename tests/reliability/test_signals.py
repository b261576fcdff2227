"""Ctrl-C (SIGINT) and SIGTERM (``timeout`` in CI) during ``run`` and ``diagnose``.

The summary, the JSON and the HTML must all be written, the terminal must say the run was
interrupted, and the exit code is 128 + the signal (130, 143).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from nndoctor.signals import Terminated, interrupt_exit_code, terminate_as_interrupt

ROOT = Path(__file__).resolve().parents[2]

TRAIN = """
import time
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(64, 4), torch.randn(64, 1)
for step in range(1_000_000):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    if step == 20:
        print("MARKER", flush=True)
    time.sleep(0.002)
"""

EXPERIMENT = """
import sys
import time
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import nndoctor

X = torch.randn(64, 4)
Y = (X[:, 0] > 0).long()


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 30:
            print("MARKER", flush=True)
        time.sleep(0.01)
        return self.net(x)


def experiment(lr: float = 1e-2, epochs: int = 2) -> nndoctor.Experiment:
    torch.manual_seed(0)
    model = Slow()
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                               optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                               train=DataLoader(TensorDataset(X[:48], Y[:48]), batch_size=16),
                               train_val=DataLoader(TensorDataset(X[48:], Y[48:]), batch_size=16))
"""


def _as_in_a_terminal() -> None:
    """In the child before exec: SIGINT and SIGTERM at their defaults and not blocked, as in a user's
    terminal. A process inherits an ignored disposition and a blocked mask from its parent, and a
    pytest-xdist worker that ran other tests first may hold either (the CI once saw Ctrl-C ignored)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(argv: list[str], signum: int, cwd: Path) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "nndoctor", *argv], cwd=str(cwd), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # wait for the marker: training is under way
            seen.append(line)
            if line.startswith("MARKER"):
                break
        else:
            raise AssertionError("no marker: " + "".join(seen) + proc.stderr.read())  # type: ignore[union-attr]
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(seen) + out, err


@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"),
                                                (signal.SIGTERM, 143, "SIGTERM")])
def test_run_interrupted_writes_everything(tmp_path, signum, code, said):
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    rc, _, err = _interrupt(["run", "--json", "r.json", "--html", "r.html", "train.py"], signum, tmp_path)
    assert rc == code, err[-3000:]
    assert "Traceback" not in err
    assert "nndoctor: train.py" in err  # the summary's title
    assert f"interrupted by {said} during step" in err, err[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["facts"]["end"] == "interrupted"
    assert report["facts"]["signal"] == signal.Signals(signum).name
    assert report["facts"]["exit_code"] == code and report["facts"]["steps"] >= 20
    html = (tmp_path / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_diagnose_interrupted_writes_everything(tmp_path, signum, code):
    (tmp_path / "exp.py").write_text(textwrap.dedent(EXPERIMENT))
    rc, _, err = _interrupt(["diagnose", "exp.py", "--json", "d.json", "--html", "d.html"], signum, tmp_path)
    assert rc == code, err[-3000:]
    assert "Traceback" not in err
    assert "nndoctor diagnose: exp.py" in err and "interrupted" in err
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["facts"]["interrupted"] == signal.Signals(signum).name
    assert report["facts"]["stages"][-1]["summary"].startswith("interrupted")
    assert (tmp_path / "d.html").read_text().rstrip().endswith("</html>")


def test_terminate_as_interrupt_raises_and_restores():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info, terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000_000):  # the handler runs between bytecodes
            pass
    assert isinstance(info.value, KeyboardInterrupt) and interrupt_exit_code(info.value) == 143
    assert signal.getsignal(signal.SIGTERM) is before
    assert interrupt_exit_code(KeyboardInterrupt()) == 130


def test_terminate_as_interrupt_does_nothing_outside_the_main_thread():
    before = signal.getsignal(signal.SIGTERM)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with terminate_as_interrupt():
                assert signal.getsignal(signal.SIGTERM) is before
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors and signal.getsignal(signal.SIGTERM) is before
