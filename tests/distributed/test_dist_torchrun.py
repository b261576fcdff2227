"""Real 2-process data-parallel runs on CPU (gloo, torchrun): ``nndoctor run --nproc 2`` and
``torchrun -m nndoctor run``. Each run costs ~11 s of CPU (four Python processes importing torch),
30-40 s wall on a loaded 2-core machine: the healthy run (``--nproc``) and one injected fault under
the user's own torchrun run in ``make test``; the other faults are marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, CliResult, run_cli

SCRIPTS = Path(__file__).resolve().parent / "scripts"
DDP = str(SCRIPTS / "ddp_module.py")
MANUAL = str(SCRIPTS / "manual_allreduce.py")


def nproc(script: str, *args: str) -> CliResult:
    return run_cli("run", "--nproc", "2", script, *args, timeout=150)


def dist_codes(res: CliResult, min_severity: str = "info") -> set[str]:
    return {c for c in res.codes(min_severity) if c.startswith("distributed.")}


def only(res: CliResult, code: str) -> dict:
    found = [f for f in res.report["findings"] if f["code"] == code]
    assert len(found) == 1, res.report["findings"]
    return found[0]


def test_healthy_ddp_is_quiet_and_merged_once() -> None:
    res = nproc(DDP)
    assert res.code == 0, res.stderr
    assert res.report["summary"]["error"] == res.report["summary"]["warning"] == 0, res.report["findings"]
    dist = res.report["facts"]["distributed"]
    assert dist["ranks_reported"] == [0, 1] and dist["ranks_missing"] == [] and dist["world_size"] == 2
    assert res.stderr.count("merged the results of all 2 ranks") == 1
    keys = [(f["code"], f["location"]) for f in res.report["findings"]]
    assert len(keys) == len(set(keys))  # no duplicate findings after the merge


@pytest.mark.slow
def test_model_not_wrapped_in_ddp_diverges() -> None:
    res = nproc(DDP, "--bug", "no-ddp")
    f = only(res, "distributed.replicas-diverged")
    assert f["severity"] == "error" and f["evidence"]["differing_ranks"] == [1] and f["first_step"] == 1
    assert f["evidence"]["ranks"] == [0, 1] and "compared across all 2 ranks" in f["message"]
    assert only(res, "distributed.gradients-not-averaged")["evidence"]["reduction"] == "none"


def test_user_torchrun_rank0_merges_and_writes_the_report() -> None:
    """``torchrun -m nndoctor run``: every rank observed, rank 0 waits for the others and merges."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        env = dict(os.environ, OMP_NUM_THREADS="1", NNDOCTOR_RUN_DIR=os.path.join(tmp, "ranks"))
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                               "-m", "nndoctor", "run", "--json", out, MANUAL, "--bug", "sum"],
                              capture_output=True, text=True, timeout=150, cwd=str(ROOT), env=env)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(Path(out).read_text())
        assert sorted(os.listdir(os.path.join(tmp, "ranks"))) == ["rank-00000.json", "rank-00001.json"]
    codes = {f["code"] for f in report["findings"] if f["severity"] != "info"}
    assert codes == {"distributed.gradients-not-averaged"}, report["findings"]
    assert proc.stderr.count("merged the results of all 2 ranks") == 1
    assert proc.stderr.count("distributed.gradients-not-averaged") >= 1


@pytest.mark.slow
def test_healthy_manual_allreduce_is_quiet() -> None:
    res = nproc(MANUAL)
    assert res.code == 0 and res.report["summary"]["error"] == res.report["summary"]["warning"] == 0, \
        res.report["findings"]
    assert dist_codes(res) == {"distributed.lr-not-scaled"}  # info: its lr ignores the world size


@pytest.mark.slow
@pytest.mark.parametrize("script,bug,code", [
    (DDP, "rank-grad", "distributed.replicas-diverged"),
    (MANUAL, "rank-seed", "distributed.replicas-diverged"),
    (MANUAL, "none", "distributed.replicas-diverged"),
    (DDP, "same-data", "distributed.same-data-every-rank"),
    (MANUAL, "same-data", "distributed.same-data-every-rank"),
    (DDP, "no-set-epoch", "distributed.sampler-epoch-not-set"),
    (MANUAL, "sum", "distributed.gradients-not-averaged"),
    (MANUAL, "bn-tiny", "distributed.batchnorm-not-synced"),
    (DDP, "accum-sync", "distributed.accumulation-without-no-sync"),
])
def test_injected_fault_is_found(script: str, bug: str, code: str) -> None:
    extra = ["--batch", "4"] if bug == "bn-tiny" and script == DDP else []
    res = nproc(script, "--bug", bug, *extra)
    assert code in dist_codes(res), res.report["findings"]
    sev = "info" if code == "distributed.accumulation-without-no-sync" else "warning"
    assert code in dist_codes(res, sev)


@pytest.mark.slow
def test_ddp_batchnorm_on_tiny_batches() -> None:
    res = nproc(DDP, "--bug", "bn-tiny", "--batch", "4")
    f = only(res, "distributed.batchnorm-not-synced")
    assert (f["evidence"]["per_rank_batch"], f["evidence"]["global_batch"]) == (4, 8)
    assert f["evidence"]["ranks"] == [0, 1] and "seen on all 2 ranks" in f["message"]


@pytest.mark.slow
def test_a_rank_that_dies_is_named() -> None:
    res = nproc(str(SCRIPTS / "rank_dies.py"))
    assert res.code != 0
    assert res.report["facts"]["distributed"]["ranks_missing"] == [1]
    assert "rank 1 wrote no result" in res.stderr


@pytest.mark.slow
def test_the_exit_code_is_the_scripts() -> None:
    res = nproc(str(SCRIPTS / "exit_code.py"))
    assert res.code == 3, res.stderr
    assert res.report["facts"]["distributed"]["exit_codes"] == {"0": 3, "1": 3}


@pytest.mark.slow
def test_fsdp2_shards_are_not_diverged_replicas() -> None:
    res = nproc(str(SCRIPTS / "fsdp2.py"))
    assert res.code == 0, res.stderr
    assert not dist_codes(res, "warning"), res.report["findings"]
    # every check reads its rank's shard of the DTensor parameters: none fails, none is switched off
    assert res.report["internal_errors"] == [], res.report["internal_errors"]


FSDP1 = str(SCRIPTS / "fsdp1.py")


@pytest.mark.parametrize("args", [
    pytest.param(("--orig", "--wrap"), id="orig-params-wrapped"),
    pytest.param(("--orig",), id="orig-params", marks=pytest.mark.slow),
    pytest.param((), id="flat-params", marks=pytest.mark.slow),
])
def test_fsdp1_shards_are_not_diverged_replicas_nor_parameters_without_gradient(args: tuple[str, ...]) -> None:
    # with use_orig_params=True the optimizer holds plain tensors viewing each rank's shard (empty
    # on the ranks without one): they differ across ranks and an empty one never gets a gradient
    res = nproc(FSDP1, *args)
    assert res.code == 0, res.stderr
    assert not res.codes("warning"), res.report["findings"]
    assert res.report["internal_errors"] == [], res.report["internal_errors"]


@pytest.mark.slow
def test_fsdp1_every_rank_on_the_same_data_is_found() -> None:
    res = nproc(FSDP1, "--orig", "--wrap", "--bug", "same-data")
    assert "distributed.same-data-every-rank" in dist_codes(res, "warning"), res.report["findings"]
