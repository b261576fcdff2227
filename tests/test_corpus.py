"""Every corpus script through the real CLI: buggy ones are caught, healthy ones stay quiet.

The fast suite runs the subset that tests/corpus_select.py picks by its written rule (every
category, every finding code, the healthy lookalikes, every coding style, and any script not
measured yet); the others are marked slow: ``pytest -m slow tests/test_corpus.py`` runs them.
"""

from __future__ import annotations

import shlex

import pytest
from corpus_select import REFRESH, select
from helpers import corpus_header, corpus_scripts, run_cli

SCRIPTS = corpus_scripts()
SELECTION = select(SCRIPTS)
FAST = SELECTION.fast()


@pytest.mark.parametrize("script", [pytest.param(p, marks=() if p.name in FAST else pytest.mark.slow, id=p.stem)
                                    for p in SCRIPTS])
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
    # the fast subset keeps each finding code covered through one script: that script must still report it
    kept = {code for code, severity in SELECTION.covers.get(script.name, {}).items() if severity != "info"}
    lost = sorted(kept - result.codes("warning"))
    assert not lost, (
        f"{script.name} is the fast suite's script for {', '.join(lost)} (tests/corpus_index.json), but its run "
        f"no longer reports it at warning or error: the fast suite has lost that code. If the detector changed "
        f"on purpose, re-measure the corpus with `{REFRESH}` (another script, or none, will cover it)."
    )
