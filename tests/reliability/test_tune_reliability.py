"""``nndoctor tune`` under bad input, signals and killed workers, on a journal file and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

optuna = pytest.importorskip("optuna")

from helpers import ROOT, run_cli  # noqa: E402

from nndoctor.cli import main  # noqa: E402

TUNE_TESTS = Path(__file__).resolve().parent.parent / "tune"

TINY = '''
import os
import signal

import torch
from torch import nn

import nndoctor


def experiment(lr: float = 1e-2, hidden: int = 8, epochs: int = 1) -> nndoctor.Experiment:
    calls = int(os.environ.get("NNDOCTOR_TEST_CALLS", "0")) + 1
    os.environ["NNDOCTOR_TEST_CALLS"] = str(calls)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = (x.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def step(model, batch):
        if calls == int(os.environ.get("NNDOCTOR_TEST_TERM_AT", "0")):
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler stops the job in the middle of a trial
        xb, yb = batch
        return nn.functional.cross_entropy(model(xb), yb)

    return nndoctor.Experiment(model=model, step=step, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                               train=[(x, y)], train_val=[(x, y)])
'''


def _tune(capsys: Any, *args: str) -> tuple[int, str]:
    """``nndoctor tune ARGS`` in this process (a subprocess costs seconds of imports): (exit code, stderr)."""
    code = main(["tune", *args])
    return code, capsys.readouterr().err


def _journal_study(exp: Path, name: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = exp.with_suffix("").as_posix() + ".nndoctor-journal.log"
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(journal)))


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_option_values_are_one_line_and_create_no_study(tmp_path, capsys):
    exp = tmp_path / "tiny.py"
    exp.write_text(TINY)
    journal = tmp_path / "tiny.nndoctor-journal.log"
    for args in (["--epochs", "0"], ["--epochs", "-2"], ["--trials", "0"], ["--seed", "-1"], ["--study", ""],
                 ["--storage", ""], ["--storage", str(tmp_path)], ["--out", str(tmp_path / "no" / "b.json")],
                 ["--json", str(tmp_path)], ["--trials", "x"], ["--method", "nope"], ["--storage", "nosuch://u:p@h/d"]):
        code, err = _tune(capsys, str(exp), *args)
        assert code == 2, (args, err[-2000:])
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not journal.exists(), args  # validated before any study is created
    bad_default = tmp_path / "tiny2.py"
    bad_default.write_text(TINY.replace("epochs: int = 1", "epochs: int = 0"))
    code, err = _tune(capsys, str(bad_default))
    assert code == 2 and "--epochs" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tiny2.nndoctor-journal.log").exists()
    for i, space in enumerate(("{'hidden': nndoctor.choice([[4, 8], [16]])}", "{'lr': nndoctor.loguniform(1e-3, float('inf'))}",
                               "{'lr': nndoctor.uniform(0.0, float('inf'))}")):
        bad = tmp_path / f"space{i}.py"
        bad.write_text(TINY + f"\nSPACE = {space}\n")
        code, err = _tune(capsys, str(bad), "--trials", "1")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (space, err)
        assert not (tmp_path / f"space{i}.nndoctor-journal.log").exists()


def test_unreachable_database_is_one_line_without_the_password(tmp_path, capsys):
    pytest.importorskip("psycopg2", reason="the tune extra's PostgreSQL driver")
    exp = tmp_path / "tiny.py"
    exp.write_text(TINY)
    code, err = _tune(capsys, str(exp), "--storage", "postgresql://alice:Sup3rSecret@127.0.0.1:1/optuna")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "Sup3rSecret" not in err and "alice:***@127.0.0.1:1" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ signals
def test_sigterm_keeps_finished_trials_and_the_summary(tmp_path, capsys, monkeypatch):
    exp = tmp_path / "tiny.py"
    exp.write_text(TINY)
    # experiment() runs once at load, then once per trial: SIGTERM arrives inside trial #2
    monkeypatch.setenv("NNDOCTOR_TEST_CALLS", "0")
    monkeypatch.setenv("NNDOCTOR_TEST_TERM_AT", "4")

    def unhandled(signum, frame):  # what the default handler would do, without killing pytest
        raise RuntimeError("SIGTERM was not handled by nndoctor tune")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        code, err = _tune(capsys, str(exp), "--trials", "4", "--method", "random", "--seed", "0",
                          "--json", str(tmp_path / "t.json"))
        assert signal.getsignal(signal.SIGTERM) is unhandled  # restored
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143, err[-3000:]
    assert "interrupted (SIGTERM)" in err and "--resume" in err and "top trials" in err
    summary = json.loads((tmp_path / "t.json").read_text())
    assert summary["counts"] == {"complete": 2, "fail": 1} and summary["interrupted"] == "SIGTERM"
    assert json.loads((tmp_path / "best.json").read_text())["study"] == "tiny"
    trials = _journal_study(exp, "tiny").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert "interrupted" in trials[2].user_attrs["stopped"]
    monkeypatch.setenv("NNDOCTOR_TEST_TERM_AT", "0")
    code, err = _tune(capsys, str(exp), "--trials", "4", "--method", "random", "--resume")
    assert code == 0, err[-3000:]
    assert "#2 interrupted" in err  # the summary says what happened to it
    states = [t.state.name for t in _journal_study(exp, "tiny").trials]
    assert states.count("COMPLETE") == 4 and "RUNNING" not in states


# ------------------------------------------------------------------------------------------------ killed workers
def _start(exp: Path, log: Path, *args: str) -> subprocess.Popen:
    # slow steps (slow_exp.py): the signal lands inside a trial however loaded the machine is
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", NNDOCTOR_TEST_STEP_SLEEP="1.0")
    return subprocess.Popen([sys.executable, "-m", "nndoctor", "tune", str(exp), "--method", "random", *args],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))


def _wait_for_trial(load: Callable[[], Any], pid: int, timeout: float = 240.0) -> None:
    """Until ``pid`` runs a trial after at least one finished (so it is killed mid-study, mid-trial)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            trials = load().trials
        except (KeyError, ValueError, OSError):
            continue
        running = [t for t in trials if t.state.name == "RUNNING" and str(t.user_attrs.get("worker", "")).endswith(f":{pid}")]
        if running and any(t.state.name == "COMPLETE" for t in trials):
            return
    raise AssertionError("the worker never started a second trial")


def _kill_then_resume(tmp_path: Path, sig: int, storage: list[str], load: Callable[[], Any]) -> tuple[Any, str]:
    exp = tmp_path / "slow_exp.py"
    shutil.copy(TUNE_TESTS / "slow_exp.py", exp)
    common = ["--trials", "3", "--epochs", "2", *storage]
    worker = _start(exp, tmp_path / "w.log", *common)
    try:
        _wait_for_trial(load, worker.pid)
        worker.send_signal(sig)
        code = worker.wait(timeout=120)
    finally:
        worker.kill()
    log = (tmp_path / "w.log").read_text()
    assert code == (143 if sig == signal.SIGTERM else -signal.SIGKILL), log[-3000:]
    if sig == signal.SIGTERM:
        assert "interrupted (SIGTERM)" in log and "top trials" in log and "Traceback" not in log, log[-3000:]
    # a hang would raise TimeoutExpired here
    r = run_cli("tune", str(exp), "--method", "random", *common, "--resume", "--json", str(tmp_path / "r.json"),
                timeout=240)
    assert r.code == 0, r.stderr[-3000:]
    assert "Warning" not in r.stderr, r.stderr
    study = load()
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and "WAITING" not in states, states
    assert states.count("COMPLETE") + states.count("PRUNED") >= 3, states
    return study, " ".join(r.stderr.split())  # rich wraps lines at the terminal width


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_journal_resume_after_killed_worker(tmp_path, sig):  # ~16 s each on an idle core: in make test
    study, err = _kill_then_resume(tmp_path, sig, [], lambda: _journal_study(tmp_path / "slow_exp.py", "slow_exp"))
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1
    if sig == signal.SIGKILL:  # failed on resume and its parameters retried
        assert "died" in failed[0].user_attrs["stopped"] and "retried as #" in err
        assert [t for t in study.trials if t.system_attrs.get("retry_history") == [failed[0].number]]
    else:
        assert "interrupted" in failed[0].user_attrs["stopped"]


@pytest.fixture(scope="module")
def postgres() -> Any:
    pytest.importorskip("psycopg2", reason="the tune extra's PostgreSQL driver")
    sys.path.insert(0, str(TUNE_TESTS))
    import pg

    try:
        server = pg.postgres_server()
        url = server.__enter__()
    except pg.PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def _plain_url(url: str, password: str, db: str = "postgres") -> str:
    """The documented form: plain ``postgresql://`` scheme, with a password (trust auth ignores it)."""
    host = url.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql://postgres:{password}@{host}/{db}"


@pytest.mark.slow
def test_postgres_plain_url_works_and_never_shows_the_password(tmp_path, postgres):
    exp = tmp_path / "tiny.py"
    exp.write_text(TINY)
    password = "Hunter2-zq9"
    url = _plain_url(postgres, password)
    r = run_cli("tune", str(exp), "--storage", url, "--study", "plain", "--trials", "2", "--method", "random",
                "--json", str(tmp_path / "t.json"), "--seed", "0")
    assert r.code == 0, r.stderr[-3000:]
    summary = (tmp_path / "t.json").read_text()
    assert json.loads(summary)["counts"] == {"complete": 2}
    best = (tmp_path / "best-plain.json").read_text()
    for text in (r.stdout, r.stderr, summary, best):
        assert password not in text
    assert "postgres:***@" in r.stderr and "Warning" not in r.stderr, r.stderr
    verbose = run_cli("-v", "tune", str(exp), "--storage", url, "--study", "plain", "--trials", "3", "--resume")
    assert verbose.code == 0 and password not in verbose.stdout + verbose.stderr, verbose.stderr[-3000:]


@pytest.mark.slow
def test_postgres_resume_after_killed_worker(tmp_path, postgres):
    url = _plain_url(postgres, "pw-not-shown")
    storage = optuna.storages.RDBStorage(postgres)
    study, err = _kill_then_resume(tmp_path, signal.SIGKILL, ["--storage", url, "--study", "killed"],
                                   lambda: optuna.load_study(study_name="killed", storage=storage))
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and "stopped beating; retried as #" in err
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert retried and all(t.state.name in ("COMPLETE", "PRUNED") for t in retried)
