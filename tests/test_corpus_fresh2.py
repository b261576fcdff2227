"""The second fresh fault corpus (tests/corpus_fresh2): structure only, fast.

tests/corpus_fresh2 holds faults of kinds that tests/corpus, tests/corpus_ported and tests/corpus_fresh do
not have (each with a fixed twin in ``fixed/``) and healthy lookalikes (top-level ``# expect: healthy``
scripts with no twin). Detection on it is measured by benchmarks/detection.py only (README there), never
by a test, so that both of its halves stay an honest measure of generalisation.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_corpus_fresh import _changed_lines, _header

from nndoctor.findings import CATEGORIES

FRESH2 = Path(__file__).resolve().parent / "corpus_fresh2"
OLDER = tuple(FRESH2.parent / name for name in ("corpus", "corpus_ported", "corpus_fresh"))
SCRIPTS = sorted(FRESH2.glob("*.py"))
FAULTS = [p for p in SCRIPTS if _header(p).get("expect") != "healthy"]
LOOKALIKES = [p for p in SCRIPTS if _header(p).get("expect") == "healthy"]
TWINS = sorted((FRESH2 / "fixed").glob("*.py"))
MAX_CHANGED_LINES = 6          # a twin differs from its fault in a few lines of code, nothing else


def test_faults_have_twins_and_halves_follow_the_rule() -> None:
    """Faults sorted by (expected category, name) alternate tune, holdout, ...; twins carry their fault's half."""
    assert len(FAULTS) >= 16
    ordered = sorted(FAULTS, key=lambda p: (_header(p)["expect"], p.name))
    for i, path in enumerate(ordered):
        meta = _header(path)
        assert meta["expect"] in CATEGORIES, path.name
        assert meta["half"] == ("tune" if i % 2 == 0 else "holdout"), path.name
        assert meta.get("source") and meta.get("fault"), path.name
        assert path.name.startswith(meta["expect"].replace("-", "_") + "_"), path.name
        twin = FRESH2 / "fixed" / path.name
        twin_meta = _header(twin)
        assert twin_meta["expect"] == "healthy" and twin_meta["half"] == meta["half"], twin.name
        assert f"# fixed twin of ../{path.name}: " in twin.read_text(), twin.name
    assert {_header(p)["half"] for p in FAULTS} == {"tune", "holdout"}
    assert len({_header(p)["expect"] for p in FAULTS}) >= 12, "the faults must spread over many categories"


def test_twins_differ_only_in_the_fix() -> None:
    """Same code apart from one small region: at most MAX_CHANGED_LINES lines removed or added in all."""
    for path in FAULTS:
        changed = _changed_lines(path, FRESH2 / "fixed" / path.name)
        assert changed, f"{path.name}: the twin does not differ from the fault"
        assert len(changed) <= MAX_CHANGED_LINES, f"{path.name}: the twin changes {len(changed)} lines"


def test_healthy_lookalikes_alternate_and_have_no_twin() -> None:
    assert len(LOOKALIKES) >= 6
    for i, path in enumerate(sorted(LOOKALIKES)):
        meta = _header(path)
        assert path.name.startswith("healthy_") and meta.get("source"), path.name
        assert meta.get("fault", "").startswith("none. "), path.name
        assert meta["half"] == ("tune" if i % 2 == 0 else "holdout"), path.name
        assert not (FRESH2 / "fixed" / path.name).exists(), path.name
    assert {p.name for p in TWINS} == {p.name for p in FAULTS}


def test_every_script_reads_its_seed_and_reports_a_final_metric() -> None:
    for path in SCRIPTS + TWINS:
        text = path.read_text()
        assert 'os.environ.get("NNDOCTOR_SEED"' in text, path.name
        assert text.rstrip().splitlines()[-1].strip().startswith(("print(f\"final: ", "main()")), path.name
        assert 'print(f"final: ' in text, path.name
        assert not re.search(r"^\s*(import|from)\s+torchvision", text, re.MULTILINE), path.name
        assert "urlopen" not in text and "fetch_" not in text, path.name      # sklearn or generated data only


def test_fresh2_kinds_are_new() -> None:
    """No script shares a file name or a `# fault:` line with the three older corpora."""
    older = [p for folder in OLDER for p in folder.glob("*.py")]
    assert not {p.name for p in older} & {p.name for p in SCRIPTS}
    older_faults = {_header(p).get("fault") for p in older} - {None}
    assert not older_faults & {_header(p)["fault"] for p in SCRIPTS}
