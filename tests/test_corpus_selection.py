"""The fast corpus subset (tests/corpus_select.py) keeps every category, finding code and coding style.

These tests read the scripts and tests/corpus_index.json only (no run): they fail, naming what is
lost, when the subset that ``make test`` runs stops covering something the whole corpus covers.
Whether the picked scripts still report their codes is asserted by tests/test_corpus.py itself.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from corpus_select import INDEX, REFRESH, STYLES, digest, header, load_index, scripts, select, styles_of

_RANK = {"info": 0, "warning": 1, "error": 2}


def _measured(paths: list[Path], index: dict[str, dict]) -> dict[str, dict]:
    return {p.name: index[p.name] for p in paths if p.name in index and index[p.name]["digest"] == digest(p)}


def test_fast_subset_covers_every_category_code_style_and_lookalike():
    paths = scripts()
    index = load_index()
    fast = select(paths, index).fast()
    rows = _measured(paths, index)
    meta = {p.name: header(p) for p in paths}
    lost: list[str] = []
    for category in sorted({m["expect"] for m in meta.values()}):
        if not any(meta[n]["expect"] == category for n in fast):
            lost.append(f"category {category!r}: no fast script expects it")
    best: dict[str, int] = {}
    for row in rows.values():
        for code, severity in row["codes"].items():
            best[code] = max(best.get(code, 0), _RANK[severity])
    for code, rank in sorted(best.items()):
        if not any(_RANK[rows[n]["codes"].get(code, "info")] >= rank and code in rows[n]["codes"]
                   for n in fast if n in rows):
            lost.append(f"code {code}: reported by the corpus but by no fast script")
    for group in ("faulty", "healthy"):
        members = [p for p in paths if (meta[p.name]["expect"] == "healthy") == (group == "healthy")]
        for style in sorted(STYLES):
            having = [p.name for p in members if style in styles_of(p)]
            if having and not set(having) & fast:
                lost.append(f"style {style!r}: {len(having)} {group} scripts, none fast")
    for name, row in rows.items():
        if meta[name]["expect"] == "healthy" and row["codes"] and name not in fast:
            lost.append(f"healthy lookalike {name} ({', '.join(row['codes'])} at info) is not fast")
    for p in paths:
        if p.name not in rows and p.name not in fast:
            lost.append(f"{p.name} was never measured and is not fast")
    assert not lost, "the fast corpus subset lost coverage:\n" + "\n".join(lost)
    unmeasured = sorted(p.name for p in paths if p.name not in rows)
    if unmeasured:
        warnings.warn(f"{len(unmeasured)} corpus scripts run in the fast suite until measured ({REFRESH} --stale): "
                      + ", ".join(unmeasured[:10]), stacklevel=1)


def test_the_fast_subset_is_a_subset():
    paths = scripts()
    fast = select(paths).fast()
    assert fast <= {p.name for p in paths}
    if len(_measured(paths, load_index())) == len(paths):
        assert len(fast) < len(paths)


def _corpus(tmp_path: Path, scripts_: dict[str, str]) -> list[Path]:
    paths = []
    for name, text in scripts_.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    return sorted(paths)


_MODULE = "import torch\nclass Net(torch.nn.Module):\n    pass\nopt = torch.optim.SGD([], lr=0.1)\n"
_SEQ = "import torch\nnet = torch.nn.Sequential(torch.nn.Linear(2, 2))\nopt = torch.optim.SGD([], lr=0.1)\n"


def test_rule_picks_the_cheapest_script_per_code_and_leaves_redundant_ones_slow(tmp_path):
    paths = _corpus(tmp_path, {
        "lr_a.py": "# expect: lr\n" + _MODULE,
        "lr_b.py": "# expect: lr\n" + _MODULE + "x = 1\n",
        "lr_c.py": "# expect: lr\n" + _MODULE + "y = 2\n",
        "healthy_a.py": "# expect: healthy\n" + _MODULE,
        "healthy_b.py": "# expect: healthy\n" + _MODULE + "z = 3\n",
    })
    by = {p.name: p for p in paths}
    index = {
        "lr_a.py": {"digest": digest(by["lr_a.py"]), "cpu_s": 9.0, "codes": {"lr.too-high": "warning", "grad.x": "warning"}},
        "lr_b.py": {"digest": digest(by["lr_b.py"]), "cpu_s": 2.0, "codes": {"lr.too-high": "warning"}},
        "lr_c.py": {"digest": digest(by["lr_c.py"]), "cpu_s": 3.0, "codes": {"lr.too-high": "warning"}},
        "healthy_a.py": {"digest": digest(by["healthy_a.py"]), "cpu_s": 1.0, "codes": {}},
        "healthy_b.py": {"digest": digest(by["healthy_b.py"]), "cpu_s": 5.0, "codes": {"lr.too-high": "info"}},
    }
    sel = select(paths, index)
    assert sel.fast() == {"lr_a.py", "lr_b.py", "healthy_a.py", "healthy_b.py"}
    assert sel.covers["lr_b.py"] == {"lr.too-high": "warning"} and sel.covers["lr_a.py"] == {"grad.x": "warning"}
    assert any("lookalike" in why for why in sel.reasons["healthy_b.py"])
    assert sel.reasons["lr_c.py"] == []  # slow: lr_b covers its category and its code more cheaply


def test_new_or_edited_scripts_and_new_styles_land_in_the_fast_subset(tmp_path):
    paths = _corpus(tmp_path, {
        "lr_a.py": "# expect: lr\n" + _MODULE,
        "lr_b.py": "# expect: lr\n" + _MODULE + "x = 1\n",
        "lr_seq.py": "# expect: lr\n" + _SEQ,
        "healthy_a.py": "# expect: healthy\n" + _MODULE,
        "shape_new.py": "# expect: shape\n" + _MODULE,
    })
    by = {p.name: p for p in paths}
    index = {n: {"digest": digest(by[n]), "cpu_s": float(i), "codes": {}}
             for i, n in enumerate(["lr_a.py", "lr_b.py", "lr_seq.py", "healthy_a.py"])}
    index["lr_b.py"]["digest"] = "edited"
    sel = select(paths, index)
    assert "shape_new.py" in sel.fast()                    # never measured (and a new category)
    assert "lr_b.py" in sel.fast()                         # edited since it was measured
    assert any("sequential" in why for why in sel.reasons["lr_seq.py"])  # the only faulty nn.Sequential script


def test_committed_index_says_how_it_was_made_and_holds_sane_rows():
    data = json.loads(INDEX.read_text())
    assert data["written_by"] == REFRESH
    assert data["scripts"], "an empty index runs the whole corpus in the fast suite"
    for name, row in data["scripts"].items():
        assert row["cpu_s"] >= 0 and set(row["codes"].values()) <= set(_RANK), name
