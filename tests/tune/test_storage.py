"""Study storage: masked passwords, the PostgreSQL driver, quiet Optuna, dead workers of a journal study."""

from __future__ import annotations

import datetime
import logging
import os
import socket
import subprocess
import sys
import threading
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from nndoctor.tune import storage as sto
from nndoctor.tune import study as st
from nndoctor.tune.space import intuniform, loguniform

SPACE = {"lr": loguniform(1e-4, 1.0), "hidden": intuniform(4, 64, log=True)}


def _objective(params, report):
    report(params["lr"], 1)
    return params["lr"]


def test_mask_hides_the_password_in_urls_and_messages():
    url = "postgresql://alice:pa%40ss-W0rd@db.example:5432/optuna"
    assert sto.mask(url) == "postgresql://alice:***@db.example:5432/optuna"
    assert sto.mask("postgresql+psycopg2://u:secret@h/db?x=1") == "postgresql+psycopg2://u:***@h/db?x=1"
    msg = "(psycopg2.OperationalError) connecting with 'postgresql://alice:pa%40ss-W0rd@db.example/optuna': pa@ss-W0rd"
    masked = sto.mask(msg, url)
    assert "pa@ss-W0rd" not in masked and "pa%40ss-W0rd" not in masked and "alice:***@" in masked
    assert sto.mask("sqlite:///x.db") == "sqlite:///x.db" and sto.mask("postgresql://u@h/db") == "postgresql://u@h/db"


def test_mask_filter_masks_log_records():
    url = "postgresql://u:hunter22@h/db"
    record = logging.LogRecord("optuna", logging.INFO, __file__, 1, "opened %s with %s", (url, "hunter22"), None)
    assert sto.MaskFilter(url).filter(record)
    assert "hunter22" not in record.getMessage() and "u:***@h/db" in record.getMessage()


def test_plain_postgresql_url_uses_the_declared_driver():
    pytest.importorskip("psycopg2", reason="the tune extra's driver (psycopg2-binary)")
    assert sto.sqlalchemy_url("postgresql://u:p@h:5/db") == "postgresql+psycopg2://u:p@h:5/db"
    assert sto.sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sto.sqlalchemy_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"  # explicit: kept
    assert sto.sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"
    import sqlalchemy

    assert sqlalchemy.engine.make_url(sto.sqlalchemy_url("postgresql://u@h/db")).get_dialect().driver == "psycopg2"


def test_database_storage_and_study_raise_no_optuna_warnings(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = st.make_storage(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "j.log"))
        study = st.make_study("w", storage, "bayes", SPACE, seed=0)
        st.run_trials(study, _objective, SPACE, n_trials=2, method="bayes")
    assert not [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, optuna.exceptions.ExperimentalWarning))]
    # the suppression is scoped: Optuna's experimental warnings still reach the user elsewhere
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optuna.samplers.TPESampler(group=True, multivariate=True)
    assert any(issubclass(w.category, optuna.exceptions.ExperimentalWarning) for w in caught)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running_trial(study: optuna.Study, worker: str | None, token: str = "") -> int:
    """A RUNNING trial left by a worker (as after SIGKILL): its number."""
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1.0, log=True)
    trial.suggest_int("hidden", 4, 64, log=True)
    if worker is not None:
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("worker_start", token)
    return trial.number


def _journal_study(tmp_path, name="s"):
    return st.make_study(name, st.make_storage(None, str(tmp_path / "j.log")), "random", SPACE, seed=0)


def test_dead_local_worker_trial_is_failed_and_retried(tmp_path):
    study = _journal_study(tmp_path)
    host = socket.gethostname()
    dead = _running_trial(study, f"{host}:{_dead_pid()}")
    me = sto.worker_attrs()
    mine = _running_trial(study, me["worker"], me["worker_start"])
    remote = _running_trial(study, "another-machine:12")
    failed = sto.fail_dead_workers(study)
    assert failed == [dead]
    trials = study.get_trials()
    assert trials[dead].state is TrialState.FAIL and "died" in trials[dead].user_attrs["stopped"]
    assert trials[mine].state is TrialState.RUNNING and trials[remote].state is TrialState.RUNNING
    retry = [t for t in trials if t.state is TrialState.WAITING]
    assert len(retry) == 1 and retry[0].params == trials[dead].params
    assert retry[0].system_attrs["retry_history"] == [dead] and "worker" not in retry[0].user_attrs
    assert sto.fail_dead_workers(study) == []  # idempotent


def test_reused_pid_is_not_mistaken_for_the_dead_worker(tmp_path):
    if not os.path.isdir("/proc"):
        pytest.skip("process start times need /proc")
    study = _journal_study(tmp_path)
    n = _running_trial(study, f"{socket.gethostname()}:{os.getpid()}", token="1")  # our pid, another process
    assert sto.fail_dead_workers(study) == [n]


def test_trial_without_worker_is_failed_only_when_old(tmp_path, monkeypatch):
    study = _journal_study(tmp_path)
    n = _running_trial(study, None)
    assert sto.fail_dead_workers(study) == []
    later = datetime.datetime.now() + datetime.timedelta(seconds=sto._UNOWNED_GRACE_S + 5)

    class _Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return later

    monkeypatch.setattr(sto.datetime, "datetime", _Clock)
    assert sto.fail_dead_workers(study) == [n]


def _finishes(fn, timeout: float = 30.0) -> bool:
    errors: list[BaseException] = []

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not errors, errors
    return not thread.is_alive()


def test_resume_after_a_killed_worker_does_not_hang(tmp_path):
    """The bug: the loop waited forever on the RUNNING trial of a killed local worker."""
    study = _journal_study(tmp_path)
    st.run_trials(study, _objective, SPACE, n_trials=2, method="random")
    _running_trial(study, f"{socket.gethostname()}:{_dead_pid()}")
    again = _journal_study(tmp_path)
    assert _finishes(lambda: st.run_trials(again, _objective, SPACE, n_trials=3, method="random"))
    states = [t.state for t in again.get_trials()]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 1
