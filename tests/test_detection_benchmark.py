"""benchmarks/detection.py: header parsing, scoring of JSON reports, the summary, and one short real run."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from helpers import CORPUS, ROOT

_spec = importlib.util.spec_from_file_location("benchmarks_detection", ROOT / "benchmarks" / "detection.py")
assert _spec and _spec.loader
detection = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = detection
_spec.loader.exec_module(detection)


def _finding(category: str, severity: str = "warning", first_step: int | None = 3) -> dict:
    return {"code": f"{category}.something", "category": category, "severity": severity,
            "first_step": first_step}


def _report(*findings: dict, exit_code: int = 0, internal: int = 0) -> dict:
    return {"schema": 1, "facts": {"exit_code": exit_code}, "findings": list(findings),
            "internal_errors": [{"check": "x"}] * internal}


def test_parse_header_and_discover(tmp_path: Path) -> None:
    (tmp_path / "shape_bcast.py").write_text("# expect: shape\n# args: --max-steps 5 --lr 0.1\nprint(1)\n")
    (tmp_path / "healthy_a.py").write_text("# expect: healthy\n# a healthy one\nprint(1)\n")
    (tmp_path / "helper.py").write_text("# no header here\nX = 1\n")
    assert detection.parse_header(tmp_path / "shape_bcast.py") == {"expect": "shape",
                                                                    "args": "--max-steps 5 --lr 0.1"}
    names = [p.name for p, _ in detection.discover(tmp_path)]
    assert names == ["healthy_a.py", "shape_bcast.py"]          # sorted, header-less helper skipped
    assert [p.name for p, _ in detection.discover(tmp_path, ["bcast"])] == ["shape_bcast.py"]
    assert [p.name for p, _ in detection.discover(tmp_path, ["bcast", "healthy"])] == names


def test_row_scoring() -> None:
    row = detection.row_from_report("shape_x.py", "shape", _report(
        _finding("shape", "error", 7), _finding("shape", "warning", 2), _finding("lr", "warning", 40),
        _finding("activation", "info", 1), _finding("shape", "warning", None)))
    assert row.found == ["lr", "shape"]                    # info never counts
    assert row.first_step == 2                             # earliest warning+ of the expected category
    assert row.detected and row.other == ["lr"] and row.verdict == "ok"

    missed = detection.row_from_report("lr_x.py", "lr", _report(_finding("lr", "info", 1)))
    assert not missed.detected and missed.first_step is None and missed.verdict == "MISSED"

    alarm = detection.row_from_report("healthy_x.py", "healthy", _report(_finding("grad", "warning", 60)))
    assert alarm.verdict == "FALSE ALARM" and not alarm.detected

    quiet = detection.row_from_report("healthy_y.py", "healthy", _report(_finding("fit", "info"), internal=2))
    assert quiet.verdict == "ok" and quiet.internal_errors == 2
    assert "2 internal errors" in detection.format_row(quiet)

    lost = detection.row_from_report("shape_y.py", "shape", None)
    assert lost.verdict == "NO REPORT" and not lost.detected

    crashed = detection.row_from_report("healthy_z.py", "healthy", _report(exit_code=1))
    assert crashed.verdict == "EXIT 1"                    # a healthy script must run to the end
    intended = detection.row_from_report("shape_z.py", "shape", _report(_finding("shape"), exit_code=1))
    assert intended.verdict == "ok" and intended.detected  # a buggy script may crash on its bug

    typo = detection.row_from_report("shapes_z.py", "shapes", _report(_finding("shape")))
    assert typo.verdict == "BAD HEADER" and "shapes" in typo.detail


def test_summary_counts() -> None:
    rows = [
        detection.row_from_report("a.py", "shape", _report(_finding("shape", first_step=3), _finding("lr"))),
        detection.row_from_report("b.py", "lr", _report(_finding("lr", first_step=120))),
        detection.row_from_report("c.py", "grad", _report(_finding("numerics"), _finding("lr"))),
        detection.row_from_report("d.py", "zero-grad", None),
        detection.row_from_report("healthy_e.py", "healthy", _report(_finding("fit", "info"))),
        detection.row_from_report("healthy_f.py", "healthy", _report(_finding("lr"), _finding("grad"))),
    ]
    s = detection.summarise(rows)
    assert (s.buggy, s.detected, s.healthy, s.false_alarms, s.other_categories, s.early) == (4, 2, 2, 1, 3, 1)
    assert s.problems == 1
    assert s.headline_right == 2                     # a.py (shape first) and b.py; c.py headlines numerics
    assert s.lines() == ["problems: 1 script(s) without a usable run (see the verdict column)",
                         "headline right 2/4",
                         "first warning within 50 steps: 1/4",
                         "recall 2/4, false alarms 1 (of 2 healthy), other categories 3"]
    assert detection.summarise(rows[:3]).lines()[0].startswith("headline right")


def test_headline_is_the_reports_headline_else_its_first_warning() -> None:
    listed = detection.row_from_report("lr_x.py", "lr", _report(_finding("activation", "info"),
                                                               _finding("lr"), _finding("activation")))
    assert listed.headline == "lr" and listed.headline_right       # info never headlines
    named = detection.row_from_report("lr_y.py", "lr", dict(_report(_finding("activation"), _finding("lr")),
                                                           headline={"code": "lr.too-high", "category": "lr"}))
    assert named.headline == "lr" and named.headline_right          # the report's own headline wins
    healthy = detection.row_from_report("healthy_x.py", "healthy", dict(_report(), headline=None))
    assert healthy.headline is None and not healthy.headline_right


@pytest.mark.skipif(not (CORPUS / "loss_input_softmax_module.py").exists()
                    or not (CORPUS / "healthy_mlp_adam.py").exists(), reason="corpus scripts missing")
def test_real_run_on_two_corpus_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = detection.main(["--filter", "loss_input_softmax_module", "--filter", "healthy_mlp_adam",
                           "--json", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:2] == ["script", "expected"]
    assert [ln.split()[0] for ln in lines[1:3]] == ["healthy_mlp_adam.py", "loss_input_softmax_module.py"]
    assert re.fullmatch(r"first warning within 50 steps: \d/1", lines[-2])
    assert re.fullmatch(r"headline right \d/1", lines[-3])
    m = re.fullmatch(r"recall (\d)/1, false alarms (\d) \(of 1 healthy\), other categories (\d+)", lines[-1])
    assert m, lines[-1]

    payload = json.loads(out.read_text())
    rows = {r["script"]: r for r in payload["rows"]}
    assert set(rows) == {"healthy_mlp_adam.py", "loss_input_softmax_module.py"}
    bug = rows["loss_input_softmax_module.py"]
    assert bug["expected"] == "loss-input" and not bug["problem"] and bug["exit_code"] == 0
    # the softmax-into-CrossEntropyLoss check fires on the first optimizer step
    assert "loss-input" in bug["found"] and bug["first_step"] == 1 and bug["verdict"] == "ok"
    assert bug["headline"] == "loss-input"                 # the report's headline is the root cause
    healthy = rows["healthy_mlp_adam.py"]
    assert healthy["expected"] == "healthy" and healthy["first_step"] is None
    # the printed summary agrees with the rows
    summary = payload["summary"]
    assert int(m.group(1)) == summary["detected"] == 1
    assert int(m.group(2)) == summary["false_alarms"] == int(bool(healthy["found"]))
    assert int(m.group(3)) == summary["other_categories"] == len(set(bug["found"]) - {"loss-input"})
