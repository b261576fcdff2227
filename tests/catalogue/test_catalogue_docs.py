"""docs/findings/ is generated from the catalogue and kept current; docs/ cites no outside paths or issues."""

from __future__ import annotations

import re
from pathlib import Path

from nndoctor.catalogue import CATALOGUE
from nndoctor.catalogue import docs as catalogue_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_findings_is_current(tmp_path):
    """Regenerate into a temporary folder and compare: run `python -m nndoctor.catalogue.docs` if this fails."""
    catalogue_docs.write(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.md")}
    committed = {p.name: p.read_text() for p in (ROOT / "docs" / "findings").glob("*.md")}
    assert set(fresh) == set(committed), sorted(set(fresh) ^ set(committed))
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"out of date (run python -m nndoctor.catalogue.docs): {stale[:10]}"
    assert catalogue_docs.write(ROOT / "docs" / "findings", check=True) == []


def test_every_code_has_a_page_listed_in_the_index():
    index = (ROOT / "docs" / "findings" / "README.md").read_text()
    for code, info in CATALOGUE.items():
        page = (ROOT / info.page).read_text()
        assert page.splitlines()[2] == f"# `{code}`" and info.meaning in page and info.detection in page
        assert f"]({code}.md)" in index


def test_check_mode_reports_a_stale_page(tmp_path):
    catalogue_docs.write(tmp_path)
    (tmp_path / "shape.broadcast-in-loss.md").write_text("edited by hand\n")
    (tmp_path / "shape.removed-code.md").write_text("a code that no longer exists\n")
    assert catalogue_docs.main([str(tmp_path), "--check"]) == 1
    assert catalogue_docs.write(tmp_path, check=True) == ["shape.broadcast-in-loss.md", "shape.removed-code.md"]
    catalogue_docs.write(tmp_path)
    assert catalogue_docs.main([str(tmp_path), "--check"]) == 0 and not (tmp_path / "shape.removed-code.md").exists()


def test_docs_name_no_outside_path_and_no_issue_number():
    bad = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"/work/|/home/|/tmp/|\.\./shared|\bissues? #?\d+|(?<![\w&])#\d+\b", line, re.I):
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:80]}")
    assert not bad, bad
