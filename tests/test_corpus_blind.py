"""The blind fault corpus (tests/corpus_blind): structure only, fast.

tests/corpus_blind is a held-out measure of generalisation whose fault descriptions are NOT in the
repository: file names say only the expected category (``<category>_bNN.py``), no script carries a
``# fault:`` line or a comment about its bug, and the README describes no script. Each fault has a fixed
twin in ``fixed/`` that differs from it only in the fix; ``healthy_bNN.py`` scripts are healthy lookalikes
without a twin. Every script is in the ``holdout`` half: detectors are never tuned on it. Detection is
measured by benchmarks/detection.py only, never by a test.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_corpus_fresh import _changed_lines, _header

from nndoctor.findings import CATEGORIES

BLIND = Path(__file__).resolve().parent / "corpus_blind"
OTHERS = tuple(BLIND.parent / name for name in ("corpus", "corpus_ported", "corpus_fresh", "corpus_fresh2"))
SCRIPTS = sorted(BLIND.glob("*.py"))
FAULTS = [p for p in SCRIPTS if _header(p).get("expect") != "healthy"]
LOOKALIKES = [p for p in SCRIPTS if _header(p).get("expect") == "healthy"]
TWINS = sorted((BLIND / "fixed").glob("*.py"))
MAX_CHANGED_LINES = 6              # a twin differs from its fault in a few lines of code, nothing else
_NAME = re.compile(r"^(?P<prefix>[a-z_]+)_b(?P<number>\d{2})\.py$")
_HEADER_KEYS = ("# expect: ", "# half: ", "# source: ")


def _leading_comments(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        if not line.startswith("#"):
            break
        out.append(line)
    return out


def test_names_say_only_the_category_and_numbers_are_unique() -> None:
    assert len(FAULTS) >= 24 and len(LOOKALIKES) >= 8
    numbers = []
    for path in SCRIPTS:
        m = _NAME.match(path.name)
        assert m, f"{path.name}: a blind script is named <category>_bNN.py"
        expect = _header(path)["expect"]
        assert m["prefix"] == expect.replace("-", "_"), path.name
        numbers.append(m["number"])
    assert len(numbers) == len(set(numbers)), "each bNN number names one script"
    assert len({_header(p)["expect"] for p in FAULTS}) >= 14, "the faults must spread over many categories"


def test_headers_hold_no_description() -> None:
    """Only expect/half/source at the top (twins add their `fixed twin of` line); no `# fault:` anywhere."""
    for path in SCRIPTS + TWINS:
        head = _leading_comments(path)
        twin = path.parent.name == "fixed"
        assert len(head) == 3 + twin, f"{path.name}: unexpected header lines {head}"
        assert all(line.startswith(key) for line, key in zip(head, _HEADER_KEYS)), path.name
        if twin:
            assert head[3] == f"# fixed twin of ../{path.name}", path.name
        assert not re.search(r"^\s*#\s*fault:", path.read_text(), re.MULTILINE), path.name
        assert _header(path)["half"] == "holdout", path.name
        assert _header(path)["expect"] in {*CATEGORIES, "healthy"}, path.name


def test_faults_have_twins_and_lookalikes_do_not() -> None:
    assert {p.name for p in TWINS} == {p.name for p in FAULTS}
    for path in TWINS:
        assert _header(path)["expect"] == "healthy", path.name
    for path in LOOKALIKES:
        assert not (BLIND / "fixed" / path.name).exists(), path.name


def test_twins_differ_only_in_the_fix() -> None:
    for path in FAULTS:
        changed = _changed_lines(path, BLIND / "fixed" / path.name)
        assert changed, f"{path.name}: the twin does not differ from the fault"
        assert len(changed) <= MAX_CHANGED_LINES, f"{path.name}: the twin changes {len(changed)} lines"


def test_every_script_reads_its_seed_and_reports_a_final_metric() -> None:
    for path in SCRIPTS + TWINS:
        text = path.read_text()
        assert 'os.environ.get("NNDOCTOR_SEED"' in text and 'print(f"final: ' in text, path.name
        assert not re.search(r"^\s*(import|from)\s+torchvision", text, re.MULTILINE), path.name
        assert "urlopen" not in text and "fetch_" not in text, path.name      # sklearn or generated data only


def test_readme_describes_no_script_and_names_are_new() -> None:
    readme = (BLIND / "README.md").read_text()
    assert not re.search(r"_b\d{2}\b", readme), "the README must not name (or describe) single scripts"
    older = {p.name for folder in OTHERS for p in folder.glob("*.py")}
    assert not older & {p.name for p in SCRIPTS}
