"""Every corpus script through the real CLI: buggy ones are caught, healthy ones stay quiet."""

from __future__ import annotations

import shlex

import pytest
from helpers import corpus_header, corpus_scripts, run_cli

SCRIPTS = corpus_scripts()


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_corpus_script(script):
    meta = corpus_header(script)
    if meta.get("slow") and meta["slow"].lower() in ("1", "yes", "true"):
        pytest.skip("slow corpus script: run by benchmarks/detection.py")
    args = shlex.split(meta.get("args", ""))
    result = run_cli("run", str(script), *args)
    assert result.report is not None, result.stderr[-3000:]
    assert "Traceback (most recent call last)" not in result.stderr or result.report["facts"].get("exit_code"), (
        result.stderr[-3000:]
    )
    assert not result.report["internal_errors"], result.report["internal_errors"]
    expected = meta["expect"]
    found = result.categories("warning")
    if expected == "healthy":
        assert not found, [f for f in result.report["findings"] if f["severity"] != "info"]
    else:
        assert expected in found, (found, result.report["findings"])
