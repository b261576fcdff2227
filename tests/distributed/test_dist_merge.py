"""Per-rank result files and their merge (results.py, merge.py) and ``nndoctor merge``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import run_cli

from nndoctor.distributed.merge import merge_results, rank_label
from nndoctor.distributed.rankinfo import RankInfo
from nndoctor.distributed.results import collect, write_result
from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.report.jsonout import to_json


def _info(rank: int, world: int = 2) -> RankInfo:
    return RankInfo(rank=rank, world_size=world, local_rank=rank, local_world_size=world, run_id="t", host="h")


def _report(*findings: Finding, dist: dict | None = None, steps: int = 10) -> dict:
    facts = {"steps": steps, "script": "/x/train.py"}
    if dist is not None:
        facts["distributed"] = dist
    return Report(findings=list(findings), facts=facts).to_dict()


def _finding(code: str = "lr.too-high", location: str = "opt", step: int = 3, count: int = 1,
             severity: Severity = Severity.WARNING) -> Finding:
    return Finding(code=code, severity=severity, step=Step.TUNE, message="lr too high", evidence={"lr": 1.0},
                   fixes=("lower it",), location=location, first_step=step, count=count)


def test_rank_label() -> None:
    assert rank_label([0, 1], 2) == "all 2 ranks"
    assert rank_label([1], 4) == "rank 1"
    assert rank_label([0, 1, 2], 4) == "ranks 0-2"
    assert rank_label([0, 3], 4) == "ranks 0, 3"


def test_the_same_finding_on_two_ranks_is_one_finding_with_its_ranks(tmp_path: Path) -> None:
    write_result(str(tmp_path), _info(0), _report(_finding(step=5)), exit_code=0, started=time.time(), crashed=False)
    write_result(str(tmp_path), _info(1), _report(_finding(step=3, count=2), _finding("grad.exploding", "model")),
                 exit_code=0, started=time.time(), crashed=False)
    payloads, missing = collect(str(tmp_path), [0, 1], timeout=0)
    assert missing == []
    report = merge_results(payloads)
    by_code = {f.code: f for f in report.findings}
    assert len(report.findings) == 2
    lr = by_code["lr.too-high"]
    assert lr.evidence["ranks"] == [0, 1] and lr.count == 3 and lr.first_step == 3
    assert lr.message.endswith("[seen on all 2 ranks]") and lr.fixes == ("lower it",)
    assert by_code["grad.exploding"].evidence["ranks"] == [1]
    assert report.facts["distributed"]["ranks_reported"] == [0, 1]
    assert json.loads(to_json(report))["facts"]["distributed"]["world_size"] == 2


def test_a_rank_that_wrote_nothing_is_named_after_the_timeout(tmp_path: Path) -> None:
    write_result(str(tmp_path), _info(0, 3), _report(), exit_code=0, started=time.time(), crashed=False)
    t0 = time.monotonic()
    payloads, missing = collect(str(tmp_path), [0, 1, 2], timeout=0.3, poll=0.05)
    assert 0.25 < time.monotonic() - t0 < 3
    assert sorted(payloads) == [0] and missing == [1, 2]
    report = merge_results(payloads, world_size=3, missing=missing)
    assert report.facts["distributed"]["ranks_missing"] == [1, 2]


def test_results_of_an_earlier_launch_are_ignored(tmp_path: Path) -> None:
    write_result(str(tmp_path), _info(1), _report(), exit_code=0, started=1000.0, crashed=False)
    payloads, missing = collect(str(tmp_path), [1], timeout=0, since=time.time() - 60)
    assert payloads == {} and missing == [1]


def test_cross_rank_findings_come_from_the_fingerprints_in_the_facts(tmp_path: Path) -> None:
    batches = {"1": "a", "2": "b", "3": "c"}
    for rank in (0, 1):
        write_result(str(tmp_path), _info(rank), _report(dist={"params": {}, "batches": batches, "grads": {}}),
                     exit_code=0, started=time.time(), crashed=False)
    report = merge_results(collect(str(tmp_path), [0, 1], timeout=0)[0])
    (f,) = report.findings
    assert f.code == "distributed.same-data-every-rank" and f.message.endswith("[compared across all 2 ranks]")
    assert "params" not in json.dumps(report.facts["distributed"])  # the raw fingerprints stay in the rank files


@pytest.mark.parametrize("gate", [None, "warning"])
def test_nndoctor_merge_command(tmp_path: Path, gate: str | None) -> None:
    runs = tmp_path / "ranks"
    for rank in (0, 1):
        write_result(str(runs), _info(rank), _report(_finding()), exit_code=0, started=time.time(), crashed=False)
    out = tmp_path / "merged.json"
    args = ["merge", str(runs), "--json", str(out)] + (["--fail-on", gate] if gate else [])
    res = run_cli(*args, timeout=60)
    assert res.code == (1 if gate else 0), res.stderr
    report = json.loads(out.read_text())
    assert [f["evidence"]["ranks"] for f in report["findings"]] == [[0, 1]]
    assert "merged the results of all 2 ranks" in res.stderr


def test_nndoctor_merge_without_results_is_a_usage_error(tmp_path: Path) -> None:
    res = run_cli("merge", str(tmp_path), timeout=60)
    assert res.code == 2 and "no rank result" in res.stderr


def _run_result(exit_code: int):
    from nndoctor.monitor.runner import RunResult

    return RunResult(report=Report(findings=[_finding()], facts={"steps": 4, "script": "/x/train.py"}),
                     exit_code=exit_code, exception=None)


def _ns():
    import argparse

    return argparse.Namespace(script="train.py", json=None, html=None, fail_on=None)


def test_a_rank_other_than_0_writes_its_result_and_prints_nothing(tmp_path: Path, monkeypatch) -> None:
    import io

    from rich.console import Console

    from nndoctor.cli.merge import finish_run

    monkeypatch.setenv("NNDOCTOR_RUN_DIR", str(tmp_path))
    buf = io.StringIO()
    assert finish_run(_info(1), _run_result(4), _ns(), Console(file=buf), time.time()) == 4
    assert buf.getvalue() == ""
    payload = json.loads((tmp_path / "rank-00001.json").read_text())
    assert payload["exit_code"] == 4 and payload["report"]["findings"][0]["code"] == "lr.too-high"


def test_a_fault_in_the_merge_keeps_the_scripts_exit_code(tmp_path: Path, monkeypatch) -> None:
    import io

    from rich.console import Console

    from nndoctor.cli.merge import finish_run
    from nndoctor.distributed import rankrun

    def boom(*args, **kwargs):
        raise RuntimeError("a bug in the merge")

    monkeypatch.setenv("NNDOCTOR_RUN_DIR", str(tmp_path))
    monkeypatch.setattr(rankrun, "merge_results", boom)
    buf = io.StringIO()
    assert finish_run(_info(0, 1), _run_result(5), _ns(), Console(file=buf, width=100), time.time()) == 5
    assert "lr.too-high" in buf.getvalue()  # rank 0's own report instead of the merged one
