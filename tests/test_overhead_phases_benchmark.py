"""benchmarks/overhead_phases.py: a watched run's steps split into phases, the table printed."""

from __future__ import annotations

import pytest

from benchmarks.overhead_phases import PHASES, main, phase_run


def test_a_watched_run_is_split_into_its_phases() -> None:
    times, phases, enter, exit_ = phase_run("mlp100", 60, 0, True)
    assert len(times) == len(phases) == 60 and set(phases) <= set(PHASES)
    assert phases[:8] == ["dense"] * 8  # (the schedule's dense first steps)
    assert phases[50] == "sampled" and phases.count("curve") == 2  # (one in 50; the loss curve at 25 and 50)
    assert "plain" in phases and enter >= 0 and exit_ >= 0
    _, bare, _, _ = phase_run("mlp100", 10, 0, False)
    assert bare == ["plain"] * 10


def test_the_table_and_the_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", "mlp100", "--steps", "12", "--reps", "1", "--checks", "--top", "3"]) == 0
    out = capsys.readouterr().out
    for phase in PHASES:
        assert f"| {phase} |" in out
    assert "by event kind:" in out and "ALL" in out
