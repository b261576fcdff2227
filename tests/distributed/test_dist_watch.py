"""``nndoctor.watch()`` and the Lightning callback on the ranks of a data-parallel job: each rank
writes its result file when its session ends, rank 0 merges. In one process, playing the ranks
one after the other (torchrun's environment set by hand); the real 2-rank torchrun runs are at
the end (slow)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import ROOT
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import nndoctor
from nndoctor.distributed import session as session_mod

SCRIPT = str(Path(__file__).resolve().parent / "scripts" / "watch_ddp.py")


@pytest.fixture
def ranks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``play(rank)`` sets torchrun's environment for that rank of 2 (results in tmp_path), with the
    session counter restarted, as in a fresh process."""
    monkeypatch.setenv("NNDOCTOR_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(session_mod, "_claimed", [])

    def play(rank: int) -> None:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        monkeypatch.setattr(session_mod, "_sessions", itertools.count(1))

    return play


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def _train_watched(rank: int, shard: bool, **watch: Any) -> nndoctor.Doctor:
    torch.manual_seed(0)  # the same initial weights on every rank
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sampler = DistributedSampler(_data(), num_replicas=2, rank=rank, seed=0) if shard else None
    loader = DataLoader(_data(), batch_size=16, sampler=sampler, shuffle=not shard,
                        generator=torch.Generator().manual_seed(3))
    with nndoctor.watch(model, opt, **watch) as doctor:
        for epoch in range(2):
            if sampler is not None:
                sampler.set_epoch(epoch)
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
    return doctor


@pytest.mark.parametrize("shard", [False, True])
def test_rank0_gets_the_merged_report(ranks, tmp_path: Path, shard: bool) -> None:
    ranks(1)
    own = _train_watched(1, shard).report()
    assert "ranks_reported" not in own.facts.get("distributed", {})  # rank 1 keeps its own report
    assert (tmp_path / "watch-1" / "rank-00001.json").exists()
    ranks(0)
    start = time.monotonic()
    report = _train_watched(0, shard).report()
    assert time.monotonic() - start < 30  # rank 1's file was there: no waiting for the timeout
    dist = report.facts["distributed"]
    assert dist["ranks_reported"] == [0, 1] and dist["ranks_missing"] == [] and report.facts["api"] == "watch"
    codes = {f.code for f in report.findings}
    # without a DistributedSampler both ranks train on the same batches; with one, they do not
    assert ("distributed.same-data-every-rank" in codes) is not shard
    # no DDP: on different batches the replicas drift apart, on the same ones they stay equal
    assert ("distributed.replicas-diverged" in codes) is shard


def test_rank0_waits_only_for_ranks_that_watch(ranks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "MARKER_GRACE", 0.3)
    ranks(0)
    start = time.monotonic()
    report = _train_watched(0, shard=True).report()
    assert time.monotonic() - start < 20  # not the 120 s merge timeout
    dist = report.facts["distributed"]
    assert dist["ranks_reported"] == [0] and dist["ranks_unwatched"] == [1] and dist["ranks_missing"] == []


def test_a_rank_that_watches_but_never_ends_is_named(ranks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNDOCTOR_MERGE_TIMEOUT", "0.5")
    (tmp_path / "watch-1").mkdir()
    (tmp_path / "watch-1" / "started-00001").write_text(json.dumps({"started": time.time()}))
    ranks(0)
    dist = _train_watched(0, shard=True).report().facts["distributed"]
    assert dist["ranks_reported"] == [0] and dist["ranks_missing"] == [1]


def test_only_rank0_prints_live(ranks, capsys: pytest.CaptureFixture[str]) -> None:
    ranks(1)
    seen: list[Any] = []
    torch.manual_seed(0)
    model = nn.Linear(6, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with nndoctor.watch(model, opt, live=True, on_finding=seen.append):
        for xb, yb in DataLoader(_data(), batch_size=8):
            opt.zero_grad()
            F.cross_entropy(model(xb) * float("nan"), yb).backward()  # a NaN loss: a finding on every rank
            opt.step()
    assert seen and seen[0].code not in capsys.readouterr().err  # the callback runs, the printer does not


def test_watch_inside_nndoctor_run_leaves_the_rank_to_the_command(ranks, tmp_path: Path) -> None:
    ranks(1)
    session_mod.claim_rank("run")
    _train_watched(1, shard=True)
    assert not (tmp_path / "watch-1").exists()


def test_one_process_is_not_a_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert session_mod.rank_session() is None
    assert _train_watched(0, shard=False)._rank is None


class _Trainer:
    """What the callback reads of a Lightning trainer under a DDP strategy."""

    def __init__(self, rank: int, opt: torch.optim.Optimizer) -> None:
        self.global_rank, self.local_rank, self.world_size, self.num_nodes = rank, rank, 2, 1
        self.optimizers = [opt]


def test_lightning_callback_is_rank_aware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lightning.pytorch")
    from nndoctor.integrations.lightning import NNDoctorCallback

    for name in ("RANK", "WORLD_SIZE"):  # Lightning's own launcher does not set RANK
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNDOCTOR_RUN_DIR", str(tmp_path))
    reports = {}
    for rank in (1, 0):
        monkeypatch.setattr(session_mod, "_sessions", itertools.count(1))
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        callback, trainer = NNDoctorCallback(), _Trainer(rank, opt)
        callback.on_fit_start(trainer, model)
        for xb, yb in DataLoader(_data(), batch_size=16):  # the same batches on both ranks
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        callback.on_fit_end(trainer, model)
        reports[rank] = callback.report()
    assert "ranks_reported" not in reports[1].facts.get("distributed", {})
    dist = reports[0].facts["distributed"]
    assert dist["ranks_reported"] == [0, 1] and reports[0].facts["api"] == "lightning"
    assert (tmp_path / "watch-1" / "rank-00001.json").exists()


def _torchrun(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[int, dict]]:
    out = tmp_path / "r.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("NNDOCTOR_RUN_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           SCRIPT, "--out", str(out), *args],
                          capture_output=True, text=True, timeout=150, cwd=str(ROOT), env=env)
    reports = {r: json.loads(p.read_text()) for r in (0, 1) if (p := tmp_path / f"r.json.rank{r}").exists()}
    return proc, reports


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["", "same-data"])
def test_watch_in_a_real_two_rank_torchrun(tmp_path: Path, bug: str) -> None:
    proc, reports = _torchrun(tmp_path, *(["--bug", bug] if bug else []))
    assert proc.returncode == 0, proc.stderr
    merged, own = reports[0], reports[1]
    assert merged["facts"]["distributed"]["ranks_reported"] == [0, 1] and merged["internal_errors"] == []
    assert "ranks_reported" not in own["facts"].get("distributed", {})
    warned = {f["code"] for f in merged["findings"] if f["severity"] != "info"}
    assert warned == ({"distributed.same-data-every-rank"} if bug else set()), merged["findings"]
    assert "nndoctor" not in proc.stdout  # library use is quiet


@pytest.mark.slow
def test_watch_on_rank0_only_in_a_real_torchrun(tmp_path: Path) -> None:
    proc, reports = _torchrun(tmp_path, "--bug", "rank0-only")
    assert proc.returncode == 0, proc.stderr
    dist = reports[0]["facts"]["distributed"]
    assert dist["ranks_reported"] == [0] and dist["ranks_unwatched"] == [1] and 1 not in reports


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["", "rank-weights", "same-data"])
def test_lightning_callback_under_a_real_ddp_strategy(tmp_path: Path, bug: str) -> None:
    """Lightning's own launcher (2 CPU processes, gloo, ~80 s on a loaded machine): rank 0's report
    is the merged one; a replica changed on rank 1, and ranks that all train on the same batches (the
    training step calls a submodule: batches are seen through the discovered DDP wrapper), are found."""
    pytest.importorskip("lightning.pytorch")
    out = tmp_path / "r.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("NNDOCTOR_RUN_DIR", None)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, str(Path(SCRIPT).with_name("lightning_ddp.py")), "--out", str(out),
                           *(["--bug", bug] if bug else [])],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["facts"]["distributed"]["ranks_reported"] == [0, 1] and report["internal_errors"] == []
    warned = {f["code"] for f in report["findings"] if f["severity"] != "info"}
    expected = {"": set(), "rank-weights": {"distributed.replicas-diverged"},
                "same-data": {"distributed.same-data-every-rank"}}[bug]
    assert warned == expected, report["findings"]
