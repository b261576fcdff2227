"""SIGTERM as Ctrl-C while tuning, held back during study storage writes."""

from __future__ import annotations

import os
import signal

import pytest

from nndoctor.tune.interrupt import check, sigterm_as_interrupt

# code that "is" Optuna's storage, as far as the handler can tell (its file name)
IN_STORAGE = compile("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
                     os.path.join(os.sep, "site-packages", "optuna", "storages", "journal", "_file.py"), "exec")


def test_sigterm_raises_keyboard_interrupt_and_handlers_come_back():
    before_term, before_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
    assert stop.exit_code == 143 and stop.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before_term and signal.getsignal(signal.SIGINT) is before_int
    check()  # nothing pending outside the block


def test_signal_during_a_storage_write_waits_for_the_next_safe_point():
    with sigterm_as_interrupt() as stop:
        exec(IN_STORAGE, {})  # no exception inside the "write"
        assert stop.pending
        with pytest.raises(KeyboardInterrupt):
            check()
        check()  # raised once
        exec(IN_STORAGE, {})
        with pytest.raises(KeyboardInterrupt):  # a second signal does not wait
            exec(IN_STORAGE, {})
    assert stop.exit_code == 143
