"""The DDP row of benchmarks/overhead.py: what nndoctor costs per step of a 2-rank DistributedDataParallel
run (gloo, CPU), and whether the weights come out bit-identical with and without it.

Each rank alternates ``bare`` (no observer) and ``run`` (an Observer as ``nndoctor run`` installs it on
every rank under torchrun, with the distributed fingerprints on) on the same model, data and seed; the
ratio is paired within each repetition (median over repetitions), as in overhead.py.

    python benchmarks/overhead_ddp.py [--steps 150] [--reps 6] [--world 2] [--model mlp]

Wall and CPU time on a shared machine move by more than the effect; ``--instructions`` counts
instead the instructions nndoctor adds per unsampled DDP step, with valgrind's callgrind as
benchmarks/overhead_instructions.py does for one process: a tiny DDP MLP runs bare and under the
Observer of ``nndoctor run`` (sampling off after the dense start), every rank under callgrind with
its instrumentation switched on (``callgrind_control -i on``) only for the measured steps, after
start-up, import and the dense start; the main thread's count (the one that runs the training
step; gloo's own threads do the communication) divided by the steps is the per-step cost. It
takes a few minutes::

    python benchmarks/overhead_ddp.py --instructions [--measured-steps 200] [--compare-single]

``--compare-single`` counts the same job again with the model left unwrapped (process group up):
the difference of the two excesses is what DDP itself adds to nndoctor's cost, measured in the same
window (a few periodic curve reads fall in any 200-step window: they cost the same in both jobs,
and they are why this window's excess is above overhead_instructions.py's 2,000-step figure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

__all__ = ["main", "measure_ddp"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(mode: str, model_name: str, steps: int, seed: int, rank: int) -> tuple[list[float], list[float], torch.Tensor]:
    from benchmarks.overhead import MODELS
    from nndoctor.monitor import Observer

    make_model, make_input, classes, batch = MODELS[model_name]
    torch.manual_seed(seed)
    model = torch.nn.parallel.DistributedDataParallel(make_model())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed * 1000 + rank)  # each rank its own shard
    data = [(make_input(g, batch), torch.randint(0, classes, (batch,), generator=g)) for _ in range(8)]
    cpu, wall = [], []
    with Observer() if mode == "run" else contextlib.nullcontext():
        for i in range(steps):
            x, y = data[i % len(data)]
            t0, w0 = time.thread_time(), time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            cpu.append(time.thread_time() - t0)
            wall.append(time.perf_counter() - w0)
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
    return cpu, wall, weights


def _worker(rank: int, world: int, port: int, model: str, steps: int, reps: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _run("bare", model, 20, 0, rank)  # warm-up
        rows: list[dict[str, Any]] = []
        for rep in range(reps):
            order = ("bare", "run") if rep % 2 == 0 else ("run", "bare")
            got = {mode: _run(mode, model, steps, rep, rank) for mode in order}
            rows.append({"cpu": {m: statistics.median(got[m][0]) for m in order},
                         "wall": {m: statistics.median(got[m][1]) for m in order},
                         "identical": bool(torch.equal(got["bare"][2], got["run"][2]))})
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w", encoding="utf-8") as fh:
            json.dump(rows, fh)
    finally:
        dist.destroy_process_group()


def measure_ddp(model: str = "mlp", steps: int = 150, reps: int = 6, world: int = 2) -> dict[str, Any]:
    """Paired step-time ratios run/bare per rank (CPU and wall clock) and bit-identity of the weights."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(world, _free_port(), model, steps, reps, tmp), nprocs=world, join=True)
        per_rank = []
        for rank in range(world):
            with open(os.path.join(tmp, f"rank{rank}.json"), encoding="utf-8") as fh:
                per_rank.append(json.load(fh))
    out: dict[str, Any] = {"model": model, "world": world, "steps": steps, "reps": reps}
    for clock in ("cpu", "wall"):
        ratios = [statistics.median(r[clock]["run"] / r[clock]["bare"] for r in rows) for rows in per_rank]
        out[f"{clock}_ratio"] = max(ratios)
        out[f"{clock}_ratios"] = ratios
        out[f"{clock}_bare_ms"] = statistics.median(r[clock]["bare"] for r in per_rank[0]) * 1e3
    out["identical"] = all(r["identical"] for rows in per_rank for r in rows)
    return out


CHILD = r"""
import contextlib, os, sys, time, torch, torch.distributed as dist, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, {root!r})
from nndoctor.monitor import Observer
from nndoctor.monitor.sampling import Schedule
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
m = {wrap}(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)))
opt = torch.optim.Adam(m.parameters(), 1e-3)
g = torch.Generator().manual_seed(rank)
x, y = torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)

def step():
    opt.zero_grad()
    F.cross_entropy(m(x), y).backward()
    opt.step()

def signal_and_wait(name):
    open(os.path.join({tmp!r}, f"{{name}}-{{rank}}"), "w").close()
    go = os.path.join({tmp!r}, f"go-{{name}}")
    while not os.path.exists(go):
        time.sleep(0.01)

ctx = Observer(schedule=Schedule(dense=8, every=10**9)) if {mode!r} == "run" else contextlib.nullcontext()
with ctx:
    for _ in range(12):  # past the dense start: every measured step is unsampled
        step()
    signal_and_wait("ready")
    for _ in range({steps}):
        step()
    signal_and_wait("done")
dist.destroy_process_group()
"""


def _main_thread_instructions(prefix: str) -> int:
    """The instructions of a process's main thread from callgrind's per-thread files (``PREFIX-01``):
    its ``totals:`` line (``summary:`` stays 0 with the instrumentation off at the start)."""
    with open(f"{prefix}-01", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            found = re.match(r"totals:\s+(\d+)", line)
            if found:
                return int(found.group(1))
    raise RuntimeError(f"no instruction total in {prefix}-01")


def _wait_files(paths: list[str], procs: list[subprocess.Popen[str]]) -> None:
    while not all(os.path.exists(p) for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a rank ended early under valgrind: {proc.stderr.read()[-800:] if proc.stderr else ''}")
        time.sleep(0.2)


def _toggle(procs: list[subprocess.Popen[str]], on: bool) -> None:
    for proc in procs:
        done = subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(proc.pid)],
                              capture_output=True, text=True, timeout=600)
        if "OK" not in done.stdout:  # (it exits 0 when it finds no such callgrind process)
            raise RuntimeError(f"callgrind_control failed: {done.stdout[-300:]} {done.stderr[-300:]}")


def _count_job(mode: str, steps: int, world: int, tmp: str, ddp: bool = True) -> list[float]:
    """One ``world``-rank job, every rank under callgrind with instrumentation off until its warm-up
    is done, on for ``steps`` steps (callgrind_control), off again: instructions per step per rank
    (``ddp=False``: the same job with the model left unwrapped, the process group still up)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    work = tempfile.mkdtemp(prefix=f"{mode}-", dir=tmp)
    port = _free_port()
    procs, prefixes = [], []
    for rank in range(world):
        env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": str(world)}
        prefix = os.path.join(work, f"cg-{rank}")
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
               f"--callgrind-out-file={prefix}", sys.executable, "-c",
               CHILD.format(root=root, mode=mode, steps=steps, tmp=work,
                                                  wrap="nn.parallel.DistributedDataParallel" if ddp else "")]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        prefixes.append(prefix)
    try:
        _wait_files([os.path.join(work, f"ready-{r}") for r in range(world)], procs)
        _toggle(procs, True)
        open(os.path.join(work, "go-ready"), "w").close()
        _wait_files([os.path.join(work, f"done-{r}") for r in range(world)], procs)
        _toggle(procs, False)
        open(os.path.join(work, "go-done"), "w").close()
        for proc in procs:
            _, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"a rank failed under valgrind: {err[-800:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return [_main_thread_instructions(p) / steps for p in prefixes]


def count_instructions(steps: int = 200, world: int = 2, ddp: bool = True) -> dict[str, Any]:
    """Instructions per unsampled step on each rank's main thread, bare and under the Observer
    (``ddp=False``: the model not wrapped in DDP, everything else the same)."""
    modes = ("bare", "run")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=len(modes)) as pool:
        per_step = dict(zip(modes, pool.map(lambda mode: _count_job(mode, steps, world, tmp, ddp), modes)))
    return {"world": world, "steps": steps, "ddp": ddp, "bare": per_step["bare"], "run": per_step["run"]}


def format_instructions(r: dict[str, Any]) -> str:
    parts = []
    for rank, (bare, run) in enumerate(zip(r["bare"], r["run"])):
        parts.append(f"rank {rank}: bare {bare:,.0f}, run {run:,.0f}, +{run - bare:,.0f} ({run / bare:.3f}x)")
    what = f"ddp x{r['world']}" if r.get("ddp", True) else f"no ddp (process group of {r['world']})"
    return f"{what} tiny MLP, instructions per unsampled step (main thread, {r['steps']} steps): " + "; ".join(parts)


def format_comparison(with_ddp: dict[str, Any], without: dict[str, Any]) -> str:
    """What DDP itself adds to nndoctor's cost: the per-step excess with the model wrapped minus the
    excess with it unwrapped, rank by rank, in the same harness (the same measured window, so the
    periodic curve reads that fall inside it cost the same in both)."""
    parts = []
    for rank, (db, dr, sb, sr) in enumerate(zip(with_ddp["bare"], with_ddp["run"], without["bare"], without["run"])):
        parts.append(f"rank {rank}: +{dr - db:,.0f} with DDP vs +{sr - sb:,.0f} without: DDP's share "
                     f"{(dr - db) - (sr - sb):+,.0f} instructions per step ({((dr - db) - (sr - sb)) / db:+.2%} of the bare DDP step)")
    return "; ".join(parts)


def format_row(r: dict[str, Any]) -> str:
    return (f"ddp x{r['world']} {r['model']:5} run/bare per-step ratio (worst rank): cpu {r['cpu_ratio']:.3f}x "
            f"({', '.join(f'{x:.3f}' for x in r['cpu_ratios'])}), wall {r['wall_ratio']:.3f}x; bare "
            f"{r['cpu_bare_ms']:.3f} ms cpu / {r['wall_bare_ms']:.3f} ms wall; weights bit-identical with and "
            f"without nndoctor: {'yes' if r['identical'] else 'NO'} (target <= 1.03x)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--model", default="mlp")
    p.add_argument("--instructions", action="store_true", help="count instructions under valgrind instead")
    p.add_argument("--measured-steps", type=int, default=200, help="with --instructions: steps counted")
    p.add_argument("--compare-single", action="store_true",
                   help="with --instructions: also count the same job with the model not wrapped in DDP, and "
                        "print the part of nndoctor's cost that DDP adds")
    ns = p.parse_args(argv)
    if ns.instructions:
        if not shutil.which("valgrind"):
            print("overhead_ddp: valgrind is not installed (apt install valgrind)", file=sys.stderr)
            return 2
        with_ddp = count_instructions(ns.measured_steps, ns.world)
        print(format_instructions(with_ddp))
        if ns.compare_single:
            without = count_instructions(ns.measured_steps, ns.world, ddp=False)
            print(format_instructions(without))
            print(format_comparison(with_ddp, without))
        return 0
    print(format_row(measure_ddp(ns.model, ns.steps, ns.reps, ns.world)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    raise SystemExit(main())
