"""The observer's one re-entrancy guard (nndoctor/monitor/busy.py)."""

from __future__ import annotations

import pytest

from nndoctor.monitor import Observer


def test_busy_nests_and_restores_the_previous_value_whatever_is_raised():
    obs = Observer(checks=[])
    assert obs._busy is False
    with obs.busy:
        assert obs._busy is True
        with pytest.raises(ZeroDivisionError), obs.busy:
            raise ZeroDivisionError
        assert obs._busy is True  # the inner exit restored the outer's value, not False
    assert obs._busy is False
