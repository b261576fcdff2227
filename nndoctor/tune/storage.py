"""Study storage for ``nndoctor tune``: database URLs, journal files, masked passwords, dead workers.

A database URL (``postgresql://user:pass@host/db``) opens Optuna's RDB storage with
heartbeats: a trial whose worker stops beating is failed and retried by Optuna. A local
journal file has no heartbeat in Optuna, so each trial records its worker (host, pid and
process start time) and :func:`fail_dead_workers` fails, then re-queues, the running trials
of workers on this machine that no longer exist. Passwords never leave this module
unmasked: :func:`mask` is applied to every URL and error message shown to the user.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import socket
import warnings
from typing import Any, Iterator

try:
    import optuna
    from optuna.trial import TrialState
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("nndoctor tune needs Optuna: pip install 'nndoctor[tune]'") from exc

__all__ = ["MAX_RETRY", "MaskFilter", "fail_dead_workers", "make_storage", "mask", "optuna_experimental",
           "sqlalchemy_url", "worker_attrs"]

logger = logging.getLogger("nndoctor")

#: retries of a trial whose worker died (Optuna's heartbeat callback on RDB, ours on a journal)
MAX_RETRY = 3
#: a running trial with no worker recorded (its worker died while Optuna created it) is stale after this
_UNOWNED_GRACE_S = 60.0

_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s@'\"]*@")


def mask(text: str, url: str | None = None) -> str:
    """``text`` with the password of every URL in it (and ``url``'s password anywhere) as ``***``."""
    out = _URL_PASSWORD.sub(r"\g<head>***@", str(text))
    password = _password(url) if url else None
    if password and len(password) >= 4:  # a shorter one would garble ordinary words
        from urllib.parse import quote

        for form in {password, quote(password, safe="")}:
            out = out.replace(form, "***")
    return out


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        raw = urlsplit(url).password
    except ValueError:
        return None
    return unquote(raw) if raw else None


class MaskFilter(logging.Filter):
    """A logging filter that masks the storage password in every record it passes."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message, self.url)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def sqlalchemy_url(url: str) -> str:
    """The URL with the declared PostgreSQL driver (psycopg2) when the plain scheme is given.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3; the ``tune`` extra installs psycopg2
    (``psycopg2-binary``), so the plain scheme is pinned to it whenever it is importable.
    """
    scheme, sep, rest = url.partition("://")
    if scheme.lower() not in ("postgresql", "postgres") or not sep:
        return url
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "postgresql://" + rest  # SQLAlchemy's default driver, if the user installed one
    return "postgresql+psycopg2://" + rest


@contextlib.contextmanager
def optuna_experimental(*features: str) -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning for exactly the named features nndoctor uses on purpose."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        for feature in features:
            warnings.filterwarnings("ignore", message=f".*{re.escape(feature)}.*", category=ExperimentalWarning)
        yield


def make_storage(url: str | None, journal_path: str) -> Any:
    """Optuna storage: RDB (with heartbeats and retries) for URLs, else a journal file."""
    if url and "://" in url:
        from optuna.storages import RDBStorage

        retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        with optuna_experimental("heartbeat_interval", "RetryHeartbeatStaleTrialCallback", "RetryFailedTrialCallback"):
            if retry_cls is not None:  # Optuna >= 4.9
                return RDBStorage(sqlalchemy_url(url), heartbeat_interval=5, grace_period=15,
                                  heartbeat_stale_trial_callback=retry_cls(max_retry=MAX_RETRY))
            return RDBStorage(sqlalchemy_url(url), heartbeat_interval=5, grace_period=15,  # pragma: no cover
                              failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY))
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = url or journal_path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return JournalStorage(JournalFileBackend(path))


def _start_token(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), to tell a live worker from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return None if len(fields) < 20 or fields[0] == "Z" else fields[19]


def worker_attrs() -> dict[str, str]:
    """The user attributes a trial records about the process running it."""
    pid = os.getpid()
    return {"worker": f"{socket.gethostname()}:{pid}", "worker_start": _start_token(pid) or ""}


def _alive(pid: int, token: str) -> bool:
    if os.path.isdir("/proc"):
        now = _start_token(pid)
        return now is not None and (not token or now == token)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _dead(trial: optuna.trial.FrozenTrial, host: str) -> str | None:
    """Why the running ``trial`` is stale (its worker on this host is gone), else None."""
    worker = str(trial.user_attrs.get("worker", ""))
    if not worker:
        started = trial.datetime_start
        age = (datetime.datetime.now() - started).total_seconds() if started else 0.0
        return f"its worker stopped while creating it ({age:.0f} s ago)" if age > _UNOWNED_GRACE_S else None
    whost, _, pid = worker.rpartition(":")
    if whost != host or not pid.isdigit():
        return None  # another machine sharing the journal: nothing to check it with
    if _alive(int(pid), str(trial.user_attrs.get("worker_start", ""))):
        return None
    return f"worker {worker} died"


def fail_dead_workers(study: optuna.Study) -> list[int]:
    """Fail the running trials of dead workers and re-queue their parameters; their numbers.

    On storages with heartbeats this is Optuna's ``fail_stale_trials``. On a journal, a
    trial whose worker process on this host is gone is failed (user attr ``stopped`` says
    why) and a copy is enqueued, as Optuna's retry callback does, up to ``MAX_RETRY`` times.
    """
    from optuna.storages._heartbeat import is_heartbeat_enabled

    storage = study._storage
    if is_heartbeat_enabled(storage):
        with optuna_experimental("fail_stale_trials"):
            optuna.storages.fail_stale_trials(study)
        return []
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = _dead(trial, host)
        if why is None:
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, "stopped", why)
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        failed.append(trial.number)
        logger.info("trial %d failed: %s", trial.number, why)
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if len(history) > MAX_RETRY:
            continue
        keep = {k: v for k, v in trial.user_attrs.items() if k not in ("worker", "worker_start", "stopped")}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions, user_attrs=keep,
            system_attrs={**trial.system_attrs, "failed_trial": history[0], "retry_history": history}))
    return failed
